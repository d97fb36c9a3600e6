/**
 * A registration access token is rotated once: an RFC 7592 update ends the token it presents and
 * hands over exactly one successor, however many updates present it at once.
 *
 * With rotateRegistrationAccessToken, oidc-provider writes the client, makes a new token, then
 * destroys the presented one without asking whether it was still there, and saves the new one: two
 * updates presenting one token at once (a thief's with a leaked token racing the client's own, or
 * racing an operator's secret rotation or change, which end every token of the client) each got a
 * new token that works, so the rotation meant to end the leaked token forked it. Here, on the
 * client_update route, the presented token is taken by the store (store/adapter.ts take: consumed
 * and deleted in one round trip, as the deletion alone was) and an update that did not take it
 * answers invalid_token (401) before its successor is saved. Its metadata was written already (as
 * two updates' are, the last one kept): holding the token lets one change the client; it gives no
 * token after the other's rotation. Relies on: registration.js calling
 * ctx.oidc.registrationAccessToken.destroy() before the new token's save(), and the route name
 * `client_update`. Pinned by test/e2e/registration.test.ts ("RFC 7592 updates presenting one
 * registration access token at once…").
 */
import { errors, Provider } from 'oidc-provider';

interface Taking {
  readonly jti: string;
  readonly adapter: { take?(id: string): Promise<boolean> };
  emit(event: string): void;
}

export function singleUseRegistrationToken(provider: Provider): void {
  const prototype = provider.RegistrationAccessToken.prototype as unknown as { destroy(this: Taking): Promise<void> };
  const destroy = prototype.destroy;
  prototype.destroy = async function (this: Taking) {
    const route = (Provider.ctx as { oidc?: { route?: string } } | undefined)?.oidc?.route;
    if (route !== 'client_update' || !this.adapter.take) return destroy.call(this);
    if (!(await this.adapter.take(this.jti))) throw new errors.InvalidToken('the registration access token was used already');
    this.emit('destroyed');
  };
}
