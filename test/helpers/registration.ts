/**
 * RFC 7591 registration and RFC 7592 management as the passes drive them: a registration with an
 * initial access token, what the registration endpoint says of a client, and the update that moves a
 * client's redirect URI, each a function to send (again) (blips-4, blips-7); and a client that
 * registers itself and updates its own registration (selfRegistered).
 */
import assert from 'node:assert/strict';
import { initialAccessToken } from './operator.js';
import type { TestServer } from './server.js';

/** The parts of a registration's answer (RFC 7591 §3.2.1, RFC 7592 §3) the tests read. */
export interface Registered {
  readonly client_id: string;
  readonly registration_access_token: string;
  readonly registration_client_uri: string;
  readonly redirect_uris: string[];
}

/** The registration of a web client named `name` with initial access token `iat`, to send (again). */
export const register = (server: TestServer, iat: string, name: string) => () =>
  fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` }, body: JSON.stringify({ client_name: name, redirect_uris: [`https://${name}.example.test/callback`] }) });

/** What the registration endpoint says of the client `token` manages: the status, and the redirect URIs. */
export async function readRegistration(made: Registered, token = made.registration_access_token): Promise<{ status: number; redirect_uris: string[] }> {
  const response = await fetch(made.registration_client_uri, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, redirect_uris: response.status === 200 ? ((await response.json()) as Registered).redirect_uris : [] };
}

/** A client registered, and the RFC 7592 update that moves its redirect URI, presenting `token`. */
export async function registeredWithUpdate(server: TestServer, name: string): Promise<{ made: Registered; update: (token: string) => () => Promise<Response> }> {
  const response = await register(server, await initialAccessToken(server), name)();
  assert.equal(response.status, 201);
  const made = (await response.json()) as Registered;
  const update = (token: string) => () =>
    fetch(made.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ client_id: made.client_id, client_name: name, redirect_uris: [`https://${name}.example.test/moved`] }),
    });
  return { made, update };
}

/**
 * A client registered with `own` at open registration (RFC 7591, REGISTRATION_OPEN), and its RFC 7592
 * update presenting the registration access token alone: `own` with `metadata` on top, answered 200.
 * Each update presents the token the last answer gave (Latchkey rotates it at each update).
 */
export async function selfRegistered<T extends Registered = Registered>(server: { url: string }, own: Record<string, unknown>): Promise<{ registration: T; update: (metadata: Record<string, unknown>) => Promise<void> }> {
  const created = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(own) });
  assert.equal(created.status, 201, await created.clone().text());
  const registration = (await created.json()) as T;
  let current: Registered = registration;
  const update = async (metadata: Record<string, unknown>) => {
    const answer = await fetch(current.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${current.registration_access_token}` },
      body: JSON.stringify({ ...own, client_id: current.client_id, ...metadata }),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    current = (await answer.json()) as Registered;
  };
  return { registration, update };
}
