/**
 * oidc-provider's Adapter contract, run unchanged against every store: the embedded one, a single
 * redis-server, and a 3-master Redis Cluster (which rejects any cross-slot multi-key command).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { adapterFactory, renewingSession } from '../../src/store/adapter.js';
import { SessionEnded } from '../../src/store/held-writes.js';
import { AdapterIndexes } from '../../src/store/adapter-indexes.js';
import { digestOf } from '../../src/store/record-keys.js';
import { rmSync } from 'node:fs';
import { EmbeddedKv } from '../../src/store/embedded.js';
import { allKeys, backends, PREFIX, type OpenBackend } from '../helpers/backends.js';
import { testDir } from '../helpers/server.js';

const payload = (extra: Partial<AdapterPayload> = {}): AdapterPayload => ({
  jti: randomUUID(),
  iat: Math.floor(Date.now() / 1000),
  exp: Math.floor(Date.now() / 1000) + 60,
  kind: 'AccessToken',
  clientId: 'client',
  ...extra,
});

for (const backend of backends) {
  describe(`adapter contract: ${backend.name}`, function () {
    this.timeout(30_000);
    let kv: OpenBackend['kv'];
    let raw: OpenBackend['raw'];
    let stop: () => Promise<void>;
    let adapter: (model: string) => Adapter;

    before(async () => {
      ({ kv, raw, stop } = await backend.open());
      adapter = adapterFactory(kv, 0);
    });
    after(async () => stop?.());

    it('upsert then find returns the payload; an unknown id finds nothing', async () => {
      const tokens = adapter('AccessToken');
      const token = payload({ accountId: 'sub-1', scope: 'openid' });
      await tokens.upsert(token.jti!, token, 60);
      assert.deepEqual(await tokens.find(token.jti!), token);
      assert.equal(await tokens.find('no-such-id'), undefined);
    });

    it('upsert replaces a record, including a consumed mark', async () => {
      const codes = adapter('AuthorizationCode');
      const id = randomUUID();
      await codes.upsert(id, payload({ kind: 'AuthorizationCode', scope: 'a' }), 60);
      await codes.consume(id);
      await codes.upsert(id, payload({ kind: 'AuthorizationCode', scope: 'b' }), 60);
      const found = await codes.find(id);
      assert.equal(found?.scope, 'b');
      assert.equal(found?.consumed, undefined);
    });

    it('records expire with their model: a TTL on every key', async function () {
      const id = randomUUID();
      await adapter('Session').upsert(id, payload({ kind: 'Session', uid: randomUUID() }), 1);
      await adapter('AccessToken').upsert(randomUUID(), payload({ grantId: randomUUID() }), 1);
      await new Promise((done) => setTimeout(done, 2100));
      assert.equal(await adapter('Session').find(id), undefined);
      if (!raw) return;
      for (const key of await allKeys(raw)) {
        const ttl = await raw.ttl(key);
        const durable = key === `${PREFIX}oidc:clients` || key.startsWith(`${PREFIX}oidc:Client:`);
        assert.ok(durable || ttl > 0, `${key} has no TTL (${ttl})`);
      }
    });

    // The embedded store has no TTL to read back; the expiry test above covers it.
    if (backend.redis) it('sets the TTL it was given on Redis keys (record, grant index, uid index)', async function () {
      if (!raw) throw new Error('no raw client');
      const grantId = randomUUID();
      const uid = randomUUID();
      const id = randomUUID();
      await adapter('RefreshToken').upsert(id, payload({ kind: 'RefreshToken', grantId }), 300);
      await adapter('Session').upsert('s-' + id, payload({ kind: 'Session', uid }), 120);
      const recordTtl = await raw.ttl(`${PREFIX}oidc:RefreshToken:${digestOf(id)}`);
      const grantTtl = await raw.ttl(`${PREFIX}oidc:grant:${grantId}`);
      const uidTtl = await raw.ttl(`${PREFIX}oidc:uid:${uid}`);
      assert.ok(recordTtl > 290 && recordTtl <= 300, `record ttl ${recordTtl}`);
      assert.ok(grantTtl > 290 && grantTtl <= 300, `grant ttl ${grantTtl}`);
      assert.ok(uidTtl > 110 && uidTtl <= 120, `uid ttl ${uidTtl}`);
      // A shorter-lived member never shortens the grant index.
      await adapter('AccessToken').upsert(randomUUID(), payload({ grantId }), 10);
      assert.ok((await raw.ttl(`${PREFIX}oidc:grant:${grantId}`)) > 290);
    });

    if (backend.redis) it("a device code's record outlives its end by deviceCodeKept on Redis, its user code's index by the grace only; a record saved after its end still expires (security-passes.md, ninth passes, the letter of the specs: leftovers)", async function () {
      if (!raw) throw new Error('no raw client');
      const kept = adapterFactory(kv, 15, {}, { deviceCodeKept: 600 });
      const id = randomUUID();
      const userCode = `K${randomUUID().slice(0, 3)}-KEPT`;
      await kept('DeviceCode').upsert(id, payload({ kind: 'DeviceCode', userCode }), 600);
      const recordTtl = await raw.ttl(`${PREFIX}oidc:DeviceCode:${digestOf(id)}`);
      const indexTtl = await raw.ttl(`${PREFIX}oidc:usercode:${userCode}`);
      assert.ok(recordTtl > 1190 && recordTtl <= 1200, `record ttl ${recordTtl}`);
      assert.ok(indexTtl > 605 && indexTtl <= 615, `user code index ttl ${indexTtl}`);
      // Other models keep the grace alone.
      const token = randomUUID();
      await kept('AccessToken').upsert(token, payload(), 60);
      const tokenTtl = await raw.ttl(`${PREFIX}oidc:AccessToken:${digestOf(token)}`);
      assert.ok(tokenTtl > 70 && tokenTtl <= 75, `access token ttl ${tokenTtl}`);
      // Saved with what it had left to live gone below nothing (past its end and the grace): not kept for good.
      const late = randomUUID();
      await adapter('AuthorizationCode').upsert(late, payload({ kind: 'AuthorizationCode' }), -30);
      const lateTtl = await raw.ttl(`${PREFIX}oidc:AuthorizationCode:${digestOf(late)}`);
      assert.ok(lateTtl > 0, `a record saved after its end has TTL ${lateTtl}`);
    });

    if (backend.redis) it("a record saved with nothing left to live (0, its end this very second) still expires, with its user code's index; a client's 0 stays durable (security-passes.md, the session's own changes, ninth pass)", async function () {
      if (!raw) throw new Error('no raw client');
      const kept = adapterFactory(kv, 15, {}, { deviceCodeKept: 600 });
      const now = Math.floor(Date.now() / 1000);
      // The engine saves with exp minus the time now: 0 when the second ticks between its expiry check and its save.
      const id = randomUUID();
      const userCode = `Z${randomUUID().slice(0, 3)}-ZERO`;
      await kept('DeviceCode').upsert(id, payload({ kind: 'DeviceCode', userCode, exp: now }), 0);
      const recordTtl = await raw.ttl(`${PREFIX}oidc:DeviceCode:${digestOf(id)}`);
      const indexTtl = await raw.ttl(`${PREFIX}oidc:usercode:${userCode}`);
      assert.ok(recordTtl > 0 && recordTtl <= 615, `device code record ttl ${recordTtl}`);
      assert.ok(indexTtl > 0 && indexTtl <= 15, `user code index ttl ${indexTtl}`);
      const code = randomUUID();
      await adapter('AuthorizationCode').upsert(code, payload({ kind: 'AuthorizationCode', exp: now }), 0);
      const codeTtl = await raw.ttl(`${PREFIX}oidc:AuthorizationCode:${digestOf(code)}`);
      assert.ok(codeTtl > 0 && codeTtl <= 15, `authorization code ttl ${codeTtl}`);
      // A client has no end: 0 is the clients' "for good" (registration/clients.ts).
      const client = randomUUID();
      await adapter('Client').upsert(client, { client_id: client, redirect_uris: ['https://app.example/cb'] } as unknown as AdapterPayload, 0);
      assert.equal(await raw.ttl(`${PREFIX}oidc:Client:${client}`), -1);
    });

    it('findByUid finds the session; findByUserCode finds the device code', async () => {
      const uid = randomUUID();
      const sessionId = randomUUID();
      const session = payload({ kind: 'Session', uid, accountId: 'sub' });
      await adapter('Session').upsert(sessionId, session, 60);
      // Its index holds the session id's digest: found with another id, which finds it again (and is not the session id).
      const found = await adapter('Session').findByUid(uid);
      assert.deepEqual({ ...found, jti: undefined }, { ...session, jti: undefined });
      assert.ok(typeof found?.jti === 'string' && found.jti !== sessionId && !found.jti.includes(sessionId));
      assert.deepEqual(await adapter('Session').find(found.jti), found);
      assert.equal(await adapter('Session').find(digestOf(sessionId)), undefined, 'not by its digest from outside');
      assert.equal(await adapter('Session').findByUid('unknown'), undefined);

      const deviceId = randomUUID();
      const device = payload({ kind: 'DeviceCode', userCode: 'ABCD-EFGH' });
      await adapter('DeviceCode').upsert(deviceId, device, 60);
      // Likewise by the device code's digest, which its user code's index holds.
      const code = await adapter('DeviceCode').findByUserCode('ABCD-EFGH');
      assert.deepEqual({ ...code, jti: undefined }, { ...device, jti: undefined });
      assert.ok(typeof code?.jti === 'string' && code.jti !== deviceId && !code.jti.includes(deviceId));
      assert.deepEqual(await adapter('DeviceCode').find(code.jti), code);
      assert.deepEqual(await adapter('DeviceCode').find(deviceId), { ...device, jti: deviceId });
      assert.equal(await adapter('DeviceCode').findByUserCode('ZZZZ-ZZZZ'), undefined);
    });

    it("a new device code never takes a live code's user code: the index keeps the first, whose later saves still land (UserCodeTaken)", async () => {
      const codes = adapter('DeviceCode');
      const userCode = `T${randomUUID().slice(0, 3).toUpperCase()}TAKEN`;
      const first = randomUUID();
      await codes.upsert(first, payload({ kind: 'DeviceCode', userCode }), 60);
      // Another device's authorization drew the same user code: refused, or the person typing the
      // first device's code would be shown, and would approve, the second device.
      await assert.rejects(codes.upsert(randomUUID(), payload({ kind: 'DeviceCode', userCode, clientId: 'other' }), 60), { name: 'UserCodeTaken' });
      assert.equal((await codes.findByUserCode(userCode))?.clientId, payload({ kind: 'DeviceCode' }).clientId);
      await codes.upsert(first, payload({ kind: 'DeviceCode', userCode, inFlight: true }), 50);
      assert.equal((await codes.findByUserCode(userCode))?.inFlight, true);
    });

    it('consume marks the record consumed with a timestamp', async () => {
      const codes = adapter('AuthorizationCode');
      const id = randomUUID();
      await codes.upsert(id, payload({ kind: 'AuthorizationCode' }), 60);
      await codes.consume(id);
      const found = await codes.find(id);
      assert.equal(typeof found?.consumed, 'number');
      assert.ok(Math.abs((found!.consumed as number) - Date.now() / 1000) < 5);
    });

    it('50 concurrent redemptions of one code: exactly one wins, the rest get invalid_grant', async () => {
      const codes = adapter('AuthorizationCode');
      const id = randomUUID();
      await codes.upsert(id, payload({ kind: 'AuthorizationCode', grantId: randomUUID() }), 60);
      const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => codes.consume(id)));
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(lost.length, 49);
      for (const { reason } of lost) {
        assert.ok(reason instanceof errors.InvalidGrant, String(reason));
        assert.equal(reason.error_detail, 'authorization code already consumed');
      }
    });

    it('refresh reuse grace: within it a rotated refresh token reads unspent and concurrent consumes all pass; after it, reuse revokes; other models stay strict', async () => {
      const graced = adapterFactory(kv, 0, {}, { refreshReuseGrace: 2 }); // 2 s: the steps below, on a loaded machine, come within it
      const grantId = randomUUID();
      const id = randomUUID();
      const accessTokenId = randomUUID();
      await graced('RefreshToken').upsert(id, payload({ kind: 'RefreshToken', grantId }), 60);
      await graced('AccessToken').upsert(accessTokenId, payload({ grantId }), 60);
      await graced('RefreshToken').consume(id);
      assert.equal((await graced('RefreshToken').find(id))?.consumed, undefined, 'reads unspent within the grace');
      const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => graced('RefreshToken').consume(id)));
      assert.deepEqual(outcomes.filter((o) => o.status === 'rejected'), []);
      assert.ok(await graced('AccessToken').find(accessTokenId), 'nothing of the grant was revoked');

      const code = randomUUID();
      await graced('AuthorizationCode').upsert(code, payload({ kind: 'AuthorizationCode', grantId: randomUUID() }), 60);
      await graced('AuthorizationCode').consume(code);
      await assert.rejects(graced('AuthorizationCode').consume(code), errors.InvalidGrant);

      await new Promise((done) => setTimeout(done, 2_100));
      assert.equal(typeof (await graced('RefreshToken').find(id))?.consumed, 'number', 'consumed once the grace is over');
      await assert.rejects(graced('RefreshToken').consume(id), errors.InvalidGrant);
      assert.equal(await graced('AccessToken').find(accessTokenId), undefined, 'reuse after the grace revoked the grant');
    });

    it('a lost race revokes the grant (it is a replay)', async () => {
      const grantId = randomUUID();
      const codeId = randomUUID();
      const tokenId = randomUUID();
      await adapter('AuthorizationCode').upsert(codeId, payload({ kind: 'AuthorizationCode', grantId }), 60);
      await adapter('AccessToken').upsert(tokenId, payload({ grantId }), 60);
      await adapter('Grant').upsert(grantId, payload({ kind: 'Grant', jti: grantId }), 60);
      await adapter('AuthorizationCode').consume(codeId);
      await assert.rejects(adapter('AuthorizationCode').consume(codeId), errors.InvalidGrant);
      assert.equal(await adapter('AccessToken').find(tokenId), undefined);
      assert.equal(await adapter('Grant').find(grantId), undefined);
    });

    it('consuming a record that is gone fails with invalid_grant', async () => {
      await assert.rejects(adapter('RefreshToken').consume(randomUUID()), (error: Error) => {
        assert.ok(error instanceof errors.InvalidGrant);
        assert.equal((error as errors.InvalidGrant).error_detail, 'refresh token not found');
        return true;
      });
    });

    it('take: of 20 takes of one interaction at once, exactly one takes it, and it is gone (a sign-in resumes once)', async () => {
      const interactions = adapter('Interaction') as Adapter & { take(id: string): Promise<boolean> };
      const id = randomUUID();
      await interactions.upsert(id, payload({ kind: 'Interaction' }), 60);
      const taken = await Promise.all(Array.from({ length: 20 }, () => interactions.take(id)));
      assert.equal(taken.filter(Boolean).length, 1);
      assert.equal(await interactions.find(id), undefined);
      assert.equal(await interactions.take(id), false, 'nothing left to take');
    });

    it('destroy removes the record', async () => {
      const id = randomUUID();
      await adapter('Interaction').upsert(id, payload({ kind: 'Interaction' }), 60);
      await adapter('Interaction').destroy(id);
      assert.equal(await adapter('Interaction').find(id), undefined);
    });

    it('a destroyed session stays ended: a save of it still in flight (by its id or found by its uid) does not bring it back; another session is saved as ever', async () => {
      const sessions = adapterFactory(kv, 0, {}, { sessionTtl: 600 })('Session');
      const id = randomUUID();
      const uid = randomUUID();
      const session = payload({ kind: 'Session', uid, accountId: 'sub-ended' });
      await sessions.upsert(id, session, 60);
      const loaded = await sessions.findByUid!(uid);
      assert.ok(loaded, 'signed in');
      await sessions.destroy(id);
      // The request that loaded it answers now and saves it (by the id it was found with, or its own).
      await sessions.upsert(loaded.jti as string, loaded, 60);
      await sessions.upsert(id, loaded, 60);
      assert.equal(await sessions.find(id), undefined);
      assert.equal(await sessions.findByUid!(uid), undefined);
      if (raw) {
        const ttl = await raw.ttl(`${PREFIX}oidc:Session:${digestOf(id)}`);
        assert.ok(ttl > 0 && ttl <= 60, `the ending lasts what the session had left (${ttl})`);
      }
      const other = randomUUID();
      await sessions.upsert(other, payload({ kind: 'Session', uid: randomUUID() }), 60);
      assert.ok(await sessions.find(other));
    });

    it("a session's id renewed: the new record lives and the uid finds it; ending the old id (read before the renewal) ends the new one; a renewal of an id ended meanwhile is refused and ends its new record", async () => {
      const sessions = adapterFactory(kv, 0, {}, { sessionTtl: 600 })('Session');
      const session = (uid: string) => payload({ kind: 'Session', uid, accountId: 'sub-renewals' });
      const renew = (from: string, to: string, uid: string) => renewingSession(to, from, () => sessions.upsert(to, session(uid), 60));

      const uid = randomUUID();
      const [a, b] = [randomUUID(), randomUUID()];
      await sessions.upsert(a, session(uid), 60);
      await renew(a, b, uid);
      assert.equal(await sessions.find(a), undefined, 'the old id is ended');
      assert.ok(await sessions.find(b), 'the new one lives');
      assert.ok((await sessions.findByUid!(uid))?.jti, 'the uid finds it');
      await sessions.destroy(a);
      assert.equal(await sessions.find(b), undefined, 'an ending of the old id ends its successor');
      assert.equal(await sessions.findByUid!(uid), undefined);

      const signedOut = randomUUID();
      const [c, d] = [randomUUID(), randomUUID()];
      await sessions.upsert(c, session(signedOut), 60);
      await sessions.destroy(c);
      await assert.rejects(renew(c, d, signedOut), SessionEnded);
      assert.equal(await sessions.find(d), undefined, 'the renewal of an ended session is ended too');
      assert.equal(await sessions.findByUid!(signedOut), undefined);

      // Two renewals of one id at once (two tabs): both live, as before.
      const tabs = randomUUID();
      const [e, f, g] = [randomUUID(), randomUUID(), randomUUID()];
      await sessions.upsert(e, session(tabs), 60);
      await Promise.all([renew(e, f, tabs), renew(e, g, tabs)]);
      assert.ok((await sessions.find(f)) && (await sessions.find(g)), 'both tabs keep a session');
      // Signed out through either: both end (one browser session, one uid).
      await sessions.destroy(f);
      assert.equal(await sessions.find(g), undefined, "the other tab's record ends with it");
      assert.equal(await sessions.findByUid!(tabs), undefined);
    });

    it('an ending tells the sessionEnded hook what every record it ended held as it ended: a save after the ender read it, a renewal it followed, another tab; a renewal refused ends what it brought; a renewal itself is no ending', async () => {
      const told: unknown[][] = [];
      const sessions = adapterFactory(kv, 0, { sessionEnded: async (apps) => void told.push(apps.map(({ grantId }) => grantId).sort()) }, { sessionTtl: 600 })('Session');
      const session = (uid: string, ...grants: string[]) =>
        payload({ kind: 'Session', uid, accountId: 'sub-held', authorizations: Object.fromEntries(grants.map((grantId, at) => [`app${at}`, { grantId, persistsLogout: false }])) });
      const renew = (from: string, to: string, uid: string, ...grants: string[]) => renewingSession(to, from, () => sessions.upsert(to, session(uid, ...grants), 60));

      // Saved with a second grant after whoever ends it read it: the ending tells both.
      const [a, uidA] = [randomUUID(), randomUUID()];
      await sessions.upsert(a, session(uidA, 'g1'), 60);
      await sessions.upsert(a, session(uidA, 'g1', 'g2'), 60);
      await sessions.destroy(a);
      assert.deepEqual(told.splice(0), [['g1', 'g2']]);

      // Renewed with a new grant (a consent): a renewal tells nothing; ending the old id tells what the new record held.
      const [b, c, uidB] = [randomUUID(), randomUUID(), randomUUID()];
      await sessions.upsert(b, session(uidB, 'g3'), 60);
      await renew(b, c, uidB, 'g3', 'g4');
      assert.deepEqual(told, [], 'a renewal is no ending');
      await sessions.destroy(b);
      assert.deepEqual(told.splice(0), [['g3', 'g4']]);

      // Two tabs renewed the id, each with its own new grant: ending one tells the other's too.
      const [d, e, f, uidD] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
      await sessions.upsert(d, session(uidD), 60);
      await Promise.all([renew(d, e, uidD, 'g5'), renew(d, f, uidD, 'g6')]);
      await sessions.destroy(e);
      assert.deepEqual(told.splice(0).flat().sort(), ['g5', 'g6']);

      // A renewal of an id ended meanwhile: refused, and the grant it brought is told.
      const [g, h, uidG] = [randomUUID(), randomUUID(), randomUUID()];
      await sessions.upsert(g, session(uidG), 60);
      await sessions.destroy(g);
      await assert.rejects(renew(g, h, uidG, 'g7'), SessionEnded);
      assert.deepEqual(told.splice(0), [['g7']]);
    });

    it("a renewal cut off at the old id's ending leaves both records live, of one uid: the uid finds one, and an ending of it ends the other", async () => {
      let failing: string | undefined;
      const flaky = new Proxy(kv, {
        get(target, property) {
          if (property === 'endRecord') {
            return (key: string, ttl: number, successor?: string) => {
              if (key === failing) {
                failing = undefined;
                return Promise.reject(new Error('Connection is closed.'));
              }
              return target.endRecord(key, ttl, successor);
            };
          }
          const value = Reflect.get(target, property, target) as unknown;
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      const sessions = adapterFactory(flaky, 0, {}, { sessionTtl: 600 })('Session');
      const uid = randomUUID();
      const session = payload({ kind: 'Session', uid, accountId: 'sub-cut-off' });
      const [a, b] = [randomUUID(), randomUUID()];
      await sessions.upsert(a, session, 60);
      failing = `oidc:Session:${digestOf(a)}`;
      await assert.rejects(renewingSession(b, a, () => sessions.upsert(b, session, 60)));
      assert.ok((await sessions.find(a)) && (await sessions.find(b)), 'both live');
      const found = await sessions.findByUid!(uid);
      assert.ok(found, 'the uid finds one');
      await sessions.destroy(found.jti as string);
      assert.equal(await sessions.find(a), undefined, 'the old one ends with it');
      assert.equal(await sessions.find(b), undefined);
    });

    it("a save refused as ended leaves the uid's index naming the live session: a renewal of the id, then a save under the old id read before it", async () => {
      const sessions = adapterFactory(kv, 0, {}, { sessionTtl: 600 })('Session');
      const uid = randomUUID();
      const session = payload({ kind: 'Session', uid, accountId: 'sub-renewed' });
      const before = randomUUID();
      await sessions.upsert(before, session, 60);
      // The id is renewed (sign-in, a change of credential): the old record ended, the new one written.
      const after = randomUUID();
      await sessions.destroy(before);
      await sessions.upsert(after, { ...session, jti: after }, 60);
      // A request that read the session under its old id answers now and saves it.
      await sessions.upsert(before, session, 60);
      assert.equal(await sessions.find(before), undefined, 'the old id stays ended');
      const found = await sessions.findByUid!(uid);
      assert.ok(found, 'the uid finds a session');
      assert.deepEqual(await sessions.find(found.jti as string), found);
      if (raw) assert.equal(await raw.get(`${PREFIX}oidc:uid:${uid}`), digestOf(after));
    });

    it('revokeByGrantId removes every artifact of the grant and nothing else', async () => {
      const grant = randomUUID();
      const other = randomUUID();
      const mine = [
        ['AccessToken', randomUUID()],
        ['RefreshToken', randomUUID()],
        ['AuthorizationCode', randomUUID()],
      ] as const;
      const theirs = [
        ['AccessToken', randomUUID()],
        ['RefreshToken', randomUUID()],
      ] as const;
      for (const [model, id] of mine) await adapter(model).upsert(id, payload({ kind: model, grantId: grant }), 60);
      for (const [model, id] of theirs) await adapter(model).upsert(id, payload({ kind: model, grantId: other }), 60);
      const unrelated = randomUUID();
      await adapter('ClientCredentials').upsert(unrelated, payload({ kind: 'ClientCredentials' }), 60);

      await adapter('AccessToken').revokeByGrantId(grant);

      for (const [model, id] of mine) assert.equal(await adapter(model).find(id), undefined, `${model} survived`);
      for (const [model, id] of theirs) assert.ok(await adapter(model).find(id), `${model} of another grant was removed`);
      assert.ok(await adapter('ClientCredentials').find(unrelated));
    });

    it('clients are durable and listed', async () => {
      const id = `client-${randomUUID()}`;
      await adapter('Client').upsert(id, { client_id: id, redirect_uris: [] }, 0);
      assert.deepEqual(await adapter('Client').find(id), { client_id: id, redirect_uris: [] });
      assert.ok((await new AdapterIndexes(kv).clientIds()).includes(id));
      if (raw) assert.equal(await raw.ttl(`${PREFIX}oidc:Client:${id}`), -1);
      await adapter('Client').destroy(id);
      assert.ok(!(await new AdapterIndexes(kv).clientIds()).includes(id));
    });
  });
}

describe('embedded store: durable data is shared through its file', () => {
  it('a second instance (another process, e.g. the CLI) sees clients written by the first, live', async function () {
    this.timeout(10_000);
    const dir = testDir();
    const server = new EmbeddedKv(`${dir}/store.json`);
    const cli = new EmbeddedKv(`${dir}/store.json`);
    try {
      await adapterFactory(cli)('Client').upsert('from-cli', { client_id: 'from-cli' }, 0);
      await adapterFactory(cli)('Session').upsert('ephemeral', payload({ kind: 'Session' }), 60);
      let seen: AdapterPayload | undefined | void;
      for (let i = 0; i < 40 && !seen; i += 1) {
        seen = await adapterFactory(server)('Client').find('from-cli');
        if (!seen) await new Promise((done) => setTimeout(done, 100));
      }
      assert.deepEqual(seen, { client_id: 'from-cli' });
      assert.equal(await adapterFactory(server)('Session').find('ephemeral'), undefined, 'only durable data is shared');
      const reopened = new EmbeddedKv(`${dir}/store.json`);
      assert.deepEqual(await adapterFactory(reopened)('Client').find('from-cli'), { client_id: 'from-cli' });
      await reopened.close();
    } finally {
      await server.close();
      await cli.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
