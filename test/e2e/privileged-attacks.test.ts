/**
 * An attack pass over the privileged and cryptographic surfaces, black box: the admin API and the
 * revocation feed against every token that is not an operator's grant, what the JWKS publishes,
 * what the logs and metrics keep. Each test performs one attack against a running Latchkey on a
 * real Redis (LOG_LEVEL=debug, every line kept) and asserts that it fails; docs/security.md's
 * threat model points here.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { API, clientCredentialsToken, grantFeed, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { createLogger } from '../../src/ops/logger.js';
import { createResourceServer } from '../../src/resource-server/index.js';

const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'privileged attacks test password';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const READER = { id: 'reader', secret: 'reader-client-secret-with-plenty-of-entropy-01234' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };

/** Public RSA members, as RFC 7518 §6.3.1 names them, and the three every published key states. */
const PUBLIC_RSA_MEMBERS = new Set(['kty', 'n', 'e', 'kid', 'alg', 'use']);

describe('attacks: the privileged and cryptographic surfaces (black box)', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  const logLines: string[] = [];

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    // The operator provisions a key exported by a tool that adds what WebCrypto and key managers
    // write beside the key: usages, extractability, a certificate-ish extra and an unknown member.
    const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const exported = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(exported, 'sha256');
    const jwk: JWK & Record<string, unknown> = { ...exported, kid, alg: 'RS256', use: 'sig', key_ops: ['sign'], ext: true, 'x-backup-passphrase': 'hunter2-kept-by-the-key-manager' };
    const at = new Date().toISOString();
    mkdirSync(join(dir, 'keys'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'keys', 'keyring.json'), `${JSON.stringify({ version: 1, keys: [{ kid, state: 'current', createdAt: at, activatedAt: at, jwk }] })}\n`, { mode: 0o600 });
    const settings = {
      redisUrl: redis.url,
      dir,
      port,
      clients: [
        { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile email offline_access read' },
        machineClient(OPS),
        machineClient(READER),
        machineClient(MACHINE),
        machineClient(RS),
      ],
    };
    server = await startServer({ ...settings, env: { LOG_LEVEL: 'debug', RESOURCE_SERVERS }, logger: createLogger('debug', { write: (line: string) => void logLines.push(line) }) });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.apis.grant(READER.id, `${server.issuer}/admin`, { scopes: ['admin:read'] });
    await grantFeed(server, RS.id);
    await server.accounts.create('alice', PASSWORD, { email: 'alice@example.test' });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  it('the JWKS publishes only the public members of each key (kty, n, e, kid, alg, use), whatever else the provisioned private JWK held, and latchkey/resource-server verifies against it (RFC 7517 §4.3, RFC 7518 §6.3.1)', async () => {
    for (const path of [new URL(server.config.issuer).pathname.replace(/\/$/, '') + '/jwks', '/.well-known/jwks.json']) {
      const answer = await fetch(`${server.url}${path}`);
      assert.equal(answer.status, 200, path);
      const { keys } = (await answer.json()) as { keys: Record<string, unknown>[] };
      assert.ok(keys.length >= 2, 'current and next');
      for (const key of keys) {
        assert.deepEqual(Object.keys(key).filter((member) => !PUBLIC_RSA_MEMBERS.has(member)), [], `${path}: ${JSON.stringify(key)}`);
        assert.equal(key.alg, 'RS256');
        assert.equal(key.use, 'sig');
      }
    }
    // The key as published is one a verifier can use: a token it signed passes the helper.
    const helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
    try {
      const token = await clientCredentialsToken(server.url, MACHINE, API, 'read');
      const claims = await helper.verify(token);
      assert.equal(claims.client_id, MACHINE.id);
    } finally {
      helper.close();
    }
  });
});
