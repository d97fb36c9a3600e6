/**
 * Ninth fresh-eyes passes of 2026-12-06 (night), races on the last way in (docs/security-passes.md):
 * the account page never removes a person's last way to sign in (a password, a passkey, an upstream
 * link), but each removal counted the person's ways before it removed its own, so two removals sent at
 * the same moment (two tabs of one browser) each counted the other's way still there, and both went:
 * the last link and the last passkey, the last two passkeys, the last two links. Nothing signed the
 * person in any more. Now the count and the removal hold the person's ways-in claim (accounts/ways-in.ts).
 *
 * Black box: a person made by an upstream (no password), signed in to the account page through it,
 * sends both removals at once, round after round; at least one way in is left every time, and the
 * other removal is told it would be the last.
 */
import assert from 'node:assert/strict';
import { Agent, type Page } from '../helpers/agent.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { assertion, passkeyChallenge, registerSoftPasskeys, softPasskey, type SoftPasskey } from '../helpers/soft-passkeys.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const ROUNDS = 4;

describe('e2e: races on the last way in: two removals at the same moment leave a way in (ninth fresh-eyes passes of 2026-12-06, night)', function () {
  this.timeout(120_000);
  let server: TestServer;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;
  let links: UpstreamLinks;
  let people = 0;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }, clients: [] });
    fake = await startFakeUpstream(SECRET);
    await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'fake', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid profile', displayName: 'Fake', linkByEmail: false, endSession: false });
    links = new UpstreamLinks(server.kv, server.accounts);
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });

  /**
   * A person made by the upstream (no password) with `linkCount` links (the fake's and others') and
   * `passkeyCount` passkeys, signed in to the account page through the fake (and a passkey, as the
   * second factor, when they have one).
   */
  async function signedInPerson(linkCount: number, passkeyCount: number): Promise<{ sub: string; upstreamSub: string; keys: SoftPasskey[]; agent: Agent; page: Page }> {
    const upstreamSub = `way-in-${(people += 1)}`;
    const made = await links.signIn({ id: 'fake', issuer: fake.state.issuer, linkByEmail: false }, upstreamSub, {});
    assert.ok('account' in made);
    const { sub } = made.account;
    for (let more = 1; more < linkCount; more += 1) assert.ok(await links.linkConfirmed(`elsewhere${more}`, upstreamSub, sub, {}, 'https://elsewhere.example.test'));
    const keys = Array.from({ length: passkeyCount }, () => softPasskey());
    await registerSoftPasskeys(server, sub, ...keys);
    fake.state.mode = 'good';
    fake.state.sub = upstreamSub;
    const agent = new Agent();
    let page = await agent.submit(await agent.follow(`${server.issuer}/account`), '/upstream/fake', {});
    // The passkey as the second factor, when the person has one.
    if (keys.length) page = await agent.submit(page, '/passkey', { credential: assertion(keys[0]!, new URL(server.issuer).origin, passkeyChallenge(page), sub, 1) });
    assert.equal(page.url, `${server.issuer}/account`, `the account page, got ${page.status} ${page.url}`);
    return { sub, upstreamSub, keys, agent, page };
  }

  /** The person's ways in now: their password, passkeys and links. */
  async function waysLeft(sub: string): Promise<number> {
    const [account, { passkeys }, listed] = await Promise.all([server.accounts.find(sub), server.secondFactors.summary(sub), links.list(sub)]);
    return (account?.passwordHash ? 1 : 0) + passkeys.length + listed.length;
  }

  /** Both removals sent at once (two tabs): one goes, the other is told it would be the last way in. */
  async function bothAtOnce(sub: string, removals: Promise<Page>[]): Promise<void> {
    const answers = await Promise.all(removals);
    const told = answers.map((answer) => `${answer.status} ${answer.url}`).join('; ');
    assert.equal(await waysLeft(sub), 1, `a way in is left: ${told}`);
    for (const answer of answers) assert.ok(answer.status < 500, `no server error: ${told}`);
    assert.equal(answers.filter((answer) => answer.status === 200).length, 1, `one removal went: ${told}`);
    const refused = answers.find((answer) => answer.status !== 200)!;
    assert.equal(refused.status, 409, told);
    assert.match(refused.html, /only way you can sign in/, told);
  }

  it('the last link and the last passkey, removed at the same moment in two tabs: one stays', async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      const { sub, upstreamSub, keys, agent, page } = await signedInPerson(1, 1);
      await bothAtOnce(sub, [agent.submit(page, '/account/links/remove', { id: `fake:${upstreamSub}` }), agent.submit(page, '/account/passkeys/remove', { id: keys[0]!.id })]);
    }
  });

  it('the last two passkeys (no password, no link), removed at the same moment in two tabs: one stays', async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      const { sub, upstreamSub, keys, agent, page } = await signedInPerson(1, 2);
      // The link went earlier (the passkeys were other ways in).
      assert.equal(await links.remove(sub, `fake:${upstreamSub}`), true);
      await bothAtOnce(sub, keys.map((key) => agent.submit(page, '/account/passkeys/remove', { id: key.id })));
    }
  });

  it('the last two links (no password, no passkey), removed at the same moment in two tabs: one stays', async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      const { sub, upstreamSub, agent, page } = await signedInPerson(2, 0);
      await bothAtOnce(sub, [`fake:${upstreamSub}`, `elsewhere1:${upstreamSub}`].map((id) => agent.submit(page, '/account/links/remove', { id })));
    }
  });

  it('two passkeys of a person with a link too, removed at the same moment: both go, one after the other, and the link stays', async () => {
    const { sub, keys, agent, page } = await signedInPerson(1, 2);
    const answers = await Promise.all(keys.map((key) => agent.submit(page, '/account/passkeys/remove', { id: key.id })));
    for (const answer of answers) assert.equal(answer.status, 200, `${answer.status} ${answer.url}`);
    assert.equal((await server.secondFactors.summary(sub)).passkeys.length, 0);
    assert.equal((await links.list(sub)).length, 1);
  });
});
