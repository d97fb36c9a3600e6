/**
 * The revocation list on every store, Redis Cluster included (an entry and its feed line are one
 * atomic step, so they share a hash tag): what counts as revoked, how long entries live, and how
 * the feed pages.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { grantHandle, RevocationList } from '../../src/revocation/list.js';
import { LIFETIMES_KEY, STORE_EPOCH_KEY } from '../../src/store/keys.js';
import { backends, PREFIX, type OpenBackend } from '../helpers/backends.js';

const now = () => Math.floor(Date.now() / 1000);
/**
 * Resolves early in a second (at least 700 ms of it left): revocations sent at once from then land
 * in one second, and so raise one mark (one a second later raises it again: a loaded runner's
 * calls straddled a second now and then).
 */
const earlyInASecond = async () => {
  const into = Date.now() % 1000;
  if (into > 300) await new Promise((resolve) => setTimeout(resolve, 1000 - into));
};
/**
 * How many of the revocations sent at once between `before` and `after` (epoch seconds read around
 * them) raised a mark: one, or one per second they straddled (a runner loaded enough to delay them
 * past the 700 ms earlyInASecond leaves: a CI rehearsal's embedded store did), never more.
 */
const oneMarkPerSecond = (outcomes: readonly boolean[], before: number, after: number, what: string) => {
  const raised = outcomes.filter(Boolean).length;
  assert.ok(raised >= 1 && raised <= after - before + 1, `${what}: ${raised} marks raised in ${after - before + 1} second(s)`);
};

