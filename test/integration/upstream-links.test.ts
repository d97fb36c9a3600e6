/**
 * Who is linked through an upstream, in a real Redis (what removing the upstream looks through for
 * the grants made with a sign-in through it): links made by a sign-in are found; links written
 * before that index existed (in the layout of then) are found too, indexed once by the first look;
 * a link removed since leaves its person there (a superset, never a person missed).
 */
import assert from 'node:assert/strict';
import { Accounts } from '../../src/accounts/accounts.js';
import { UpstreamLinks, type LinkOutcome } from '../../src/accounts/links.js';
import type { Kv } from '../../src/store/kv.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { backends, redisSettings, type OpenBackend } from '../helpers/backends.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';

const redis = backends.find((backend) => backend.name === 'single redis-server')!;
const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const CORP = 'https://corp.example.test';

describe('upstream links: the people linked through an upstream (real Redis)', function () {
  this.timeout(20_000);
  let store: OpenBackend;
  let accounts: Accounts;

  before(async () => {
    store = await redis.open();
    accounts = new Accounts(store.kv, CHEAP);
  });
  after(() => store?.stop());

  it("keeps an account in the index of its address when two changes of its claims cross: the first's removal of the old address after the second gave it back (review of the eleventh passes)", async () => {
    const person = await accounts.createWithoutPassword('crossing-person', { email: 'x@crossing.example' });
    await accounts.findByEmail('x@crossing.example'); // the index of accounts from before it is made
    const held = heldAt(store.kv, (method, args) => method === 'removeFromSet' && String(args[0]).startsWith('account:email:'));
    // A sign-in through one upstream gives the account y (written, and x read as no longer held) ...
    const first = new Accounts(held.kv, CHEAP).updateClaims(person.sub, { email: 'y@crossing.example' });
    await held.reached;
    // ... and one through another linked upstream gives it x back before the first takes x out of its index.
    await accounts.updateClaims(person.sub, { email: 'x@crossing.example' });
    held.release();
    await first;
    assert.equal((await accounts.find(person.sub))?.claims.email, 'x@crossing.example');
    assert.deepEqual((await accounts.findByEmail('x@crossing.example')).map((account) => account.sub), [person.sub]);
    assert.deepEqual(await accounts.findByEmail('y@crossing.example'), []);
  });

  it('finds the people linked by a sign-in and those linked before the index existed; keeps a person whose link was removed', async () => {
    // Linked before the index existed: the link and the account's set of links, as written then.
    const earlier = await accounts.createWithoutPassword('earlier-person', {});
    await store.kv.set('account:link:corp:corp-earlier', JSON.stringify({ sub: earlier.sub, how: 'created', at: 1 }), { onlyIfAbsent: true });
    await store.kv.addToSet(`account:links:${earlier.sub}`, 'corp:corp-earlier');
    const other = await accounts.create('password-only', 'a password of its own here');

    const links = new UpstreamLinks(store.kv, accounts);
    const signedIn = await links.signIn({ id: 'corp', issuer: CORP, linkByEmail: false }, 'corp-new', { name: 'New' });
    assert.ok('account' in signedIn);
    const elsewhere = await links.signIn({ id: 'elsewhere', issuer: 'https://elsewhere.example.test', linkByEmail: false }, 'elsewhere-1', {});
    assert.ok('account' in elsewhere);

    assert.deepEqual(new Set(await links.peopleLinkedTo('corp')), new Set([earlier.sub, signedIn.account.sub]));
    assert.deepEqual(await links.peopleLinkedTo('elsewhere'), [elsewhere.account.sub]);
    assert.deepEqual(await links.peopleLinkedTo('nobody'), []);
    assert.ok(!(await links.peopleLinkedTo('corp')).includes(other.sub));

    // Linked after the first look: found without indexing again.
    const later = await links.signIn({ id: 'corp', issuer: CORP, linkByEmail: false }, 'corp-later', {});
    assert.ok('account' in later);
    assert.ok((await links.peopleLinkedTo('corp')).includes(later.account.sub));

    assert.equal(await links.remove(signedIn.account.sub, 'corp:corp-new'), true);
    assert.ok((await links.peopleLinkedTo('corp')).includes(signedIn.account.sub), 'a superset: the grants are what removal checks');
  });
  it("a link by email made after the account's address changed and was given to another person takes the upstream's claims without that address (as a later sign-in would): no two people hold it verified", async () => {
    const links = new UpstreamLinks(store.kv, accounts);
    const upstream = { id: 'corp', issuer: CORP, linkByEmail: true };
    const vera = await accounts.create('link-vera', 'a password of its own here', { email: 'vera@link.example', email_verified: true });
    const offered = await links.signIn(upstream, 'corp-vera', { email: 'vera@link.example', email_verified: true, name: 'Vera at Corp' });
    assert.ok('confirm' in offered && offered.confirm.sub === vera.sub, 'a link offered to the account holding the address');
    // While the offer waits for Vera's sign-in, an operator moves her to another address and gives hers to Wim.
    await accounts.updateClaims(vera.sub, { email: 'vera.new@link.example', email_verified: true });
    const wim = await accounts.create('link-wim', 'a password of its own here', { email: 'vera@link.example', email_verified: true });

    assert.ok(await links.linkConfirmed('corp', 'corp-vera', vera.sub, { email: 'vera@link.example', email_verified: true, name: 'Vera at Corp' }, CORP));
    const after = (await accounts.find(vera.sub))!;
    assert.equal(after.claims.email, 'vera.new@link.example', "Wim's address is not Vera's again");
    assert.equal(after.claims.name, 'Vera at Corp', "the upstream's other claims are taken");
    assert.deepEqual((await accounts.findByEmail('vera@link.example')).map((held) => held.sub), [wim.sub]);
  });

  it("an address an app or a person would take for a local account's (emailFold, TR 39 skeleton) is refused even where linking by email is on; the same address in other letter case is offered to link", async () => {
    const links = new UpstreamLinks(store.kv, accounts);
    const sam = await accounts.create('fold-sam', 'a password of its own here', { email: 'sam@fold.example', email_verified: true });
    const linking = { id: 'linking', issuer: CORP, linkByEmail: true };
    // ſ, fullwidth, a soft hyphen and a zero-width space (apps' comparisons), Cyrillic ѕ and а (a person's eye).
    for (const email of ['\u017Fam@fold.example', '\uFF53am@fold.example', 's\u00ADam@fold.example', 'sam@fold.example\u200B', '\u0455\u0430m@fold.example', 'sam@f\u043Eld.example']) {
      assert.deepEqual(await links.signIn(linking, `fold-${email.codePointAt(1)}-${email.length}`, { email, email_verified: true }), { refused: 'email-lookalike' }, JSON.stringify(email));
    }
    const offered = await links.signIn(linking, 'fold-upper', { email: 'SAM@Fold.Example', email_verified: true });
    assert.ok('confirm' in offered && offered.confirm.sub === sam.sub, JSON.stringify(offered));
    const other = await links.signIn(linking, 'fold-other', { email: 'sàm@fold.example', email_verified: true });
    assert.ok('account' in other, 'another address (an accent an app keeps) makes its account');

    // An internationalized domain in its other form (IDNA): one domain to an app that converts it, both ways.
    await accounts.create('idn-ida', 'a password of its own here', { email: 'ida@xn--bcher-kva.example', email_verified: true });
    assert.deepEqual(await links.signIn(linking, 'idn-unicode', { email: 'ida@bücher.example', email_verified: true }), { refused: 'email-lookalike' });
    assert.deepEqual(await links.signIn(linking, 'idn-upper', { email: 'ida@BÜCHER.example', email_verified: true }), { refused: 'email-lookalike' });
    const made = await links.signIn(linking, 'idn-first', { email: 'max@bücher.example', email_verified: true });
    assert.ok('account' in made, 'an address no one holds makes its account');
    await assert.rejects(accounts.create('idn-max', 'a password of its own here', { email: 'max@xn--bcher-kva.example', email_verified: true }), /held, verified, by the account/);
  });
});

