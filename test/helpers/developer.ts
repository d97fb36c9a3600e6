/**
 * Signing in to the developer page (/developer) as a person, without a browser: the page's own
 * authorization request, the login form, consent when it is asked, back on /developer.
 */
import assert from 'node:assert/strict';
import { Agent, type Page } from './agent.js';

export async function developerSignIn(issuer: string, username: string, password: string, agent = new Agent()): Promise<{ agent: Agent; page: Page }> {
  let page = await agent.follow(`${issuer}/developer/sign-in`);
  assert.ok(page.html.includes('name="password"'), `expected the login page, got ${page.url}`);
  page = await agent.submit(page, '/login', { username, password });
  if (page.html.includes('/confirm')) page = await agent.submit(page, '/confirm', {});
  assert.equal(page.url, `${issuer}/developer`, `expected the developer page, got ${page.url} (${page.status})`);
  return { agent, page };
}
