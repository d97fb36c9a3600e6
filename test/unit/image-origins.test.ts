/**
 * Other sites' images under the strict CSP (src/http/image-origins.ts), the one place both the
 * account page's app logos and the login, consent and device pages' logo (interactions/
 * client-branding.ts) go through: only http(s) URLs, and img-src widened by exactly their origins.
 */
import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import Koa, { type Context } from 'koa';
import { allowImagesFrom, registeredHosts, returnedTo, webUrl } from '../../src/http/image-origins.js';
import { allowLogo } from '../../src/interactions/client-branding.js';

const CSP = "default-src 'self'; img-src 'self' data:; script-src 'self'";

function context(csp = CSP): Context {
  const req = new IncomingMessage(new Socket());
  const ctx = new Koa().createContext(req, new ServerResponse(req));
  if (csp) ctx.set('Content-Security-Policy', csp);
  return ctx;
}

describe('image origins under the CSP', () => {
  it('shows only http(s) URLs', () => {
    assert.equal(webUrl('https://cdn.example.test/logo.png')?.href, 'https://cdn.example.test/logo.png');
    assert.equal(webUrl('http://127.0.0.1:8080/logo.png')?.origin, 'http://127.0.0.1:8080');
    for (const bad of ['javascript:alert(1)', 'data:image/png;base64,AAAA', 'not a url', 42, undefined]) assert.equal(webUrl(bad), undefined, String(bad));
  });

  it("a host that is no DNS name (';' and the like) is neither shown nor written into the CSP, where it would add a directive", () => {
    for (const bad of ['https://cdn.example.test;sandbox/logo.png', 'https://cdn.example.test;form-action/l.png', "https://x'unsafe-inline'/l.png", 'https://a,b/l.png']) {
      assert.equal(webUrl(bad), undefined, bad);
      const ctx = context();
      allowImagesFrom(ctx, [bad]);
      assert.equal(ctx.response.get('Content-Security-Policy'), CSP, bad);
    }
    assert.equal(webUrl('http://[::1]:8080/logo.png')?.origin, 'http://[::1]:8080');
    assert.equal(webUrl('https://xn--bcher-kva.example/logo.png')?.hostname, 'xn--bcher-kva.example');
  });

  it('widens img-src alone, by each origin once', () => {
    const ctx = context();
    allowImagesFrom(ctx, ['https://a.example.test/1.png', 'https://a.example.test/2.png', 'https://b.example.test/x.svg']);
    assert.equal(ctx.response.get('Content-Security-Policy'), "default-src 'self';img-src 'self' data: https://a.example.test https://b.example.test;script-src 'self'");
    const none = context();
    allowImagesFrom(none, []);
    assert.equal(none.response.get('Content-Security-Policy'), CSP);
  });

  it('a client logo on the sign-in pages goes through the same widening', () => {
    const ctx = context();
    allowLogo(ctx, { name: 'Notes', logoUri: 'https://cdn.notes.example.test/logo.png' });
    assert.equal(ctx.response.get('Content-Security-Policy'), "default-src 'self';img-src 'self' data: https://cdn.notes.example.test;script-src 'self'");
    const without = context();
    allowLogo(without, { name: 'Notes' });
    assert.equal(without.response.get('Content-Security-Policy'), CSP);
  });

  it('returnedTo: where a redirect URI sends the person, in words they can check', () => {
    assert.equal(returnedTo('https://notes.example.test/callback'), 'notes.example.test');
    assert.equal(returnedTo('https://notes.example.test:8443/cb'), 'notes.example.test:8443');
    assert.equal(returnedTo('http://127.0.0.1:5173/cb'), 'a program on this device (127.0.0.1:5173)');
    assert.equal(returnedTo('http://localhost:3000/cb'), 'a program on this device (localhost:3000)');
    assert.equal(returnedTo('http://[::1]:3000/cb'), 'a program on this device ([::1]:3000)');
    assert.equal(returnedTo('com.example.notes:/callback'), 'an app on this device (com.example.notes)');
    assert.equal(returnedTo(undefined), undefined, 'the device flow has none');
    assert.equal(returnedTo('not a url'), undefined);
  });

  it('returnedTo and registeredHosts read this machine as the consent prompt does: 127/8, names under localhost, the hosts file\'s loopback names, a trailing dot (tenth pass at the new clients)', () => {
    for (const uri of ['http://127.0.0.2:5173/cb', 'http://notes.localhost:5173/cb', 'https://ip6-localhost:8443/cb', 'https://localhost4/cb', 'https://localhost./cb', 'http://[::ffff:7f00:1]:9/cb', 'https://0.0.0.0/cb']) {
      assert.equal(returnedTo(uri), `a program on this device (${new URL(uri).host})`, uri);
    }
    assert.deepEqual(registeredHosts({ client_uri: 'https://tv.example.test', redirect_uris: ['http://tv.localhost/cb', 'http://127.0.0.2/cb', 'https://localhost6/cb', 'https://tv.example.test/cb'] }), ['tv.example.test']);
  });
});