/**
 * Ninth fresh-eyes passes of 2026-12-06 (night), races on first upstream sign-ins: first sign-ins
 * (and an operator's new person) with one new address at the same moment, at two instances (two
 * connections to one Redis). Each read the accounts (findByEmail) before either wrote: two
 * identities each made an account with the address, and the same identity at two tabs was told an
 * account with its address exists (read after the other made it, before it linked it).
 */
describe('upstream links: first sign-ins with one new address at the same moment (two instances, real Redis)', function () {
  this.timeout(60_000);
  const ROUNDS = 8;
  let redis: RedisServer;
  let kvs: RedisKv[];
  let instances: { accounts: Accounts; links: UpstreamLinks }[];

  before(async () => {
    redis = await startRedisServer();
    kvs = [0, 1].map(() => new RedisKv(connect(redisSettings({ url: redis.url }))));
    instances = kvs.map((kv) => {
      const accounts = new Accounts(kv, CHEAP);
      return { accounts, links: new UpstreamLinks(kv, accounts) };
    });
  });
  after(async () => {
    await Promise.all((kvs ?? []).map((kv) => kv.close()));
    await redis?.stop();
  });

  const holders = async (email: string) => (await instances[0]!.accounts.findByEmail(email)).map((account) => account.sub);
  const described = (outcome: LinkOutcome) => ('account' in outcome ? `account ${outcome.account.sub}` : 'confirm' in outcome ? `confirm ${outcome.confirm.sub}` : 'busy' in outcome ? 'busy' : `refused ${outcome.refused}`);

  it('two identities (two upstreams) with one new verified address: one account is made; the other sign-in is answered as it would be after it (refused, or offered to link to it)', async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const linkByEmail of [false, true]) {
        const email = `twin-${round}-${linkByEmail}@race.example`;
        const claims = { email, email_verified: true };
        const [a, b] = await Promise.all([
          instances[0]!.links.signIn({ id: 'corp', issuer: CORP, linkByEmail }, `corp-${email}`, claims),
          instances[1]!.links.signIn({ id: 'other', issuer: 'https://other.example.test', linkByEmail }, `other-${email}`, claims),
        ]);
        const made = await holders(email);
        assert.equal(made.length, 1, `one account holds ${email}, got ${made.length}: ${described(a)}; ${described(b)}`);
        const [winner, loser] = 'account' in a ? [a, b] : [b, a];
        assert.ok('account' in winner && winner.account.sub === made[0], `${described(a)}; ${described(b)}`);
        if (linkByEmail) assert.ok('confirm' in loser && loser.confirm.sub === made[0], `offered to link to the account made: ${described(loser)}`);
        else assert.deepEqual(loser, { refused: 'email-linking-off' });
      }
    }
  });

  it('one identity signing in at two tabs at once with a new address, vouched for or not (the session\'s own changes, ninth pass): both are signed in to the one account made (the second tab read the accounts after the first made it, before it linked it)', async () => {
    for (let round = 0; round < ROUNDS * 2; round += 1) {
      const email = `tabs-${round}@race.example`;
      const upstream = { id: 'corp', issuer: CORP, linkByEmail: false };
      const claims = { email, email_verified: round % 2 === 0 };
      // The first tab has made the account and is held at its link's write...
      const first = heldAt(kvs[0]!, (method, args) => method === 'set' && String(args[0]).startsWith('account:link:'));
      const firstTab = new UpstreamLinks(first.kv, new Accounts(first.kv, CHEAP)).signIn(upstream, `tabs-${round}`, claims);
      await first.reached;
      // ...while the second goes on until it answers, or finds something held (a claim another holds).
      const second = watched(kvs[1]!);
      const secondTab = new UpstreamLinks(second.kv, new Accounts(second.kv, CHEAP)).signIn(upstream, `tabs-${round}`, claims);
      await Promise.race([secondTab, second.foundHeld]);
      first.release();
      const outcomes = await Promise.all([firstTab, secondTab]);
      const made = await holders(email);
      assert.equal(made.length, 1, `one account holds ${email}: ${outcomes.map(described).join('; ')}`);
      for (const outcome of outcomes) assert.ok('account' in outcome && outcome.account.sub === made[0], `both tabs signed in to ${made[0]}: ${outcomes.map(described).join('; ')}`);
    }
  });

  it("a linked person's upstream bringing a new address at the moment another identity's first sign-in brings it: one account holds it", async () => {
    const upstream = { id: 'corp', issuer: CORP, linkByEmail: false };
    for (let round = 0; round < ROUNDS; round += 1) {
      const email = `moved-${round}@race.example`;
      const linked = await instances[0]!.links.signIn(upstream, `moving-${round}`, { email: `before-${round}@race.example`, email_verified: true });
      assert.ok('account' in linked);
      const outcomes = await Promise.all([
        instances[0]!.links.signIn(upstream, `moving-${round}`, { email, email_verified: true }),
        instances[1]!.links.signIn({ id: 'other', issuer: 'https://other.example.test', linkByEmail: false }, `arriving-${round}`, { email, email_verified: true }),
      ]);
      const made = await holders(email);
      assert.equal(made.length, 1, `one account holds ${email}: ${outcomes.map(described).join('; ')}`);
    }
  });

  it("an operator's new person with a verified address at the moment an upstream's first sign-in brings it: one account holds it", async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      const email = `operator-${round}@race.example`;
      const claims = { email, email_verified: true };
      const [created, signedIn] = await Promise.allSettled([
        instances[0]!.accounts.create(`operator-race-${round}`, 'a password of its own here', claims),
        instances[1]!.links.signIn({ id: 'corp', issuer: CORP, linkByEmail: false }, `operator-${round}`, claims),
      ]);
      const made = await holders(email);
      const told = `${created.status === 'fulfilled' ? `created ${created.value.sub}` : String(created.reason)}; ${signedIn.status === 'fulfilled' ? described(signedIn.value) : String(signedIn.reason)}`;
      assert.equal(made.length, 1, `one account holds ${email}: ${told}`);
      if (created.status === 'rejected') assert.match(String(created.reason), /held, verified, by the account/, told);
      else assert.deepEqual(signedIn.status === 'fulfilled' && signedIn.value, { refused: 'email-linking-off' }, told);
    }
  });
  it("an address no upstream vouches for claims nothing: an outsider's sign-ins bringing someone's address unverified neither wait for its claim nor take it, so they cannot keep that person's own sign-ins waiting (security-passes.md, the session's own changes, ninth pass)", async () => {
    const upstream = { id: 'corp', issuer: CORP, linkByEmail: true };
    const victim = 'claimed-victim@race.example';
    const mine = await instances[0]!.links.signIn(upstream, 'claimed-victim', { email: victim, email_verified: true });
    assert.ok('account' in mine);
    const outsider = await instances[1]!.links.signIn({ id: 'open', issuer: 'https://open.example.test', linkByEmail: true }, 'outsider', { email: 'outsider@race.example', email_verified: true });
    assert.ok('account' in outsider);
    // Whatever the outsider's sign-ins take set-if-absent.
    const taken: string[] = [];
    const seen = new Proxy(kvs[1]!, {
      get(target, name) {
        const value = Reflect.get(target, name, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (name === 'set' && (args[2] as { onlyIfAbsent?: boolean } | undefined)?.onlyIfAbsent) taken.push(String(args[0]));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as Kv;
    const theirs = new UpstreamLinks(seen, new Accounts(seen, CHEAP));
    // The victim's address is claimed (their own sign-in, say) all the while the outsider signs in with it, unverified.
    let letGo!: () => void;
    const holding = instances[0]!.accounts.withEmailClaimed(victim, () => new Promise<void>((done) => (letGo = done)));
    const outcomes = await Promise.all([
      theirs.signIn({ id: 'open', issuer: 'https://open.example.test', linkByEmail: true }, 'outsider-new', { email: victim, email_verified: false }),
      theirs.signIn({ id: 'open', issuer: 'https://open.example.test', linkByEmail: true }, 'outsider', { email: victim.toUpperCase(), email_verified: false }),
    ]);
    letGo();
    await holding;
    for (const outcome of outcomes) assert.ok(!('busy' in outcome), `answered without the claim: ${outcomes.map(described).join('; ')}`);
    assert.deepEqual(outcomes[0], { refused: 'email-unverified' });
    assert.ok('account' in outcomes[1]! && outcomes[1].account.claims.email === 'outsider@race.example', 'the outsider keeps their own address');
    assert.deepEqual(taken.filter((key) => key.startsWith('account:email-claim:')), [], 'no claim taken by an unverified address');
    assert.deepEqual(await holders(victim), [mine.account.sub]);
  });
});

/** `kv` whose first call `at` names waits (once that call is reached: `reached`) until `release`. */
function heldAt(kv: Kv, at: (method: string, args: unknown[]) => boolean): { kv: Kv; reached: Promise<void>; release(): void } {
  let armed = true;
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((done) => (reach = done));
  const released = new Promise<void>((done) => (release = done));
  const held = new Proxy(kv, {
    get(target, name) {
      const value = Reflect.get(target, name, target) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (armed && at(String(name), args)) {
          armed = false;
          reach();
          await released;
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { kv: held, reached, release };
}

/** `kv`, and `foundHeld`: resolves once a set-if-absent through it finds the key taken (something another holds). */
function watched(kv: Kv): { kv: Kv; foundHeld: Promise<void> } {
  let found!: () => void;
  const foundHeld = new Promise<void>((done) => (found = done));
  const seen = new Proxy(kv, {
    get(target, name) {
      const value = Reflect.get(target, name, target) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const answer = await (value as (...a: unknown[]) => unknown).apply(target, args);
        if (name === 'set' && (args[2] as { onlyIfAbsent?: boolean } | undefined)?.onlyIfAbsent && answer === false) found();
        return answer;
      };
    },
  });
  return { kv: seen, foundHeld };
}
