/**
 * Review of the thirteenth passes' merged changes (h17): a passkey removal cut off by the store at
 * each of its writes never leaves the credential id's claim expiring while the person's record still
 * holds the passkey (once expired, the passkey is held unclaimed and another person registers its id:
 * WebAuthn L3 §7.1 step 26).
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Agent, type Page } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { hasWrite, startRelay, type Relay } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signedInToAccountPage } from '../helpers/sign-in.js';
import { attestation, passkeyChallenge, softPasskey } from '../helpers/soft-passkeys.js';
import { passkeyOwnerKey } from '../../src/store/keys.js';

const PASSWORD = 'thirteenth merged review h17 password';

describe('e2e: review of the thirteenth passes merged changes (h17): passkey claims outlive a cut removal', function () {
  this.timeout(300_000);
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;
  let raw: Redis;
  let people = 0;

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    relay = await startRelay(redis.port);
    server = await startServer({ port: await freePort(), redisUrl: relay.url, cheapHashing: true });
  });
  after(async () => {
    relay?.release();
    await server?.stop();
    relay?.close();
    raw?.disconnect();
    await redis?.stop();
  });

  const origin = () => new URL(server.issuer).origin;
  const person = async () => {
    const username = `review-h17-${(people += 1)}`;
    const { sub } = await server.accounts.create(username, PASSWORD);
    return { sub, ...(await signedInToAccountPage(server.issuer, username, PASSWORD)) };
  };
  const passkeyIds = async (sub: string) => (await server.secondFactors.records.read(sub)).passkeys.map((passkey) => passkey.id);
  const register = (agent: Agent, page: Page, key: ReturnType<typeof softPasskey>, id = key.id) =>
    agent.submit(page, '/account/passkeys/add', { name: 'laptop', credential: attestation(key, origin(), passkeyChallenge(page), { id }) });

  /** `act` cut off at its `n`th write (its answer lost when `answered`); false when it had fewer. */
  async function cutAt(n: number, answered: boolean, act: () => Promise<unknown>): Promise<boolean> {
    let seen = 0;
    const cut = relay.cut((chunk) => hasWrite(chunk) && (seen += 1) === n, { answered });
    await act();
    relay.release();
    if (!(await cut)) return false;
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    return true;
  }

  it('a passkey removal cut off at each write: while the record holds the passkey its claim does not expire (once run out, another person could register the id); once let go of, the id is free', async () => {
    for (const answered of [false, true]) {
      for (let n = 1; ; n += 1) {
        const owner = await person();
        const key = softPasskey();
        assert.match((await register(owner.agent, owner.page, key)).url, /done=passkeys\.added/);
        const page = await owner.agent.follow(`${server.issuer}/account`);
        const reached = await cutAt(n, answered, () => owner.agent.submit(page, '/account/passkeys/remove', { id: key.id }));
        if (!reached) {
          assert.ok(n > 1, 'the removal writes something');
          break;
        }
        const at = `cut at write ${n}${answered ? ' (answer lost)' : ''}`;
        if (!(await passkeyIds(owner.sub)).includes(key.id)) {
          // Let go of by the record: a claim of nothing left behind is taken over.
          const other = await person();
          await register(other.agent, other.page, softPasskey(), key.id);
          assert.deepEqual(await passkeyIds(other.sub), [key.id], `${at}: the credential id let go of is free to register`);
          continue;
        }
        const claim = (await raw.keys(`*${passkeyOwnerKey(key.id)}`))[0];
        assert.ok(claim, `${at}: the passkey held is claimed`);
        assert.equal(await raw.ttl(claim), -1, `${at}: the claim of a passkey still held does not expire`);
        const other = await person();
        await register(other.agent, other.page, softPasskey(), key.id);
        assert.deepEqual(await passkeyIds(other.sub), [], `${at}: the credential id ${owner.sub} still holds is not registered to another`);
      }
    }
  });
});
