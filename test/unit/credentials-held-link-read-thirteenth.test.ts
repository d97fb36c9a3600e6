/**
 * credentialsHeld (src/accounts/session-credentials.ts) at a sign-in's resume, as reviewed in the
 * thirteenth passes (security-passes.md, review of the merged changes, h16): the link a sign-in
 * through an upstream used is read once, and the same read answers both whether it is still the
 * person's and under which issuer its upstream must still be configured.
 */
import assert from 'node:assert/strict';
import { credentialsHeld } from '../../src/accounts/session-credentials.js';
import type { CredentialRecords } from '../../src/accounts/credentials.js';
import type { UpstreamLinks } from '../../src/accounts/links.js';

const records = { read: async () => ({ passkeys: [] }) } as unknown as CredentialRecords;
const account = async () => ({ passwordStamp: undefined });
/** The upstream "corp" configured now under the issuer given to it since. */
const offeredNow = async (id: string, issuer: string | undefined) => id === 'corp' && (issuer === undefined || issuer === 'https://second.example');

describe('unit: a sign-in through an upstream resumes on one read of its link', () => {
  it('a link replaced as the check reads it (the id given to another issuer, whose sign-in took the upstream sub) does not resume the sign-in the first vouched for', async () => {
    const reads: string[] = [];
    // The first read sees the person's link made through the first issuer; a sign-in through the
    // provider given the id since then replaces it (links.ts signIn) with one to another account.
    const links = {
      async find(upstream: string, upstreamSub: string) {
        reads.push(`${upstream}:${upstreamSub}`);
        return reads.length === 1 ? { sub: 'person', how: 'created', at: 1, iss: 'https://first.example' } : { sub: 'someone-else', how: 'created', at: 2, iss: 'https://second.example' };
      },
    } as unknown as UpstreamLinks;
    const held = credentialsHeld(records, links, offeredNow, account);
    assert.equal(await held('person', { methods: ['federated'], links: ['corp:alice'] }, undefined), false);
    assert.deepEqual(reads, ['corp:alice']);
  });
});
