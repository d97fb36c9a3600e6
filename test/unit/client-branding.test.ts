/**
 * What the sign-in pages show of a client (src/interactions/client-branding.ts): made once per
 * client object, which never changes (provider-patches.test.ts pins that), and anew for the new
 * object an update makes.
 */
import assert from 'node:assert/strict';
import type { Provider } from 'oidc-provider';
import { brandingOf } from '../../src/interactions/client-branding.js';

type Client = NonNullable<Awaited<ReturnType<Provider['Client']['find']>>>;

describe('client branding', () => {
  it('is made once per client object, and anew for an updated client', () => {
    let made = 0;
    const client = (name: string) => ({ clientName: name, metadata: () => (made++, { logo_uri: 'https://cdn.notes.example.test/logo.png', tos_uri: 'javascript:alert(1)' }) }) as unknown as Client;
    const notes = client('Notes');
    const first = brandingOf(notes, 'notes');
    assert.deepEqual(first, { name: 'Notes', logoUri: 'https://cdn.notes.example.test/logo.png', policyUri: undefined, tosUri: undefined, domain: undefined, hosts: [] });
    assert.equal(brandingOf(notes, 'notes'), first);
    assert.equal(made, 1, 'the metadata read once');
    assert.equal(brandingOf(client('Notes, renamed'), 'notes').name, 'Notes, renamed');
    assert.equal(brandingOf(undefined, 'https://app.example.test/client.json').domain, 'app.example.test');
  });
});
