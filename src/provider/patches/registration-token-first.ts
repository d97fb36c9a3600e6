/**
 * An RFC 7591 registration saves its registration access token before its client, so that a
 * registration answered as an outage (503) made no client.
 *
 * oidc-provider's registrationResponse writes the client (Client.adapter.upsert, through
 * helpers/add_client.js) and then saves the registration access token: with Redis paused at the
 * token's save past the command timeout, the registration answered 503 with its client made (its
 * write answered in time), and the developer's retry made a second client; nobody was shown the
 * first one's secret nor a token to manage it (the third blips pass left it open; the fourth fixed
 * it). Here, on the `registration` route, the token is saved as the client is about to be written,
 * and its later save() answers the value saved without writing again. A token whose client was
 * never made manages nothing (the engine finds no client for it), and the client's own write is
 * last and bounded (store/adapter.ts createClient): a 503 at either write means nothing was made.
 *
 * Relies on: registration.js making the RegistrationAccessToken entity before addClient, setting
 * its policies before it too, and calling rat.save() after it; the route name `registration`.
 * Pinned by test/e2e/blips-4.test.ts ("an RFC 7591 registration answered 503 at its registration
 * access token's save…").
 */
import { Provider } from 'oidc-provider';
import { CLIENT_ABOUT_TO_BE_WRITTEN } from '../../registration/initial-access-tokens.js';

/** The value a registration's token was saved as, ahead of its client. */
const SAVED = Symbol('registration access token saved before its client');

interface Saving {
  [SAVED]?: string;
  save(): Promise<string>;
}

interface ClientAdapter {
  upsert(id: string, payload: object, expiresIn: number): Promise<void>;
}

export function registrationTokenFirst(provider: Provider): void {
  const prototype = provider.RegistrationAccessToken.prototype as unknown as Saving;
  const save = prototype.save;
  prototype.save = async function (this: Saving) {
    return this[SAVED] ?? save.call(this);
  };

  const clients = (provider.Client as unknown as { adapter: ClientAdapter }).adapter;
  const upsert = clients.upsert.bind(clients);
  clients.upsert = async (id, payload, expiresIn) => {
    const ctx = Provider.ctx as { state?: Record<symbol, ((clientId: string) => Promise<void>) | undefined>; oidc?: { route?: string; entities?: { RegistrationAccessToken?: Saving } } } | undefined;
    const token = ctx?.oidc?.route === 'registration' ? ctx.oidc.entities?.RegistrationAccessToken : undefined;
    if (token && token[SAVED] === undefined) token[SAVED] = await save.call(token);
    // A registration with an initial access token: its claim names the client before it is written (registration/initial-access-tokens.ts).
    if (token) await ctx?.state?.[CLIENT_ABOUT_TO_BE_WRITTEN]?.(id);
    return upsert(id, payload, expiresIn);
  };
}
