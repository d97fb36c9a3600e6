/**
 * Red team, thirty-first endings pass (docs/security-passes.md, "Looked at in the thirty-first endings pass").
 *
 * The thirtieth pass kept an operator's second-factor reset and an upstream's removal as owed until
 * what they end has ended, and wrote down two more of the same shape: an API's removal and a
 * client's deletion end every token for the API (held by the client) before the record goes and
 * once more after, for a token issued in between. Cut off by Redis after the deletion (503), the
 * ending after it was never made, and nothing could be sent again (the removal answers "no API",
 * "no client"): a token a thief got in those seconds lived on at every API that verifies tokens
 * itself and follows the revocation feed, until it expired. A client's change has the shape too (a
 * leaked secret rotated without grace ends the client's own tokens before the write and once more
 * after), and a change sent again ends nothing (the record holds it already); so does a client's
 * grant at an API revoked (sent again: no such grant), and a person's ending by an account write
 * between two revocation-list entries (disabled, say). Now each keeps that ending as owed before
 * anything ends (apis/apis.ts remove and #change, store/adapter.ts destroy and changeClient,
 * accounts/accounts.ts), and the sweep finishes it.
 *
 * Performed through one front door to two instances on one Redis (test/helpers/front-door.ts): the
 * operator's, whose Redis traffic goes through a relay the test holds and cuts, and the thief's.
 */
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { Agent, answerAt } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { twoInstancesBehindOneDoor } from '../helpers/front-door.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { basic, clientCredentialsToken, machineClient } from '../helpers/tokens.js';
import { epochSeconds, untilSecond } from '../../src/clock.js';

const PASSWORD = 'thirty-first endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const OPS = { id: 'ops-31', secret: 'thirty-first-endings-ops-secret-with-plenty-of-entropy-012' };
const SCOPE = 'openid offline_access notes:read';

