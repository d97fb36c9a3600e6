/**
 * The seventh blips pass (2026-12-05), black box, over registration: RFC 7591 registration with
 * an initial access token, RFC 7592 management with its registration access token, and a client
 * secret's rotation, each with Redis paused (past REDIS_COMMAND_TIMEOUT: the write and what follows
 * run once it resumes, after the answer) or the connection cut at a chosen write. The house rule: a
 * 503 leaves nothing lost and nothing half-made; the caller's retry succeeds and ends in the state
 * one success gives. See docs/security-passes.md, "seventh blips pass".
 */
import assert from 'node:assert/strict';
import { eventually, pastOutages } from '../helpers/eventually.js';
import { commandsIn, scriptOn, startRelayedServer, type Relay, type RelayedServer } from '../helpers/relay.js';
import { initialAccessToken } from '../helpers/operator.js';
import { register as registerWith, readRegistration, registeredWithUpdate, type Registered } from '../helpers/registration.js';
import { type TestServer } from '../helpers/server.js';
import { basic, clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };


describe('e2e: seventh blips pass: registration, client management and secret rotation with Redis paused (or the connection cut) at a write', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  let server: TestServer;
  let relay: Relay;
  let admin: string;

  before(async () => {
    // A command waits half a second: a Redis paused longer is an outage (503). Not the longer
    // BLIP_COMMAND_TIMEOUT: a registration cut off holds its initial access token's claim for a
    // multiple of the timeout, and at 2 s the retry's Retry-After waits (pastOutages) end before it.
    relayed = await startRelayedServer({}, { commandTimeout: 500, clients: [machineClient(OPS)] });
    ({ server, relay } = relayed);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
  });
  after(() => relayed?.stop());

  const listed = async () => {
    const response = await pastOutages(() => fetch(`${server.url}/admin/clients`, { headers: { authorization: `Bearer ${admin}` } }));
    assert.equal(response.status, 200);
    return ((await response.json()) as { client_id: string }[]).map((client) => client.client_id).filter((id) => id !== OPS.id).sort();
  };

  const register = (iat: string, name: string) => registerWith(server, iat, name);

  const read = readRegistration;

  /** Sent again (past the 503's Retry-After): registered, one client more than before, managed by the token shown, and the initial access token spent. */
  async function registeredOnceByTheRetry(iat: string, name: string, before: string[]): Promise<Registered> {
    const again = await pastOutages(register(iat, name));
    assert.equal(again.status, 201, `the retry of a registration answered 503 answered ${again.status}: ${await again.clone().text()}`);
    const made = (await again.json()) as Registered;
    assert.deepEqual(await listed(), [...before, made.client_id].sort(), 'one client, the one the developer was shown');
    assert.equal((await read(made)).status, 200, 'managed by the token shown');
    assert.equal((await register(iat, `${name}-second`)()).status, 401, 'the initial access token is spent');
    assert.deepEqual(await listed(), [...before, made.client_id].sort());
    return made;
  }

  it('an RFC 7591 registration answered 503 at its initial access token’s spend: sent again, registered once, the token spent (before the fix: 401 "already used", and once the claim expired a second client, the first one’s secret shown to nobody)', async () => {
    const before = await listed();
    const iat = await initialAccessToken(server);
    const blip = await relayed.pausedAt(scriptOn('oidc:InitialAccessToken:'), register(iat, 'spent'));
    assert.equal(blip.status, 503);
    assert.ok(blip.headers.get('retry-after'));
    await registeredOnceByTheRetry(iat, 'spent', before);
  });
  it('an RFC 7591 registration answered 503 at its claim’s naming of the client (the fix’s own write, before the client’s): sent again, registered once (held)', async () => {
    const before = await listed();
    const iat = await initialAccessToken(server);
    // The claim is set first with the time alone; then it names the client (`<time> <client id>`).
    const naming = (chunk: string) => commandsIn(chunk).some(([name = '', key = '', value = '']) => /^set$/i.test(name) && key.includes('registration:initial-access-token:') && value.includes(' '));
    const blip = await relayed.pausedAt(naming, register(iat, 'named'));
    assert.equal(blip.status, 503);
    assert.deepEqual(await listed(), before, 'a registration answered 503 made no client');
    await registeredOnceByTheRetry(iat, 'named', before);
  });

  /** `request` with every connection cut as its first script on a key holding `key` reaches Redis, which runs it (its answer lost). */
  async function cutAt<T extends { status: number }>(key: string, request: () => Promise<T>, extra: (chunk: string) => boolean = () => true): Promise<T> {
    const cut = relay.cut((chunk) => scriptOn(key)(chunk) && extra(chunk), { answered: true });
    const answer = await request();
    relay.release();
    assert.ok(await cut, `answered ${answer.status} without the cut`);
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    return answer;
  }

  /** A confidential client made through the admin API, and whether a secret of it authenticates (it has no client_credentials grant: 400 unauthorized_client, or 401). */
  async function confidential(name: string) {
    const made = await fetch(`${server.url}/admin/clients`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ client_name: name, redirect_uris: [`https://${name}.example.test/callback`] }) });
    assert.equal(made.status, 201);
    const app = (await made.json()) as { client_id: string; client_secret: string };
    const authenticates = async (secret: string) => {
      const response = await pastOutages(() => fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: app.client_id, secret }) }, body: 'grant_type=client_credentials' }));
      assert.ok(response.status === 400 || response.status === 401, `answered ${response.status}`);
      return response.status === 400;
    };
    const rotate = () => fetch(`${server.url}/admin/clients/${app.client_id}/secret`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ previous_secret_valid_for: 3600 }) });
    return { app, authenticates, rotate };
  }

  /** Sent again past the 503: a new secret shown, which works, and the deployed one still works (its grace), as one rotation leaves them. */
  async function rotatedOnceByTheRetry({ app, authenticates, rotate }: Awaited<ReturnType<typeof confidential>>): Promise<void> {
    const again = await pastOutages(rotate);
    assert.equal(again.status, 200, `the retry of a rotation answered 503 answered ${again.status}`);
    const { client_secret: shown } = (await again.json()) as { client_secret: string };
    assert.notEqual(shown, app.client_secret);
    assert.equal(await authenticates(shown), true, 'the secret shown works');
    assert.equal(await authenticates(app.client_secret), true, 'the deployed secret keeps its grace after the retry');
  }

  it('a secret rotation with a grace answered 503 at the client’s write: sent again, the secret shown works and the deployed one keeps its grace (before the fix: the write run late put a secret nobody was shown in place, and the retry, rotating from it, ended the deployed secret at once)', async () => {
    const rotation = await confidential('rotated-paused');
    const blip = await relayed.pausedAt(scriptOn(`oidc:Client:${rotation.app.client_id}`), rotation.rotate);
    assert.equal(blip.status, 503);
    await rotatedOnceByTheRetry(rotation);
  });

  it('a secret rotation with a grace cut off at its grace record’s write (run, its answer lost): sent again, the secret shown works and the deployed one keeps its grace (held)', async () => {
    const rotation = await confidential('rotated-grace-cut');
    const cut = relay.cut((chunk) => chunk.includes(`previous-secret:${rotation.app.client_id}`), { answered: true });
    const blip = await rotation.rotate();
    relay.release();
    assert.ok(await cut, `answered ${blip.status} without the cut`);
    assert.equal(blip.status, 503);
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    await rotatedOnceByTheRetry(rotation);
  });


  it('a secret rotation with a grace cut off at the client’s write (run, its answer lost): sent again, the secret shown works and the deployed one keeps its grace (before the fix: the retry, rotating from the secret written, which nobody was shown, ended the deployed one’s grace at once)', async () => {
    const rotation = await confidential('rotated-cut');
    const blip = await cutAt(`oidc:Client:${rotation.app.client_id}`, rotation.rotate);
    assert.equal(blip.status, 503);
    await rotatedOnceByTheRetry(rotation);
  });

  it('what the grace kept for a rotation’s retry means: two rotations with a grace leave both rotated-out secrets working (each until its own grace ends), and one without a grace (a leak) ends every one', async () => {
    const { app, authenticates, rotate } = await confidential('rotated-twice');
    const rotated = async (grace?: number) => {
      const response = await (grace === undefined ? rotate() : fetch(`${server.url}/admin/clients/${app.client_id}/secret`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ previous_secret_valid_for: grace }) }));
      assert.equal(response.status, 200);
      return ((await response.json()) as { client_secret: string }).client_secret;
    };
    const second = await rotated();
    const third = await rotated();
    assert.deepEqual([await authenticates(app.client_secret), await authenticates(second), await authenticates(third)], [true, true, true]);
    const fourth = await rotated(0);
    assert.deepEqual([await authenticates(app.client_secret), await authenticates(second), await authenticates(third), await authenticates(fourth)], [false, false, false, true]);
  });

  /** A client registered, and the RFC 7592 update that moves its redirect URI, presenting `token`. */
  const registered = (name: string) => registeredWithUpdate(server, name);

  /** Sent again with the token presented before (past the 503): done, the successor shown manages the client, the presented token ended. */
  async function updatedByTheRetry(made: Registered, update: (token: string) => () => Promise<Response>, name: string): Promise<void> {
    const again = await pastOutages(update(made.registration_access_token));
    assert.equal(again.status, 200, `sent again with the token presented before, the update answered ${again.status}`);
    const successor = ((await again.json()) as Registered).registration_access_token;
    assert.notEqual(successor, made.registration_access_token);
    assert.deepEqual(await read(made, successor), { status: 200, redirect_uris: [`https://${name}.example.test/moved`] }, 'the successor shown manages the client, updated');
    assert.equal((await read(made)).status, 401, 'the token presented is ended');
  }

  it('an RFC 7592 update answered 503 at the client’s write changed nothing, the token presented still works: sent again, done (before the fix: the metadata written once Redis resumed, after the 503)', async () => {
    const { made, update } = await registered('update-paused');
    const blip = await relayed.pausedAt(scriptOn(`oidc:Client:${made.client_id}`), update(made.registration_access_token));
    assert.equal(blip.status, 503);
    assert.deepEqual(await read(made), { status: 200, redirect_uris: ['https://update-paused.example.test/callback'] }, 'an update answered 503 changed nothing');
    await updatedByTheRetry(made, update, 'update-paused');
  });

  it('an RFC 7592 update cut off at its new registration access token’s save (run, its answer lost): the token presented still works; sent again, done (held)', async () => {
    const { made, update } = await registered('update-successor-cut');
    const blip = await cutAt('oidc:RegistrationAccessToken:', update(made.registration_access_token), (chunk) => chunk.includes(made.client_id));
    assert.equal(blip.status, 503);
    assert.equal((await read(made)).status, 200, 'the token presented still works');
    await updatedByTheRetry(made, update, 'update-successor-cut');
  });

  it('a secret rotation of a client that registered itself, cut off at its new registration access token’s save (not run): sent again, a token is handed over and manages the client, the one before ended (before the fix: the retry answered none, the tokens ended by the first attempt, the client no longer managed through RFC 7592)', async () => {
    const { made } = await registered('rotated-managed');
    const rotate = () => fetch(`${server.url}/admin/clients/${made.client_id}/secret`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ previous_secret_valid_for: 3600 }) });
    // The new token's record names the client; the rotation's client write is on `oidc:Client:`.
    const cut = relay.cut((chunk) => scriptOn('oidc:RegistrationAccessToken:')(chunk) && chunk.includes(made.client_id), { answered: false });
    const blip = await rotate();
    relay.release();
    assert.ok(await cut, `answered ${blip.status} without the cut`);
    assert.equal(blip.status, 503);
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    const again = await pastOutages(rotate);
    assert.equal(again.status, 200);
    const { registration_access_token: handed } = (await again.json()) as { registration_access_token?: string };
    assert.ok(handed, 'the retry hands a registration access token over');
    assert.equal((await read(made, handed)).status, 200, 'the token handed over manages the client');
    assert.equal((await read(made)).status, 401, 'the token before it is ended');
  });
  it('a secret rotation of a client that registered itself, paused at its new registration access token’s save (run once Redis resumed): sent again, a token is handed over and manages the client, every other ended (held)', async () => {
    const { made } = await registered('rotated-managed-paused');
    const rotate = () => fetch(`${server.url}/admin/clients/${made.client_id}/secret`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ previous_secret_valid_for: 3600 }) });
    const blip = await relayed.pausedAt((chunk) => scriptOn('oidc:RegistrationAccessToken:')(chunk) && chunk.includes(made.client_id), rotate);
    assert.equal(blip.status, 503);
    const again = await pastOutages(rotate);
    assert.equal(again.status, 200);
    const { registration_access_token: handed } = (await again.json()) as { registration_access_token?: string };
    assert.ok(handed, 'the retry hands a registration access token over');
    assert.equal((await read(made, handed)).status, 200, 'the token handed over manages the client');
    assert.equal((await read(made)).status, 401, 'the token before it is ended');
  });

  it('a person added through the admin API, answered 503 at the write of their username’s key (run once Redis resumed, after the account’s record was taken back): added again, made once (before the fix: 409 "taken" for ever, by no one; bad input and blips, ninth pass)', async () => {
    const add = () => fetch(`${server.url}/admin/users`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ username: 'blipped', password: 'a long enough password for sure' }) });
    const naming = (chunk: string) => commandsIn(chunk).some(([name = '', key = '']) => /^set$/i.test(name) && key.endsWith('account:name:blipped'));
    const blip = await relayed.pausedAt(naming, add);
    assert.equal(blip.status, 503);
    const again = await pastOutages(add);
    assert.equal(again.status, 201, `added again: ${await again.clone().text()}`);
    const { sub } = (await again.json()) as { sub: string };
    const users = await pastOutages(() => fetch(`${server.url}/admin/users`, { headers: { authorization: `Bearer ${admin}` } }));
    assert.deepEqual(((await users.json()) as { sub: string; username: string }[]).filter((user) => user.username === 'blipped').map((user) => user.sub), [sub], 'one person of that name, the one made');
    assert.equal((await add()).status, 409, 'and the name is taken now');
  });
});
