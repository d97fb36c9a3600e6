/**
 * Who is linked through an upstream, in a real Redis (what removing the upstream looks through for
 * the grants made with a sign-in through it): links made by a sign-in are found; links written
 * before that index existed (in the layout of then) are found too, indexed once by the first look;
 * a link removed since leaves its person there (a superset, never a person missed).
 */
import assert from 'node:assert/strict';
import { Accounts } from '../../src/accounts/accounts.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { backends, type OpenBackend } from '../helpers/backends.js';

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
