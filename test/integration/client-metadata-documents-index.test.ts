/**
 * The index of Client ID Metadata Documents whose metadata is kept accepted
 * (store/client-metadata-documents.ts), on every store: bounded, and still what a start with the
 * feature switched off ends (registration/client-metadata-documents.ts documentsSwitchedOff).
 *
 * The twentieth endings pass kept it as a plain set whose TTL each add renewed: under a steady stream
 * of new documents (anyone may name one) no member ever expired, and it grew without bound (found in
 * that pass, fixed in the idle-lifetime pass). Now each URL is scored by when its accepted record
 * ends (Kv.addExpiring), and each add drops the ended ones in the same step; the previous release's
 * plain set is read beside it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Kv } from '../../src/store/kv.js';
import { ClientMetadataDocumentCache } from '../../src/store/client-metadata-documents.js';
import { CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY, CLIENT_METADATA_DOCUMENTS_ACCEPTED_KEY, clientMetadataDocumentAcceptedKey } from '../../src/store/keys.js';
import { documentsSwitchedOff } from '../../src/registration/client-metadata-documents.js';
import { backends, PREFIX, remoteEmbedded, type OpenBackend } from '../helpers/backends.js';

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

for (const backend of [...backends, remoteEmbedded]) {
  describe(`Client ID Metadata Documents' accepted index: ${backend.name}`, function () {
    this.timeout(30_000);
    let open: OpenBackend;
    let kv: Kv;

    before(async () => {
      open = await backend.open();
      kv = open.kv;
    });
    after(async () => open?.stop());

    it('addExpiring drops the members already ended at each add, in the same step; a member\'s end only moves later; the key\'s TTL only grows', async () => {
      const key = `expiring:${randomUUID()}`;
      // Members of 2 s (not 1: the adds and the read below, on a loaded machine, come within it).
      for (let at = 0; at < 50; at += 1) await kv.addExpiring(key, `https://short.example/${at}`, 2);
      await kv.addExpiring(key, 'https://kept.example/a', 600);
      await kv.addExpiring(key, 'https://kept.example/a', 2);
      assert.equal((await kv.liveMembers(key)).length, 51);
      await sleep(2_200);
      assert.deepEqual(await kv.liveMembers(key), ['https://kept.example/a'], 'ended members are not read');
      if (open.raw) assert.equal(await open.raw.zcard(`${PREFIX}${key}`), 51, 'nothing dropped until the next add');
      await kv.addExpiring(key, 'https://new.example/b', 1);
      assert.deepEqual((await kv.liveMembers(key)).sort(), ['https://kept.example/a', 'https://new.example/b']);
      if (open.raw) {
        // Before the fix (a plain set, its TTL renewed by each add): all 52.
        assert.equal(await open.raw.zcard(`${PREFIX}${key}`), 2, 'the ended ones are gone from the store');
        const ttl = await open.raw.ttl(`${PREFIX}${key}`);
        assert.ok(ttl > 590 && ttl <= 600, `the key lives as long as its longest member: ${ttl}`);
      }
      await kv.removeExpiring(key, 'https://kept.example/a');
      assert.deepEqual(await kv.liveMembers(key), ['https://new.example/b']);
    });

    it('a document accepted is indexed by its end, kept no longer than its record; switched off, every live one is ended, those of the previous release\'s plain set too, and the index is left empty', async () => {
      const keep = 600;
      const cache = new ClientMetadataDocumentCache(kv, keep);
      const urls = [`https://agent.example/${randomUUID()}.json`, `https://agent.example/${randomUUID()}.json`];
      for (const url of urls) assert.equal(await cache.replaceAccepted(url, undefined, JSON.stringify({ client_id: url })), true);
      if (open.raw) {
        assert.equal(await open.raw.type(`${PREFIX}${CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY}`), 'zset');
        const [score, ttl] = [Number(await open.raw.zscore(`${PREFIX}${CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY}`, urls[0]!)), await open.raw.ttl(`${PREFIX}${clientMetadataDocumentAcceptedKey(urls[0]!)}`)];
        const ends = (score - Date.now()) / 1000;
        assert.ok(ends >= ttl && ends <= keep + 61, `indexed until its record ends (${ttl} s) and at most a minute more: ${ends} s`);
        assert.equal(await open.raw.exists(`${PREFIX}${CLIENT_METADATA_DOCUMENTS_ACCEPTED_KEY}`), 0, 'the plain set is no longer written');
      }
      // A document accepted by the previous release: its URL in the plain set.
      const before = `https://agent.example/${randomUUID()}.json`;
      await kv.compareAndSet(clientMetadataDocumentAcceptedKey(before), undefined, JSON.stringify({ client_id: before }), keep);
      await kv.addToSet(CLIENT_METADATA_DOCUMENTS_ACCEPTED_KEY, before, keep);
      // One indexed whose record is gone (a definite 404 read since): skipped, and taken out.
      const gone = `https://agent.example/${randomUUID()}.json`;
      await kv.addExpiring(CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY, gone, keep);
      assert.deepEqual((await cache.acceptedUrls()).sort(), [...urls, before, gone].sort());

      const removed: string[] = [];
      const ended = await documentsSwitchedOff(cache, { clientRemoved: async (url: string) => void removed.push(url) });
      assert.deepEqual(ended.sort(), [...urls, before].sort());
      assert.deepEqual(removed.sort(), [...urls, before].sort());
      assert.deepEqual(await cache.acceptedUrls(), [], 'the index is left empty');
      for (const url of [...urls, before]) assert.equal(await cache.accepted(url), undefined);
      // A second start with it off ends nothing more.
      assert.deepEqual(await documentsSwitchedOff(cache, { clientRemoved: async () => assert.fail('ended twice') }), []);
    });
  });
}
