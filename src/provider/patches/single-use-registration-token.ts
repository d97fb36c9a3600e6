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
 * The presented token is taken once its successor is saved (the engine's destroy() only marks it),
 * so that an update answered 503 (Redis paused at either write) leaves the presented token working
 * and the update can be sent again; a successor saved for an update that then did not take the
 * presented token is deleted.
 *
 * Relies on: registration.js calling ctx.oidc.registrationAccessToken.destroy() before the new
 * token's save(), nothing else of the update writing after that save, the update reading the client through Client.adapter.find and writing it through
 * Client.adapter.upsert (helpers/add_client.js), and the route name `client_update`. Pinned by
 * test/e2e/registration.test.ts ("RFC 7592 updates presenting one registration access token at
 * once…"), test/e2e/registration-endings.test.ts and test/e2e/blips-4.test.ts.
 */
import { errors, Provider } from 'oidc-provider';

interface Rotating {
  readonly jti: string;
  readonly adapter: { take?(id: string): Promise<boolean>; destroy(id: string): Promise<void> };
  emit(event: string): void;
  destroy(): Promise<void>;
  save(): Promise<string>;
}

/** The token an update presented, to be taken once its successor is saved. */
const PRESENTED = Symbol('registration access token presented to this RFC 7592 update');
type Presenting = { [PRESENTED]?: Rotating | undefined };

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

  // The presented token is taken after its successor is saved, not before: taken first, a Redis
  // paused at the successor's save answered 503 with the presented token spent and the successor
  // shown to nobody, the client's management lost (fourth blips pass). Taken last (a bounded
  // consumption: not taken when Redis runs it after the caller stopped waiting), a 503 leaves the
  // presented token working, to send the update again; the successor saved meanwhile is deleted.
  const prototype = provider.RegistrationAccessToken.prototype as unknown as Rotating;
  const destroy = prototype.destroy;
  prototype.destroy = async function (this: Rotating) {
    const ctx = updating() as (Reading & Presenting) | undefined;
    if (!ctx || !this.adapter.take) return destroy.call(this);
    ctx[PRESENTED] = this;
  };
  const save = prototype.save;
  prototype.save = async function (this: Rotating) {
    const ctx = updating() as (Reading & Presenting) | undefined;
    const presented = ctx?.[PRESENTED];
    if (!ctx || !presented || presented === this || !presented.adapter.take) return save.call(this);
    ctx[PRESENTED] = undefined;
    const value = await save.call(this);
    let taken: boolean;
    try {
      taken = await presented.adapter.take(presented.jti);
    } catch (error) {
      await this.adapter.destroy(this.jti).catch(() => {});
      throw error;
    }
    if (!taken) {
      await this.adapter.destroy(this.jti);
      throw new errors.InvalidToken('the registration access token was used already');
    }
    presented.emit('destroyed');
    return value;
  };
}
