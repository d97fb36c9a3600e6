/**
 * One escaping rule for every page (src/http/views.ts): Eta escapes each `<%= %>`, and raw output
 * (`<%~ %>`) places only HTML that was itself rendered from views/ (a partial, the layout's body, an
 * account page section) or made by oidc-provider from its own values (the logout form). A client's
 * name, a username, an upstream's claims or a reflected parameter therefore reach a page as text.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { render } from '../../src/http/views.js';

/** Every raw output allowed in views/, by what it places. */
const RAW_ALLOWED = [
  /^include\('\.\/[a-z-]+', (it|\{ \.\.\.it, [^}]*\})\)$/, // a partial of views/, itself escaped
  /^it\.body$/, // layout.eta: the page already rendered from views/
  /^section\.html$/, // account.eta: each section rendered from views/ (accounts/page/account-page.ts)
  /^it\.form$/, // logout.eta: oidc-provider's form (its action and xsrf), interactions/logout.ts
];

describe('views: one escaping rule', () => {
  it('raw output (<%~ %>) in views/ places only HTML rendered from views/ or made by the engine', () => {
    const views = join(ROOT, 'views');
    const raw: string[] = [];
    for (const file of readdirSync(views).filter((name) => name.endsWith('.eta'))) {
      const text = readFileSync(join(views, file), 'utf8');
      for (const [, expression] of text.matchAll(/<%~\s*([\s\S]*?)\s*-?%>/g)) {
        raw.push(`${file}: ${expression}`);
        assert.ok(RAW_ALLOWED.some((allowed) => allowed.test(expression!)), `${file}: raw output of ${expression}`);
      }
      // Eta's other raw spellings are not used either.
      assert.doesNotMatch(text, /<%-/, `${file}: <%- is raw in some engines`);
    }
    assert.ok(raw.length >= 4, `found the known raw outputs: ${raw.join('; ')}`);
  });

  it('what a page prints is text, in element content and in attributes alike', () => {
    const evil = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`;
    const html = render('error', { title: evil, message: evil, error: evil, detail: evil, requestId: evil });
    assert.doesNotMatch(html, /<script>alert|<img src=x/);
    const links = render('client-links', { client: { name: evil, policyUri: `https://app.example/"onmouseover="alert(3)`, tosUri: 'https://app.example/tos' } });
    assert.doesNotMatch(links, /<script>alert|<img src=x|"onmouseover=/);
    assert.match(links, /&lt;script&gt;/);
  });
});
