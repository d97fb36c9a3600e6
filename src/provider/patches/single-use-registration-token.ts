/**
 * A registration access token is rotated once: an RFC 7592 update ends the token it presents and
 * hands over exactly one successor, however many updates present it at once; and an update writes
 * the client only as it read it, so it undoes nothing that was changed meanwhile.
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
 * token after the other's rotation.
 *
 * The engine reads the client as it checks the token and writes it back (with the secret it read)
 * once the update is validated: an operator's secret rotation or change landing in between (which
 * ends every registration access token of the client, so that RFC 7592 cannot undo it) was undone by
 * the update's write, the leaked secret working again. Here that write is made only while the
 * client's record still holds what the update read (store/adapter.ts upsertIfUnchanged), else the
 * update is invalid_token (its token was ended with the change) and writes nothing.
 *
 * Relies on: registration.js calling ctx.oidc.registrationAccessToken.destroy() before the new
 * token's save(), the update reading the client through Client.adapter.find and writing it through
 * Client.adapter.upsert (helpers/add_client.js), and the route name `client_update`. Pinned by
 * test/e2e/registration.test.ts ("RFC 7592 updates presenting one registration access token at
 * once…") and test/e2e/registration-endings.test.ts.
 */
import { errors, Provider } from 'oidc-provider';

interface Taking {
  readonly jti: string;
  readonly adapter: { take?(id: string): Promise<boolean> };
  emit(event: string): void;
}

interface ClientAdapter {
  find(id: string): Promise<object | undefined>;
  upsert(id: string, payload: object, expiresIn: number): Promise<void>;
  upsertIfUnchanged?(id: string, previous: object, payload: object, expiresIn: number): Promise<boolean>;
}

/** What an update read of its client (the first read, as its token was checked). */
const READ = Symbol('client read by this RFC 7592 update');
type Reading = { [READ]?: { readonly id: string; readonly payload: object } };

const updating = () => {
  const ctx = Provider.ctx as (Reading & { oidc?: { route?: string } }) | undefined;
  return ctx?.oidc?.route === 'client_update' ? ctx : undefined;
};

export function singleUseRegistrationToken(provider: Provider): void {
  const clients = (provider.Client as unknown as { adapter: ClientAdapter }).adapter;
  const find = clients.find.bind(clients);
  clients.find = async (id) => {
    const payload = await find(id);
    const ctx = updating();
    // A copy: the engine makes its client from this object.
    if (ctx && payload) ctx[READ] ??= { id, payload: structuredClone(payload) };
    return payload;
  };
  const upsert = clients.upsert.bind(clients);
  clients.upsert = async (id, payload, expiresIn) => {
    const read = updating()?.[READ];
    if (read?.id !== id || !clients.upsertIfUnchanged) return upsert(id, payload, expiresIn);
    if (!(await clients.upsertIfUnchanged(id, read.payload, payload, expiresIn))) throw new errors.InvalidToken('the client was changed meanwhile, which ended its registration access tokens');
  };

  const prototype = provider.RegistrationAccessToken.prototype as unknown as { destroy(this: Taking): Promise<void> };
  const destroy = prototype.destroy;
  prototype.destroy = async function (this: Taking) {
    const route = (Provider.ctx as { oidc?: { route?: string } } | undefined)?.oidc?.route;
    if (route !== 'client_update' || !this.adapter.take) return destroy.call(this);
    if (!(await this.adapter.take(this.jti))) throw new errors.InvalidToken('the registration access token was used already');
    this.emit('destroyed');
  };
}
