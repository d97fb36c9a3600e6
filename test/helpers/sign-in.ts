/**
 * The one sign-in driver (signInSteps): a person's steps on our pages once an authorization
 * request has shown one of them (the login form, then the consent page), each step with an option.
 * frontChannel (openid-client), the conformance RelyingParty and developerSignIn start the request
 * and call it; a suite that tests a step itself (a wrong password, a forged CSRF token) submits
 * that form by hand.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, type Page } from './agent.js';

export const isLogin = (page: Page) => page.url.includes('/interaction/') && page.html.includes('name="password"');
export const isConsent = (page: Page) => page.url.includes('/interaction/') && page.html.includes('/confirm');

/** A page as a failed step's message tells it: status, URL and the start of its text (an error page says why). */
const told = (page: Page) => `${page.status} ${page.url}: ${page.html.replace(/<(style|script)[^]*?<\/\1>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300)}`;

export interface SignInOptions {
  readonly username: string;
  readonly password: string;
  /** Login form fields on top of username and password. */
  readonly fields?: Record<string, string>;
  /** 'if-shown' (default): sign in when the login page is shown; 'required': fail unless it is. */
  readonly login?: 'if-shown' | 'required';
  /** 'if-shown' (default): allow when the consent page is shown; 'required': fail unless it is; 'stop': leave the person on it. */
  readonly consent?: 'if-shown' | 'required' | 'stop';
  /** Where the front channel ends (a URL prefix, the client's redirect URI): a redirect there is returned unvisited. */
  readonly stopAt?: string;
}

/** From `page` (where the authorization request led), the login and consent steps as asked; returns the last page. */
export async function signInSteps(agent: Agent, page: Page, steps: SignInOptions): Promise<Page> {
  const { login = 'if-shown', consent = 'if-shown', stopAt } = steps;
  if (login === 'required') assert.ok(isLogin(page), `expected the login page, got ${told(page)}`);
  if (isLogin(page)) page = await agent.submit(page, '/login', { username: steps.username, password: steps.password, ...steps.fields }, stopAt);
  if (consent === 'stop') return page;
  if (consent === 'required') assert.ok(isConsent(page), `expected the consent page, got ${told(page)}`);
  if (isConsent(page)) page = await agent.submit(page, '/confirm', {}, stopAt);
  return page;
}

/**
 * An authorization request of `config`'s client (scope openid, PKCE S256, `params` on top),
 * followed to Latchkey's first page, or straight back to `redirectUri`.
 */
export async function startAuthorization(agent: Agent, config: oidc.Configuration, redirectUri: string, params: Record<string, string> = {}): Promise<{ page: Page; verifier: string }> {
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...params,
  });
  return { page: await agent.follow(url.href, {}, redirectUri), verifier };
}

/**
 * What silent requests (prompt=none) of `config`'s client get at `agent`'s browser, one per probe
 * (its parameters): "error: error_description" each; none of them may be a code.
 */
export async function silentAnswers(agent: Agent, config: oidc.Configuration, redirectUri: string, probes: Record<string, Record<string, string>>): Promise<Record<string, string>> {
  const answers: Record<string, string> = {};
  for (const [probe, params] of Object.entries(probes)) {
    const asked = await startAuthorization(agent, config, redirectUri, { prompt: 'none', ...params });
    const answer = new URL(asked.page.url);
    assert.ok(asked.page.url.startsWith(redirectUri), `${probe}: back at the client: ${asked.page.url}`);
    assert.equal(answer.searchParams.get('code'), null, `${probe}: a code`);
    answers[probe] = `${answer.searchParams.get('error')}: ${answer.searchParams.get('error_description')}`;
  }
  return answers;
}

/** An app that registers itself (RFC 7591, open registration at `serverUrl`) as a public client, with `metadata` on top; its client id and configuration. */
export async function registerPublicClient(serverUrl: string, issuer: string, redirectUri: string, metadata: Record<string, unknown> = {}): Promise<{ id: string; config: oidc.Configuration }> {
  const registered = await fetch(`${serverUrl}/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', ...metadata }),
  });
  const id = ((await registered.json()) as { client_id: string }).client_id;
  return { id, config: await oidc.discovery(new URL(issuer), id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] }) };
}

/**
 * A public device client's flow (RFC 8628): the device asks with `params` (openid-client), the
 * person approves at /device (types the code, confirms, signs in and allows), and the device's
 * token request names the same `resource`; the token endpoint's answer.
 */
export async function approvedDevice(
  server: { issuer: string; url: string },
  clientId: string,
  person: { username: string; password: string },
  params: { scope: string; resource: string },
): Promise<{ access_token?: string; expires_in?: number; refresh_token?: string }> {
  const config = await oidc.discovery(new URL(server.issuer), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  const device = await oidc.initiateDeviceAuthorization(config, params);
  const agent = new Agent();
  const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
  const page = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), person);
  assert.match(page.html, /Device connected/);
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: clientId, resource: params.resource }),
  });
  const body = (await response.json()) as { access_token?: string; expires_in?: number; refresh_token?: string };
  assert.ok(body.access_token, JSON.stringify(body));
  return body;
}

/**
 * A new browser signed in to `username`'s account page at `issuer` just now with `password`, and the
 * second factor's `code` (an authenticator app's) when asked.
 */
export async function signedInToAccountPage(issuer: string, username: string, password: string, code?: () => string): Promise<{ agent: Agent; page: Page }> {
  const agent = new Agent();
  let page = await signInSteps(agent, await agent.follow(`${issuer}/account`), { username, password, login: 'required', consent: 'stop' });
  if (code && page.html.includes('/second-factor')) page = await agent.submit(page, '/second-factor', { method: 'totp', code: code() });
  assert.equal(page.url, `${issuer}/account`, `expected the account page, got ${page.status} ${page.url}`);
  return { agent, page };
}

/** The code of the authenticator app with the base32 `secret`, `steps` time steps from now. */
export const totpCode = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

/** An authenticator app added on the account page (`page`, signed in), confirmed with the code of the step before: its secret and the page after. */
export async function authenticatorAdded(agent: Agent, page: Page): Promise<{ secret: string; page: Page }> {
  const setup = await agent.submit(page, '/account/authenticator/start', {});
  const secret = setup.html.match(/id="totp-secret">([^<]+)</)?.[1]?.replace(/\s/g, '');
  assert.ok(secret, `a setup page with a secret: ${told(setup)}`);
  const added = await agent.submit(setup, '/account/authenticator/confirm', { code: totpCode(secret, -1) });
  assert.match(added.url, /done=authenticator\.added/, `the app is added: ${told(added)}`);
  return { secret, page: added };
}