for (const backend of backends) {
  describe(`revocation list: ${backend.name}`, function () {
    this.timeout(30_000);
    let open: OpenBackend;
    let list: RevocationList;

    before(async () => {
      open = await backend.open();
      list = new RevocationList(open.kv, { skew: 15, accessTokenLifetime: 900 });
      // A store whose memory began an hour ago: the tokens below were issued since (epoch()).
      await open.kv.set(STORE_EPOCH_KEY, String(now() - 3600));
    });
    after(async () => open?.stop());

    it('a revoked jti is revoked until its token expires (plus skew, its mark kept while the feed lists it); an expired token needs no entry', async () => {
      const jti = randomUUID();
      assert.equal(await list.isRevoked({ jti, iat: now() }), false);
      assert.equal(await list.revokeToken(jti, now() + 300), true);
      assert.equal(await list.revokeToken(jti, now() + 300), false, 'once');
      assert.equal(await list.isRevoked({ jti, iat: now() }), true);
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: now() }), false);
      assert.equal(await list.revokeToken(randomUUID(), now() - 400), false, "expired longer ago than any helper takes it (FEED_RETENTION)");
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}revoked:{rv}:jti:${jti}`);
        // To exp + FEED_RETENTION (300), as long as the feed lists it: a second revocation stays a no-op (h21).
        assert.ok(ttl > 590 && ttl <= 600, `TTL ${ttl}`);
      }
    });

    it('a revoked grant revokes its tokens issued up to the revocation, not those issued after', async () => {
      const grantId = randomUUID();
      const gid = grantHandle(grantId);
      const before = { jti: randomUUID(), iat: now() - 10, gid };
      assert.equal(await list.isRevoked(before), false);
      // oidc-provider revokes a grant once per model: one entry, one feed line.
      await earlyInASecond();
      const start = now();
      const outcomes = await Promise.all([1, 2, 3, 4].map(() => list.revokeGrant(grantId)));
      oneMarkPerSecond(outcomes, start, now(), 'one entry');
      assert.equal(await list.isRevoked(before), true);
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: now() + 5, gid }), false, 'issued after the revocation');
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: now(), gid: grantHandle(randomUUID()) }), false, 'another grant');
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}revoked:{rv}:grant:${gid}`);
        assert.ok(ttl > 900 && ttl <= 915, `TTL ${ttl}`);
      }
    });

    it('a deleted client revokes its tokens issued up to the deletion, on the list and in the feed; a client made later with the id starts clean', async () => {
      const clientId = `client-${randomUUID()}`;
      const start = await list.feed(undefined, 1000);
      const issued = { jti: randomUUID(), iat: now() - 10, client_id: clientId };
      assert.equal(await list.isRevoked(issued), false);
      await earlyInASecond();
      const before = now();
      const outcomes = await Promise.all([1, 2, 3].map(() => list.revokeClient(clientId)));
      const after = now();
      oneMarkPerSecond(outcomes, before, after, 'one entry, one feed line');
      assert.equal(await list.isRevoked(issued), true);
      const { entries } = await list.feed(start.cursor, 1000);
      // The last mark (one per second straddled: oneMarkPerSecond).
      const entry = entries.findLast((line) => line.type === 'client' && line.client_id === clientId);
      assert.ok(entry && entry.type === 'client' && entry.revoked_at >= before && entry.revoked_at <= after && entry.exp === entry.revoked_at + 900, JSON.stringify(entries));
      // The deletion's own second, as it was stamped (a clock read after it may be of the next second).
      assert.equal(await list.isRevoked({ ...issued, iat: entry.revoked_at }), true, 'issued in the second of the deletion');
      assert.equal(await list.isRevoked({ ...issued, iat: entry.revoked_at + 1 }), false, 'issued after: a client made again with the id');
      assert.equal(await list.isRevoked({ ...issued, client_id: `${clientId}-other` }), false, 'another client');
      assert.equal(await list.isRevoked({ jti: randomUUID(), client_id: clientId }), true, 'no iat: revoked');
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}revoked:{rv}:client:${clientId}`);
        assert.ok(ttl > 900 && ttl <= 915, `TTL ${ttl}`);
      }
    });

    it("a person's entry (sub) revokes every token issued to them under a grant up to it, on the list and in the feed; not a client's own token with that sub, nor later ones", async () => {
      const sub = randomUUID();
      const start = await list.feed(undefined, 1000);
      const issued = { jti: randomUUID(), iat: now() - 10, sub, client_id: 'app', gid: grantHandle(randomUUID()) };
      assert.equal(await list.isRevoked(issued), false);
      await earlyInASecond();
      const before = now();
      const outcomes = await Promise.all([1, 2, 3].map(() => list.revokeSubject(sub)));
      const after = now();
      oneMarkPerSecond(outcomes, before, after, 'one entry, one feed line');
      assert.equal(await list.isRevoked(issued), true);
      assert.equal(await list.isRevoked({ ...issued, gid: grantHandle(randomUUID()), client_id: 'other-app' }), true, 'any grant, any client');
      assert.equal(await list.isRevoked({ ...issued, iat: now() + 2 }), false, 'issued after');
      assert.equal(await list.isRevoked({ ...issued, sub: randomUUID() }), false, 'another person');
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: now() - 10, sub, client_id: sub }), false, "a client's own token whose sub is the same string");
      assert.equal(await list.isRevoked({ client_id: 'app', sub, iat: now() - 10 }, {}, false), true, 'an opaque token under a grant (its model says so)');
      const { entries } = await list.feed(start.cursor, 1000);
      const entry = entries.findLast((line) => line.type === 'sub' && line.sub === sub);
      assert.ok(entry && entry.type === 'sub' && entry.revoked_at >= before && entry.revoked_at <= after && entry.exp === entry.revoked_at + 900, JSON.stringify(entries));
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}revoked:{rv}:sub:${sub}`);
        assert.ok(ttl > 900 && ttl <= 915, `TTL ${ttl}`);
      }
    });

    it("a client's delegated entry revokes every token it holds on people's behalf up to it, not its own tokens nor later ones; its mark outlives the feed entry (a grant's lifetime)", async () => {
      const grantLived = new RevocationList(open.kv, { skew: 15, accessTokenLifetime: 900, grantLifetime: 86_400 });
      const clientId = `app-${randomUUID()}`;
      const start = await grantLived.feed(undefined, 1000);
      const persons = { jti: randomUUID(), iat: now() - 10, sub: randomUUID(), client_id: clientId, gid: grantHandle(randomUUID()) };
      assert.equal(await grantLived.isRevoked(persons), false);
      assert.equal(await grantLived.revokeDelegated(clientId), true);
      assert.equal(await grantLived.isRevoked(persons), true);
      assert.equal(await grantLived.isRevoked({ ...persons, iat: now() + 2 }), false, 'issued after');
      assert.equal(await grantLived.isRevoked({ jti: randomUUID(), iat: now() - 10, sub: clientId, client_id: clientId }), false, 'its own client_credentials token');
      assert.equal(await grantLived.delegatedEnded(clientId, now() - 10), true, 'a refresh token or code of before');
      assert.equal(await grantLived.delegatedEnded(clientId, now() + 2), false);
      assert.equal(await grantLived.delegatedEnded(`${clientId}-other`, now() - 10), false);
      const { entries } = await grantLived.feed(start.cursor, 1000);
      const entry = entries.find((line) => line.type === 'delegated' && line.client_id === clientId);
      assert.ok(entry && entry.type === 'delegated' && entry.exp === entry.revoked_at + 900, JSON.stringify(entries));
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}revoked:{rv}:delegated:${clientId}`);
        assert.ok(ttl > 86_400 && ttl <= 86_415, `TTL ${ttl}`);
      }
    });

    it("a scope taken from a client's metadata (a scoped delegated entry) revokes the tokens it holds on people's behalf that carry it, up to it: not those without it, its own, another client's, later ones; nor does it end its refresh tokens and codes", async () => {
      const clientId = `web:${randomUUID()}`;
      const aud = `https://${randomUUID()}.example.test`;
      const start = await list.feed(undefined, 1000);
      const persons = (scope: string, extra: Record<string, unknown> = {}) => ({ jti: randomUUID(), iat: now() - 10, sub: randomUUID(), client_id: clientId, aud, scope, gid: grantHandle(randomUUID()), ...extra });
      assert.equal(await list.isRevoked(persons('read write')), false);
      assert.equal(await list.revokeNarrowed(clientId, []), false, 'nothing taken');
      assert.equal(await list.revokeNarrowed(clientId, ['write', 'email']), true);
      assert.equal(await list.isRevoked(persons('read write')), true, 'carries a scope taken');
      assert.equal(await list.isRevoked(persons('read')), false, 'within what it keeps');
      assert.equal(await list.isRevoked(persons('read write', { iat: now() + 2 })), false, 'issued after');
      assert.equal(await list.isRevoked(persons('write', { client_id: `${clientId}-other` })), false, 'another client');
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: now() - 10, sub: clientId, client_id: clientId, aud, scope: 'write' }), false, 'its own client_credentials token');
      assert.equal(await list.delegatedEnded(clientId, now() - 10), false, 'its refresh tokens and codes are narrowed, not ended');
      const { entries } = await list.feed(start.cursor, 1000);
      const ours = entries.filter((line) => line.type === 'delegated' && line.client_id === clientId);
      assert.deepEqual(ours.map((line) => ('scope' in line ? line.scope : undefined)).sort(), ['email', 'write']);
      assert.ok(ours.every((line) => 'revoked_at' in line && line.exp === line.revoked_at + 900));
    });

    it("an operator's ending: a scope taken from a client's grant at an API revokes its own tokens there that carry it; a whole grant all of them; a removed API every token for it", async () => {
      const clientId = `svc-${randomUUID()}`;
      const aud = `https://${randomUUID()}.example.test`;
      const start = await list.feed(undefined, 1000);
      const own = (scope: string, extra: Record<string, unknown> = {}) => ({ jti: randomUUID(), iat: now() - 10, client_id: clientId, aud, scope, ...extra });
      assert.equal(await list.revokeClientGrant(clientId, aud, ['write']), true);
      assert.equal(await list.isRevoked(own('read write')), true, 'carries the scope taken');
      assert.equal(await list.isRevoked(own('read')), false, 'within what is still granted');
      assert.equal(await list.isRevoked(own('write', { gid: grantHandle(randomUUID()) })), false, "a person's token (under a grant) is not the client's own");
      assert.equal(await list.isRevoked(own('write', { aud: `${aud}/other` })), false, 'another API');
      assert.equal(await list.isRevoked(own('write'), {}, false), false, 'an opaque token its model says is not the client’s own');
      assert.equal(await list.isRevoked(own('write', { iat: now() + 2 })), false, 'issued after');
      assert.equal(await list.revokeClientGrant(clientId, aud), true);
      assert.equal(await list.isRevoked(own('read')), true, 'the whole grant');
      assert.equal(await list.isRevoked(own('')), true, 'a token without scopes too');
      const person = { jti: randomUUID(), iat: now() - 10, client_id: 'someone-else', aud, gid: grantHandle(randomUUID()) };
      assert.equal(await list.isRevoked(person), false);
      assert.equal(await list.revokeApi(aud), true);
      assert.equal(await list.isRevoked(person), true, 'a removed API: every token for it');
      const { entries } = await list.feed(start.cursor, 1000);
      const ours = entries.filter((line) => ('aud' in line && line.aud === aud));
      assert.deepEqual(
        ours.map((line) => ({ type: line.type, scope: 'scope' in line ? line.scope : undefined, client_id: 'client_id' in line ? line.client_id : undefined })),
        [
          { type: 'client_grant', scope: 'write', client_id: clientId },
          { type: 'client_grant', scope: undefined, client_id: clientId },
          { type: 'api', scope: undefined, client_id: undefined },
        ],
      );
      assert.ok(ours.every((line) => 'revoked_at' in line && line.exp === line.revoked_at + 900));
    });

    it('a revoked key revokes every token it signed, whatever its iat (a forgery may claim any), for the horizon given', async () => {
      const kid = randomUUID();
      const start = await list.feed(undefined, 1000);
      const signed = { jti: randomUUID(), iat: now() };
      assert.equal(await list.isRevoked(signed, { kid }), false);
      assert.equal(await list.revokeKey(kid, 3600), true);
      assert.equal(await list.isRevoked(signed, { kid }), true);
      assert.equal(await list.isRevoked({ ...signed, iat: now() + 86_400 }, { kid }), true, 'a forged future iat');
      assert.equal(await list.isRevoked(signed, { kid: randomUUID() }), false, 'another key');
      assert.equal(await list.isRevoked(signed), false, 'no header given');
      const { entries } = await list.feed(start.cursor, 1000);
      assert.ok(entries.some((line) => line.type === 'kid' && line.kid === kid && line.exp === line.revoked_at + 3600), JSON.stringify(entries));
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}revoked:{rv}:kid:${kid}`);
        assert.ok(ttl > 3600 && ttl <= 3615, `TTL ${ttl}`);
      }
    });

    it("a revoked key's entry stays on the feed as long as it matters, however short the access token horizon and however quiet the feed since", async () => {
      // One second of access token lifetime: the feed would keep two seconds of entries.
      const short = new RevocationList(open.kv, { skew: 1, accessTokenLifetime: 1 });
      const start = await short.feed(undefined, 1000);
      const kid = randomUUID();
      assert.equal(await short.revokeKey(kid, 3600), true);
      await new Promise((done) => setTimeout(done, 3500));
      const listed = (page: Awaited<ReturnType<RevocationList['feed']>>) => page.entries.some((line) => line.type === 'kid' && line.kid === kid);
      assert.ok(listed(await short.feed(undefined, 1000)), 'a reader starting now (a new resource server, or one whose JWKS cache still holds the key) is told');
      assert.ok(listed(await short.feed(start.cursor, 1000)), 'a reader coming back with its cursor is told');
      // Later entries (which trim the feed) do not take it away either.
      await short.revokeToken(randomUUID(), now() + 60);
      assert.ok(listed(await short.feed(undefined, 1000)), 'after a later entry');
    });

    it('the feed lists every entry once, oldest first, and pages from a cursor', async () => {
      const start = await list.feed(undefined, 1000);
      const jtis = Array.from({ length: 5 }, () => randomUUID());
      for (const jti of jtis) await list.revokeToken(jti, now() + 600);
      const grantId = randomUUID();
      const before = now();
      await list.revokeGrant(grantId);
      const after = now();

      const first = await list.feed(start.cursor, 3);
      assert.equal(first.more, true);
      assert.deepEqual(first.entries.map((entry) => entry.type === 'jti' && entry.jti), jtis.slice(0, 3));
      const rest = await list.feed(first.cursor, 3);
      assert.equal(rest.more, true, 'a full page: maybe more');
      assert.deepEqual(rest.entries.map((entry) => (entry.type === 'jti' ? entry.jti : entry.type === 'grant' ? entry.gid : undefined)), [...jtis.slice(3), grantHandle(grantId)]);
      const grant = rest.entries[2]!;
      assert.ok(grant.type === 'grant' && grant.revoked_at >= before && grant.revoked_at <= after && grant.exp === grant.revoked_at + 900);
      const end = await list.feed(rest.cursor, 3);
      const { epoch, ...page } = end;
      assert.deepEqual(page, { entries: [], cursor: rest.cursor, more: false });
      assert.equal(epoch, first.epoch, "the store's epoch, the same on every page");
      await assert.rejects(list.feed('not-a-cursor', 10), RangeError);
    });

    it("the store's epoch: stamped when absent: on an empty store, the second before now (a token issued up to it is revoked, one after it is not), 0 on one an earlier release wrote; the feed carries it", async () => {
      await open.kv.del([STORE_EPOCH_KEY, LIFETIMES_KEY]); // everything lost
      const epoch = await list.epoch();
      assert.ok(epoch >= now() - 2 && epoch < now(), `stamped the second before now: ${epoch}`);
      assert.equal(await list.epoch(), epoch, 'once');
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: epoch - 60 }), true, 'issued before the store lost everything');
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: epoch }), true, 'issued in its second');
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: epoch + 1 }), false, "issued after it (in the stamp's second)");
      assert.equal(await list.isRevoked({}, { kid: 'no-such-key' }), false, 'a key alone, no iat: not by the epoch');
      assert.equal((await list.feed(undefined, 1)).epoch, epoch);
      // Lost again, found by a check first: stamped there.
      await open.kv.del([STORE_EPOCH_KEY]);
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: now() - 60 }), true);
      assert.ok((await list.epoch()) >= epoch);
      // A store an earlier release wrote (its servers' lifetimes there, no epoch): its list is whole.
      await open.kv.del([STORE_EPOCH_KEY]);
      await open.kv.addToSet(LIFETIMES_KEY, 'access:900', 60);
      assert.equal(await list.epoch(), 0);
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: now() - 60 }), false);
      await open.kv.set(STORE_EPOCH_KEY, String(now() - 3600));
    });

    // Last: it revokes every person's token issued up to now, whatever the tests above made.
    it("a second factor required of everyone (a people entry) revokes every person's access token up to it, whatever its client: not a client's own, nor a refresh token at introspection, nor later ones", async () => {
      const start = await list.feed(undefined, 1000);
      const persons = (clientId: string) => ({ jti: randomUUID(), iat: now() - 10, sub: randomUUID(), client_id: clientId, gid: grantHandle(randomUUID()) });
      const [one, two] = [persons(`app-${randomUUID()}`), persons(`app-${randomUUID()}`)];
      assert.equal(await list.isRevoked(one), false);
      assert.equal(await list.revokeRaisedEverywhere(), true);
      assert.equal(await list.isRevoked(one), true);
      assert.equal(await list.isRevoked(two), true, "another client's");
      assert.equal(await list.isRevoked({ ...one, iat: now() + 2 }), false, 'issued after');
      const clientId = `machine-${randomUUID()}`;
      assert.equal(await list.isRevoked({ jti: randomUUID(), iat: now() - 10, sub: clientId, client_id: clientId }), false, 'a client_credentials token');
      assert.equal(await list.isRevoked({ client_id: one.client_id, sub: one.sub, iat: now() - 10 }, {}, false, true), false, 'a refresh token, weighed at the token endpoint');
      const { entries } = await list.feed(start.cursor, 1000);
      const entry = entries.find((line) => line.type === 'people');
      assert.ok(entry && entry.type === 'people' && entry.exp === entry.revoked_at + 900, JSON.stringify(entries));
    });
  });
}
