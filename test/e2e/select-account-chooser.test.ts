/**
 * The account chooser of prompt=select_account (interactions/select-account.ts,
 * provider/patches/select-account.ts) as an attacker would try it: "Continue as" signs in no one
 * the session did not sign in, and never stands in for a sign-in the request needs for another
 * reason (prompt=login, max_age, acr_values, a client's require_mfa); a person disabled or given a
 * new password by an operator while the chooser is open gets no code from it; and the POST needs
 * this sign-in's form token and its interaction cookie (no CSRF, no replay from another browser).
 */
import assert from 'node:assert/strict';
import { formIn } from '../helpers/agent.js';
import { latchkey } from '../helpers/process.js';
import { signInSteps } from '../helpers/sign-in.js';
import { addPerson, Agent, ALICE, callbackParams, isLogin, RelyingParty, startOp, webClient, type Flow, type Op, type Person } from '../conformance/fixture.js';
import type { Page } from '../helpers/agent.js';

const SECRET = 'select-account-client-secret-with-plenty-of-entropy';
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describe('e2e: the select_account chooser cannot stand in for a sign-in', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;
  let strict: RelyingParty;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      clients: [webClient('web', SECRET), webClient('strict', SECRET, { require_mfa: true })],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    strict = await RelyingParty.create(op, 'strict', { secret: SECRET });
  });
  after(() => op?.stop());

  /** A browser with `person` signed in (password only) through `web`. */
  async function signedIn(person: Person): Promise<Agent> {
    const agent = new Agent();
    await web.redeem(await web.signIn(agent, person));
    return agent;
  }

  async function newPerson(username: string): Promise<Person> {
    const person = { username, password: `${username} has a long enough passphrase`, name: username };
    await addPerson(op.env, person);
    return person;
  }

  /** POSTs "Continue as" for the interaction `page` belongs to, with the form token found on it (the chooser's, or the login page's of the same interaction). */
  function continueFrom(agent: Agent, page: Page, fields: Record<string, string> = {}, stopAt?: string): Promise<Page> {
    const form = formIn(page.html, page.html.includes('/continue"') ? '/continue' : '/login');
    const action = new URL(form.action.replace(/\/login$/, '/continue'), page.url).href;
    return agent.follow(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: form.hidden.csrf ?? '', ...fields }) }, stopAt);
  }

  const isChooser = (page: Page) => page.html.includes('/continue"') && !isLogin(page);
  const noCode = (flow: Flow, page: Page, what: string) => {
    assert.ok(!page.url.startsWith(flow.redirectUri) || callbackParams({ ...flow, page }).get('code') === null, `${what}: no code, got ${page.url}`);
    assert.ok(page.status < 500, `${what}: ${page.status}`);
  };

  it('with another reason to sign in (prompt=login, max_age passed, acr_values above the session, require_mfa), the login page is shown and "Continue as" is refused', async () => {
    const agent = await signedIn(ALICE);
    const cases: [string, RelyingParty, Record<string, string>][] = [
      ['prompt=login', web, { prompt: 'select_account login' }],
      ['acr_values=mfa', web, { prompt: 'select_account', acr_values: 'mfa' }],
      ['require_mfa', strict, { prompt: 'select_account' }],
    ];
    // Authentication times are whole seconds: after two, more than one has passed by every reading.
    await sleep(2100);
    cases.push(['max_age=1', web, { prompt: 'select_account', max_age: '1' }]);
    for (const [what, client, params] of cases) {
      const flow = await client.authorize(agent, params);
      assert.ok(isLogin(flow.page), `${what}: the login page, got ${flow.page.status} ${flow.page.url}`);
      assert.ok(!isChooser(flow.page), `${what}: no chooser`);
      const page = await continueFrom(agent, flow.page, {}, flow.redirectUri);
      assert.equal(page.status, 400, `${what}: "Continue as" is refused, got ${page.status} ${page.url}`);
      noCode(flow, page, what);
    }
    // The same browser still gets the chooser when selection is the only reason.
    assert.ok(isChooser((await web.authorize(agent, { prompt: 'select_account' })).page));
  });

  it('a person disabled, or given a new password by an operator, while the chooser is open gets no code from it', async () => {
    for (const command of ['disable', 'passwd'] as const) {
      const person = await newPerson(`chooser-${command}`);
      const agent = await signedIn(person);
      const flow = await web.authorize(agent, { prompt: 'select_account' });
      assert.ok(isChooser(flow.page), `${command}: the chooser`);
      const run =
        command === 'disable'
          ? await latchkey(op.env, ['users', 'disable', person.username])
          : await latchkey(op.env, ['users', 'passwd', person.username, '--password-stdin'], 'an operator chose this new passphrase');
      assert.equal(run.status, 0, run.stderr);
      const page = await continueFrom(agent, flow.page, {}, flow.redirectUri);
      noCode(flow, page, command);
    }
  });

  it('a person removed while the chooser is open: reloaded, or "Continue as", it is the login form of the same request again (was "Sign-in expired", a dead end), where another account signs in and the app gets its code', async () => {
    for (const way of ['reload', 'continue'] as const) {
      const person = await newPerson(`chooser-removed-${way}`);
      const agent = await signedIn(person);
      const flow = await web.authorize(agent, { prompt: 'select_account' });
      assert.ok(isChooser(flow.page), `${way}: the chooser`);
      const run = await latchkey(op.env, ['users', 'remove', person.username]);
      assert.equal(run.status, 0, run.stderr);
      // The removal ended the session: the same authorization request is made again, without it.
      const page = way === 'reload' ? await agent.follow(flow.page.url, {}, flow.redirectUri) : await continueFrom(agent, flow.page, {}, flow.redirectUri);
      noCode(flow, page, way);
      assert.equal(page.status, 200, `${way}: ${page.status} ${page.url}`);
      assert.ok(isLogin(page) && !isChooser(page), `${way}: the login page, got ${page.url}`);
      // A way forward: another account signs in there, and the app gets a code for the request it made.
      const done = await signInSteps(agent, page, { username: ALICE.username, password: ALICE.password, login: 'required', stopAt: flow.redirectUri });
      assert.ok(callbackParams({ ...flow, page: done }).get('code'), `${way}: a code for alice, got ${done.status} ${done.url}`);
      assert.equal(callbackParams({ ...flow, page: done }).get('state'), flow.state, `${way}: with the request's state`);
    }
  });

  it('"Continue as" needs this sign-in\'s form token and its browser: a forged or missing token is 403, another browser (no interaction cookie) 400, and neither gives a code', async () => {
    const agent = await signedIn(ALICE);
    const flow = await web.authorize(agent, { prompt: 'select_account' });
    assert.ok(isChooser(flow.page));
    for (const csrf of ['', 'forged', formIn(flow.page.html, '/continue').hidden.csrf!.slice(0, -2)]) {
      const page = await continueFrom(agent, flow.page, { csrf }, flow.redirectUri);
      assert.equal(page.status, 403, `csrf "${csrf}": ${page.status} ${page.url}`);
      noCode(flow, page, `csrf "${csrf}"`);
    }
    // Another browser, even with a session of the same person and the right token: the interaction is this browser's.
    const elsewhere = await signedIn(ALICE);
    const replayed = await continueFrom(elsewhere, flow.page, {}, flow.redirectUri);
    assert.equal(replayed.status, 400, `${replayed.status} ${replayed.url}`);
    noCode(flow, replayed, 'another browser');
    // The chooser still works in its own browser afterwards.
    const page = await continueFrom(agent, flow.page, {}, flow.redirectUri);
    assert.ok(callbackParams({ ...flow, page }).get('code'), page.url);
  });
});
