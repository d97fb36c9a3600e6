/**
 * The eleventh fresh-eyes pass over what earlier passes left open (docs/security-passes.md, "the
 * left-open list"), black box: how much list metadata a client may register, which hosts its
 * redirect URIs may name, recovery codes after the last second factor, and the email lookup
 * upstream linking makes.
 */
import assert from 'node:assert/strict';
import { Accounts } from '../../src/accounts/accounts.js';
import { accountKey, ACCOUNTS_KEY, EMAILS_INDEXED_KEY, secondFactorsKey } from '../../src/store/keys.js';
import type { Kv } from '../../src/store/kv.js';
import { initialAccessToken } from '../helpers/operator.js';
import { authenticatorAdded, signedInToAccountPage, totpCode } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const uris = (count: number, host = 'app.example.com') => Array.from({ length: count }, (_, i) => `https://${host}/cb${i}`);

describe('e2e: the left-open list, eleventh pass', function () {
  this.timeout(60_000);
  let server: TestServer;
  let admin: string;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { REGISTRATION_OPEN: 'true' }, clients: [machineClient(OPS)] });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
  });
  after(async () => {
    await server?.stop();
  });

  /** A client registered by itself (RFC 7591): the status and the answer. */
  async function register(metadata: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token_endpoint_auth_method: 'none', ...metadata }) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }
  /** A client made by an operator through the admin API. */
  async function adminCreate(metadata: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${server.url}/admin/clients`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('refuses more than 50 redirect or post-logout redirect URIs, more than 10 contacts and entries over 2,000 characters, on dynamic registration, RFC 7592 updates and the admin API (invalid_redirect_uri, invalid_client_metadata); takes 50', async () => {
    assert.equal((await register({ redirect_uris: uris(50), post_logout_redirect_uris: uris(50), contacts: ['a@example.com'] })).status, 201);
    const many = await register({ redirect_uris: uris(51) });
    assert.equal(many.status, 400);
    assert.equal(many.body.error, 'invalid_redirect_uri');
    assert.match(String(many.body.error_description), /^redirect_uris: at most 50 entries/);
    for (const metadata of [
      { redirect_uris: uris(1), post_logout_redirect_uris: uris(51) },
      { redirect_uris: uris(1), contacts: Array.from({ length: 11 }, (_, i) => `dev${i}@example.com`) },
      { redirect_uris: [`https://app.example.com/${'x'.repeat(2000)}`] },
    ]) {
      const refused = await register(metadata);
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.match(String(refused.body.error), /^invalid_(redirect_uri|client_metadata)$/);
    }
    // RFC 7592: the client's own update.
    const iat = await initialAccessToken(server);
    const made = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` }, body: JSON.stringify({ redirect_uris: uris(1), token_endpoint_auth_method: 'none' }) });
    assert.equal(made.status, 201);
    const { client_id, registration_client_uri, registration_access_token } = (await made.json()) as Record<string, string>;
    const update = await fetch(registration_client_uri!, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${registration_access_token}` }, body: JSON.stringify({ client_id, redirect_uris: uris(51), token_endpoint_auth_method: 'none' }) });
    assert.equal(update.status, 400);
    assert.equal(((await update.json()) as { error: string }).error, 'invalid_redirect_uri');
    // The admin API (the CLI writes through the same Clients class).
    const byOperator = await adminCreate({ redirect_uris: uris(51), token_endpoint_auth_method: 'none' });
    assert.equal(byOperator.status, 400, JSON.stringify(byOperator.body));
    assert.match(String(byOperator.body.error_description), /redirect_uris: at most 50 entries/);
  });

  it('refuses a redirect URI whose host is no DNS name or IP address as written (odd characters, empty labels, a trailing dot, percent-encoding, IPv4 shorthands, a zero-led or empty port), on every path; takes DNS names, punycode, loopback addresses and native apps\' private-use schemes', async () => {
    for (const uri of [
      'https://bank.example;x/cb',
      'https://a,b.example/cb',
      'https://a..b.example/cb',
      'https://.example.com/cb',
      'https://app.example.com./cb',
      'https://app%2eexample.com/cb',
      'https://ex_ample.com/cb',
      'https://a!b.example/cb',
      'https://-a.example/cb',
      'https://bücher.example/cb',
      'https://0x7f.1/cb',
      'https://1.2.3/cb',
      'http://[0:0:0:0:0:0:0:1]:8080/cb',
      'https://app.example.com:/cb',
      'https://app.example.com:0443/cb',
    ]) {
      const refused = await register({ redirect_uris: [uri] });
      assert.equal(refused.status, 400, `${uri}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error, 'invalid_redirect_uri', uri);
      assert.match(String(refused.body.error_description), /host|port/, uri);
      const logout = await register({ redirect_uris: uris(1), post_logout_redirect_uris: [uri] });
      assert.equal(logout.status, 400, `post-logout ${uri}`);
    }
    assert.match(String((await register({ redirect_uris: ['https://app.example.com./cb'] })).body.error_description), /write the host as app\.example\.com/);
    assert.match(String((await register({ redirect_uris: ['https://bücher.example/cb'] })).body.error_description), /write the host as xn--bcher-kva\.example/);
    const byOperator = await adminCreate({ redirect_uris: ['https://bank.example;x/cb'], token_endpoint_auth_method: 'none' });
    assert.equal(byOperator.status, 400, JSON.stringify(byOperator.body));
    for (const metadata of [
      { redirect_uris: ['https://app.example.com/cb', 'https://xn--bcher-kva.example/cb', 'https://App.Example.com:8443/cb', 'https://intranet/cb', 'https://203.0.113.7/cb', 'https://[2001:db8::1]/cb'] },
      { redirect_uris: ['http://127.0.0.1:8080/cb', 'http://[::1]:8080/cb', 'http://localhost/cb'] },
      { application_type: 'native', redirect_uris: ['com.example.app:/oauth2redirect', 'com.example.app://callback', 'http://127.0.0.1/cb', 'http://[::1]/cb'] },
    ]) {
      const taken = await register(metadata);
      assert.equal(taken.status, 201, `${JSON.stringify(metadata)}: ${JSON.stringify(taken.body)}`);
    }
  });

  it('recovery codes go with the last passkey or authenticator app removed on the account page, and the next one enrolled comes with none of them: the page offers to make new ones', async () => {
    const PASSWORD = 'left open eleventh pass passphrase';
    const person = await server.accounts.create('ivy', PASSWORD);
    const { agent, page } = await signedInToAccountPage(server.issuer, 'ivy', PASSWORD);
    const { page: added } = await authenticatorAdded(agent, page);
    const shown = await agent.submit(added, '/account/recovery-codes', {});
    assert.equal(shown.status, 200);
    assert.equal((await server.secondFactors.summary(person.sub)).recoveryCodesLeft, 10);
    const removed = await agent.submit(await agent.follow(`${server.issuer}/account`), '/account/authenticator/remove', {});
    assert.ok(removed.status < 400, `removed: ${removed.status} ${removed.url}`);
    assert.equal((await server.secondFactors.records.read(person.sub)).recovery, undefined, 'the codes went with the app');
    // A new app: the section says none are left and offers to make them, not "10 of 10 left".
    const again = await signedInToAccountPage(server.issuer, 'ivy', PASSWORD);
    // (The step after the first app's: a step spent is not taken again within its window.)
    const setup = await again.agent.submit(again.page, '/account/authenticator/start', {});
    const secret = setup.html.match(/id="totp-secret">([^<]+)</)![1]!.replace(/\s/g, '');
    const readded = await again.agent.submit(setup, '/account/authenticator/confirm', { code: totpCode(secret) });
    assert.match(readded.url, /done=authenticator\.added/);
    const account = await again.agent.follow(`${server.issuer}/account`);
    assert.doesNotMatch(account.html, /recovery codes left/);
    assert.match(account.html, />Make recovery codes</);
    assert.equal((await server.secondFactors.summary(person.sub)).recoveryCodesLeft, 0);
  });

  it('recovery codes a record kept from before (beside no passkey or authenticator app) are counted as none and dropped when a factor is enrolled', async () => {
    const person = await server.accounts.create('ada', 'left open eleventh pass passphrase');
    const { secret } = await server.secondFactors.totp.begin(person.sub, 'ada', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(person.sub, totpCode(secret, -1), 'test-session'), true);
    await server.secondFactors.recoveryCodes.generate(person.sub);
    const { totp: _removed, ...kept } = await server.secondFactors.records.read(person.sub);
    await server.kv.set(secondFactorsKey(person.sub), JSON.stringify(kept));
    assert.equal((await server.secondFactors.summary(person.sub)).recoveryCodesLeft, 0);
    const next = await server.secondFactors.totp.begin(person.sub, 'ada', 'test-session-2');
    assert.equal(await server.secondFactors.totp.confirm(person.sub, totpCode(next.secret), 'test-session-2'), true);
    const record = await server.secondFactors.records.read(person.sub);
    assert.ok(record.totp, 'the new app is enrolled');
    assert.equal(record.recovery, undefined, 'without the codes from before');
  });

  /** Accounts over the server's store, counting the account records read. */
  function countingAccounts(): { accounts: Accounts; reads: () => number } {
    let reads = 0;
    const kv = new Proxy(server.kv, {
      get(target, name) {
        const value = Reflect.get(target, name, target) as unknown;
        if (name === 'get') return (key: string, ...rest: unknown[]) => ((reads += /^account:[0-9a-f-]{36}$/.test(key) ? 1 : 0), (target.get as (...args: unknown[]) => unknown)(key, ...rest));
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as Kv;
    return { accounts: new Accounts(kv, server.config.accounts.argon2), reads: () => reads };
  }

  it('findByEmail reads the accounts whose address looks like it, not every account, with the same folding (case, width, confusables), in step with new accounts, address changes and removals, and an index built for accounts stored before it', async () => {
    const { accounts, reads } = countingAccounts();
    await accounts.findByEmail('first@example.com'); // builds the index of the store's accounts, once
    for (let i = 0; i < 40; i++) await accounts.createWithoutPassword(`many-${i}`, { email: `many-${i}@example.com` });
    const sam = await accounts.createWithoutPassword('sam-eleventh', { email: 'Sam.Eleventh@Example.com', email_verified: true });
    const before = reads();
    for (const spelling of ['sam.eleventh@example.com', 'SAM.ELEVENTH@EXAMPLE.COM', 'ｓａｍ.eleventh@example.com', 'ѕаm.eleventh@example.com', 'sam\u200b.eleventh@EXAMPLE.com']) {
      assert.deepEqual((await accounts.findByEmail(spelling)).map((account) => account.sub), [sam.sub], spelling);
    }
    assert.ok(reads() - before <= 5, `one account read per lookup, not every account (${reads() - before} reads for 5 lookups)`);
    assert.deepEqual(await accounts.findByEmail('nobody@example.com'), []);
    // An address changed: found under the new one only; removed: under none.
    await accounts.updateClaims(sam.sub, { email: 'sam.moved@example.com', email_verified: true });
    assert.deepEqual(await accounts.findByEmail('sam.eleventh@example.com'), []);
    assert.deepEqual((await accounts.findByEmail('SAM.MOVED@example.com')).map((account) => account.sub), [sam.sub]);
    await accounts.remove('sam-eleventh');
    assert.deepEqual(await accounts.findByEmail('sam.moved@example.com'), []);
    // An account stored before the index existed (written as an older Latchkey wrote it): found once another instance builds the index.
    const old = { sub: '0d5b6a2e-1c4f-4e7a-9b1d-2f3e4a5b6c7d', username: 'old-timer', passwordHash: '', disabled: false, claims: { email: 'old.timer@example.com' }, updatedAt: 1 };
    await server.kv.set(accountKey(old.sub), JSON.stringify(old));
    await server.kv.addToSet(ACCOUNTS_KEY, old.sub);
    await server.kv.del([EMAILS_INDEXED_KEY]);
    assert.deepEqual((await countingAccounts().accounts.findByEmail('Old.Timer@example.com')).map((account) => account.sub), [old.sub]);
  });
});
