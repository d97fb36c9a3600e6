/**
 * A redirect URI registered with capitals in its scheme or host, or its default port
 * ("HTTP://LOCALHOST:8090/cb": the developer page, the CLI and RFC 7591 take it as written, and
 * compare it exactly) never matches what an app that builds its URL with a URL parser sends
 * ("http://localhost:8090/cb"). The error page's details said only that it did not match; they now
 * say that the registered one is written otherwise, as they say of a trailing slash, a scheme or a
 * port (docs/security-passes.md, "Looked at in the seventeenth passes: the newcomer's first hour").
 * Nothing is said for an asked URI not written as the parser writes it (what a link's writer chose).
 */
import assert from 'node:assert/strict';
import type { Context } from 'koa';
import { renderProviderError } from '../../src/http/errors.js';

/** The error page's text for the engine's refusal of `asked`, with `registered` the client's URIs. */
async function details(asked: string, registered: string[], route = 'authorization'): Promise<string> {
  const logout = route === 'end_session';
  const ctx = {
    state: {},
    oidc: {
      route,
      params: logout ? { post_logout_redirect_uri: asked } : { redirect_uri: asked },
      client: { redirectUris: logout ? ['https://app.example.test/cb'] : registered, postLogoutRedirectUris: logout ? registered : [] },
    },
  } as unknown as Context;
  const out = logout
    ? { error: 'invalid_request', error_description: 'post_logout_redirect_uri not registered' }
    : { error: 'invalid_redirect_uri', error_description: "redirect_uri did not match any of the client's registered redirect_uris" };
  await renderProviderError(ctx, out);
  return String(ctx.body).replaceAll('&#39;', "'");
}

describe('a redirect URI registered in another spelling than the URL parser writes (seventeenth passes)', () => {
  it('the page says the registered one is written otherwise, without naming it', async () => {
    for (const registered of ['HTTP://LOCALHOST:8090/cb', 'http://localhost:8090/cb'.replace('localhost', 'LocalHost'), 'https://app.example.test:443/cb']) {
      const asked = new URL(registered).href;
      const page = await details(asked, ['https://other.example.test/x', registered]);
      assert.match(page, /differs from a registered one only by the way the registered one is written \(capital letters in its scheme or host, or its default port, which apps and browsers leave out\): register it as written here \(redirect URIs are compared exactly\)/, registered);
      assert.ok(!page.includes(registered), `the registered spelling is not shown: ${registered}`);
    }
    const logout = await details('http://localhost:8090/bye', ['HTTP://localhost:8090/bye'], 'end_session');
    assert.match(logout, /it differs from a registered one only by the way the registered one is written/);
  });

  it('an asked URI in another spelling, or another URI, gets no such words', async () => {
    assert.doesNotMatch(await details('HTTP://LOCALHOST:8090/cb', ['http://localhost:8090/cb']), /differs/);
    assert.doesNotMatch(await details('http://localhost:8090/other', ['HTTP://LOCALHOST:8090/cb']), /differs/);
  });
});
