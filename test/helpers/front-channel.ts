/**
 * The code flow's front channel as a person: an authorization request with PKCE S256, the login
 * page if it is shown, the consent page if it is shown, back at the redirect URI.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from './agent.js';
import { signInSteps } from './sign-in.js';

export interface FrontChannel {
  readonly agent: Agent;
  readonly callback: URL;
  readonly verifier: string;
}

export async function frontChannel(
  config: oidc.Configuration,
  options: { redirectUri: string; username: string; password: string; params?: Record<string, string>; agent?: Agent },
): Promise<FrontChannel> {
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: options.redirectUri,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...options.params,
  });
  const agent = options.agent ?? new Agent();
  const stop = options.redirectUri;
  const page = await signInSteps(agent, await agent.follow(url.href, {}, stop), { username: options.username, password: options.password, stopAt: stop });
  assert.ok(page.url.startsWith(stop), `expected a redirect to ${stop}, got ${page.url}`);
  return { agent, callback: new URL(page.url), verifier };
}
