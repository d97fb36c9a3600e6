/**
 * Signing in to the developer page (/developer) as a person, without a browser: the page's own
 * authorization request, the login form, straight back on /developer (no consent: it is Latchkey itself).
 */
import assert from 'node:assert/strict';
import { Agent, type Page } from './agent.js';
import { signInSteps } from './sign-in.js';

export async function developerSignIn(issuer: string, username: string, password: string, agent = new Agent()): Promise<{ agent: Agent; page: Page }> {
  const page = await signInSteps(agent, await agent.follow(`${issuer}/developer/sign-in`), { username, password, login: 'required', consent: 'stop' });
  assert.equal(page.url, `${issuer}/developer`, `expected the developer page, got ${page.url} (${page.status})`);
  return { agent, page };
}
