/**
 * A client's metadata is made once per client object (src/provider/client-metadata.ts), by every
 * reader on a person's pages: oidc-provider's Client#metadata() renames every property to
 * snake_case anew at each call, and the sign-in page asked it at every login (registeredItself,
 * besides the branding made once). Sixteenth passes, issue #18 (h5): the login page's own CPU.
 */
import assert from 'node:assert/strict';
import type { Provider } from 'oidc-provider';
import { brandingOf, registeredItself } from '../../src/interactions/client-branding.js';

type Client = NonNullable<Awaited<ReturnType<Provider['Client']['find']>>>;

describe('client metadata on the sign-in pages (sixteenth passes)', () => {
  it('is read once per client object by the branding and the self-registered check together', async () => {
    let made = 0;
    const client = (owner?: string) =>
      ({ clientId: 'notes', clientName: 'Notes', metadata: () => (made++, { logo_uri: 'https://cdn.notes.example.test/logo.png', ...(owner ? { owner } : {}) }) }) as unknown as Client;
    const notes = client();
    let asked = 0;
    const managesItself = async () => (asked++, false);
    for (let i = 0; i < 3; i += 1) {
      brandingOf(notes, 'notes');
      assert.equal(await registeredItself(notes, managesItself), false);
    }
    assert.equal(made, 1, 'the metadata made once for the branding and every check');
    assert.equal(asked, 3, 'whether it manages itself is still asked every time (it changes without a new client object)');

    // A developer's app (owner) is self-registered, read from its own object's metadata.
    const owned = client('dev-1');
    assert.equal(await registeredItself(owned, managesItself), true);
    assert.equal(await registeredItself(owned, managesItself), true);
    assert.equal(made, 2);
  });
});