describe("e2e: red team, thirty-first endings pass: an API's removal, a client's deletion or change, a client's API grant revoked and a person disabled, cut off by Redis after their write, not sent again", function () {
  this.timeout(120_000);
  // Sweeps come often: the owed ending is finished a few seconds after it is due (OWED_S).
  const door = twoInstancesBehindOneDoor({ BACKCHANNEL_SWEEP_INTERVAL: '0.5' }, [machineClient(OPS, { scope: 'admin' })]);
  const { routeTo, cutAfterWrite, delOfExactly, scriptOnExactly, owedFallDue } = door;

  before(async () => {
    await door.relayed.server.apis.grant(OPS.id, `${door.balancer.url}/admin`, { scopes: ['admin'] });
    await door.relayed.server.accounts.create('yara', PASSWORD);
  });

  /** The operator's admin API request, at the relayed instance. */
  const operator = (method: string, path: string, body?: object) => door.operator(OPS, method, path, body);

  /** An app stored at runtime (so that it can be deleted), and its relying party. */
  async function storedApp(id: string): Promise<oidc.Configuration> {
    const secret = `${id}-secret-of-the-thirty-first-endings-pass-with-plenty-of-entropy`;
    await door.relayed.server.clients.add({ client_id: id, client_secret: secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE });
    return oidc.discovery(new URL(door.balancer.url), id, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
  }

  /**
   * The thief signs in with the stolen password at the other instance, a second after the
   * operator's first ending (its cutoff is "issued at or before this second"), and gets an access
   * token for the API `resource`: a JWT, which APIs verify themselves.
   */
  async function thiefGetsToken(app: oidc.Configuration, resource: string): Promise<string> {
    await untilSecond(epochSeconds() + 1);
    await routeTo(door.other.url);
    const thief = new Agent();
    const { page, verifier } = await startAuthorization(thief, app, REDIRECT, { scope: SCOPE, resource });
    const done = await signInSteps(thief, page, { username: 'yara', password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    assert.equal(answerAt(done, REDIRECT), 'code', `the thief signs in: ${done.status} ${done.url}`);
    const tokens = await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier }, { resource });
    assert.equal(decodeJwt(tokens.access_token).aud, resource, 'a JWT access token for the API');
    return tokens.access_token;
  }

  /** Whether the revocation list (the feed every API follows, and introspection) refuses the token now, at the other instance. */
  const refused = (token: string) => door.other.revocations.isRevoked(decodeJwt(token), decodeProtectedHeader(token));

  it("an API's removal, cut off after the API was deleted and not sent again: the access token a thief got for it meanwhile is refused on the revocation list (it lived on before; the removal sent again is \"no API\")", async () => {
    const NOTES = 'https://notes.thirty-one.example.test';
    await door.relayed.server.apis.add({ identifier: NOTES, scopes: ['notes:read'], format: 'jwt' });
    const app = await storedApp('app-31-api');
    // Held at the API's deletion, after the ending before it; the thief gets a token for it meanwhile.
    const token = await cutAfterWrite(
      delOfExactly(`api:${NOTES}`),
      () => operator('DELETE', `/apis/${encodeURIComponent(NOTES)}`),
      () => thiefGetsToken(app, NOTES),
    );
    assert.equal(await door.relayed.server.apis.find(NOTES), undefined, 'the API was deleted');
    assert.equal((await operator('DELETE', `/apis/${encodeURIComponent(NOTES)}`)).status, 404, 'the removal sent again: no such API');
    await owedFallDue();
    await eventually(async () => assert.equal(await refused(token), true, "the thief's token for the removed API"), 60, 500);
  });

  it("a client's deletion, cut off after the client was deleted and not sent again: the access token a thief got through it meanwhile is refused on the revocation list (it lived on before; the deletion sent again is \"no client\")", async () => {
    const LEDGER = 'https://ledger.thirty-one.example.test';
    await door.relayed.server.apis.add({ identifier: LEDGER, scopes: ['notes:read'], format: 'jwt' });
    const app = await storedApp('app-31-client');
    // Held at the client's deletion, after the ending before it; the thief signs in to it meanwhile.
    const token = await cutAfterWrite(
      delOfExactly('oidc:Client:app-31-client'),
      () => operator('DELETE', '/clients/app-31-client'),
      () => thiefGetsToken(app, LEDGER),
    );
    assert.equal(await door.relayed.server.clients.get('app-31-client'), undefined, 'the client was deleted');
    assert.equal((await operator('DELETE', '/clients/app-31-client')).status, 404, 'the deletion sent again: no such client');
    await owedFallDue();
    await eventually(async () => assert.equal(await refused(token), true, "the thief's token through the deleted client"), 60, 500);
  });

  it("a leaked secret rotated without grace, the rotation cut off after the new secret was written and not sent again: the token a thief got with the leaked secret meanwhile is refused on the revocation list (it lived on before; a change sent again ends nothing: the record holds it already)", async () => {
    const VAULT = 'https://vault.thirty-one.example.test';
    await door.relayed.server.apis.add({ identifier: VAULT, scopes: ['vault:read'], format: 'jwt' });
    const service = { id: 'svc-31', secret: 'svc-31-secret-of-the-thirty-first-endings-pass-with-plenty-of-entropy' };
    await door.relayed.server.clients.add({ client_id: service.id, client_secret: service.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] });
    await door.relayed.server.apis.grant(service.id, VAULT, { scopes: ['vault:read'] });
    // A routine rotation first (with its grace): the service's secret now, which leaks.
    const routine = await operator('POST', `/clients/${service.id}/secret`);
    assert.equal(routine.status, 200);
    const leaked = { id: service.id, secret: ((await routine.json()) as { client_secret: string }).client_secret };
    // Held at the new secret's write (after the ending before it); the thief gets a token with the leaked secret meanwhile.
    const token = await cutAfterWrite(
      scriptOnExactly(`oidc:Client:${service.id}`),
      () => operator('POST', `/clients/${service.id}/secret`, { previous_secret_valid_for: 0 }),
      async () => {
        await untilSecond(epochSeconds() + 1);
        return clientCredentialsToken(door.other.url, leaked, VAULT, 'vault:read');
      },
    );
    await assert.rejects(clientCredentialsToken(door.other.url, leaked, VAULT, 'vault:read'), /invalid_client/, 'the new secret was written: the leaked one is refused');
    await owedFallDue();
    await eventually(async () => assert.equal(await refused(token), true, "the thief's token got with the leaked secret"), 60, 500);
  });

  it("a client's grant at an API revoked (its secret leaked), the revocation cut off after it was written and not sent again: the token a thief got with the grant meanwhile is refused on the revocation list (it lived on before; the revocation sent again finds no grant)", async () => {
    const LOCKER = 'https://locker.thirty-one.example.test';
    await door.relayed.server.apis.add({ identifier: LOCKER, scopes: ['locker:read'], format: 'jwt' });
    const service = { id: 'svc-31-grant', secret: 'svc-31-grant-secret-of-the-thirty-first-endings-pass-with-entropy' };
    await door.relayed.server.clients.add({ client_id: service.id, client_secret: service.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] });
    await door.relayed.server.apis.grant(service.id, LOCKER, { scopes: ['locker:read'] });
    const grant = `/clients/${service.id}/grants/${encodeURIComponent(LOCKER)}`;
    // Held at the grants' write (after the ending before it); the thief gets a token with the grant meanwhile.
    const token = await cutAfterWrite(scriptOnExactly(`api-grants:${service.id}`), () => operator('DELETE', grant), async () => {
      await untilSecond(epochSeconds() + 1);
      return clientCredentialsToken(door.other.url, service, LOCKER, 'locker:read');
    });
    assert.equal(await door.relayed.server.apis.grantAt(service.id, LOCKER), undefined, 'the grant was revoked');
    assert.equal((await operator('DELETE', grant)).status, 404, 'the revocation sent again: no such grant');
    await owedFallDue();
    await eventually(async () => assert.equal(await refused(token), true, "the thief's token got with the revoked grant"), 60, 500);
  });

  it("the same revocation by `latchkey apis revoke`, cut off after it was written (exit 1) and not run again: a running server's sweep ends the thief's token", async () => {
    const SAFE = 'https://safe.thirty-one.example.test';
    await door.relayed.server.apis.add({ identifier: SAFE, scopes: ['safe:read'], format: 'jwt' });
    const service = { id: 'svc-31-cli', secret: 'svc-31-cli-secret-of-the-thirty-first-endings-pass-with-entropy' };
    await door.relayed.server.clients.add({ client_id: service.id, client_secret: service.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] });
    await door.relayed.server.apis.grant(service.id, SAFE, { scopes: ['safe:read'] });
    const token = await cutAfterWrite(scriptOnExactly(`api-grants:${service.id}`), () => latchkey(door.relayed.relayedEnv, ['apis', 'revoke', '--client', service.id, '--api', SAFE]), async () => {
      await untilSecond(epochSeconds() + 1);
      return clientCredentialsToken(door.other.url, service, SAFE, 'safe:read');
    });
    assert.equal(await door.relayed.server.apis.grantAt(service.id, SAFE), undefined, 'the grant was revoked');
    await owedFallDue();
    await eventually(async () => assert.equal(await refused(token), true, "the thief's token got with the revoked grant"), 60, 500);
  });

  it("in the moment a deletion cut off leaves before the sweep ends what it owes (the client's record gone, its person's grant not yet revoked), the API introspecting the person's token is told inactive (a 500 before: the engine read the gone client)", async () => {
    const DESK = 'https://desk.thirty-one.example.test';
    await door.relayed.server.apis.add({ identifier: DESK, scopes: ['notes:read'], format: 'opaque' });
    const desk = { id: 'desk-31', secret: 'desk-31-secret-of-the-thirty-first-endings-pass-with-plenty-of-entropy' };
    await door.relayed.server.clients.add({ client_id: desk.id, client_secret: desk.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] });
    await door.relayed.server.apis.grant(desk.id, DESK, { scopes: ['notes:read'], introspect: true });
    const app = await storedApp('app-31-gone');
    await routeTo(door.other.url);
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: SCOPE, resource: DESK });
    const done = await signInSteps(agent, page, { username: 'yara', password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    const { access_token: token } = await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier }, { resource: DESK });
    const introspected = () => fetch(`${door.other.url}/token/introspection`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(desk) }, body: new URLSearchParams({ token }) });
    assert.equal(((await (await introspected()).json()) as { active: boolean }).active, true, 'the API takes the token');
    // The record gone and nothing else yet, as a deletion cut off after its write leaves it until the sweep.
    await door.relayed.server.kv.del(['oidc:Client:app-31-gone']);
    const answer = await introspected();
    assert.equal(answer.status, 200, `introspection answered ${answer.status}`);
    assert.deepEqual(await answer.json(), { active: false });
  });

  it("a person disabled by an operator (their password leaked), cut off after the account was written and not sent again: the access token a thief refreshed meanwhile is refused on the revocation list (it lived on before)", async () => {
    const FILES = 'https://files.thirty-one.example.test';
    await door.relayed.server.apis.add({ identifier: FILES, scopes: ['notes:read'], format: 'jwt' });
    const { sub } = await door.relayed.server.accounts.create('zora', PASSWORD);
    const app = await storedApp('app-31-person');
    // The thief signed in with the leaked password, with offline access, before the operator acts.
    await routeTo(door.other.url);
    const thief = new Agent();
    const { page, verifier } = await startAuthorization(thief, app, REDIRECT, { scope: SCOPE, resource: FILES });
    const done = await signInSteps(thief, page, { username: 'zora', password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    const { refresh_token: refresh } = await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier }, { resource: FILES });
    assert.ok(refresh, 'offline access');
    // Held at the account's write (after the revocation list's entry before it); the thief refreshes meanwhile.
    const token = await cutAfterWrite(scriptOnExactly(`account:${sub}`), () => operator('POST', '/users/zora/disable'), async () => {
      await untilSecond(epochSeconds() + 1);
      await routeTo(door.other.url);
      return (await oidc.refreshTokenGrant(app, refresh, { resource: FILES })).access_token;
    });
    assert.equal((await door.relayed.server.accounts.findByUsername('zora'))?.disabled, true, 'the person was disabled');
    await owedFallDue();
    await eventually(async () => assert.equal(await refused(token), true, "the thief's token refreshed as the person was disabled"), 60, 500);
  });
});
