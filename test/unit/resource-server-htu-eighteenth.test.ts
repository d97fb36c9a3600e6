/**
 * The eighteenth conformance pass (docs/security-passes.md, "Looked at in the eighteenth passes:
 * conformance-suite equivalents (h3)"): latchkey/resource-server compares a DPoP proof's `htu` with
 * the URL called after RFC 3986's syntax-based normalisation, as RFC 9449 §4.3 asks ("servers SHOULD
 * employ syntax-based normalization (Section 6.2.2 of [RFC3986]) and scheme-based normalization"):
 * percent-encoded unreserved characters are those characters, and hex digits in percent-encodings are
 * case-insensitive. A proxy in front of an API (nginx's `proxy_pass` with a URI re-encodes the path)
 * or a client library may spell one path either way.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { DPoPProblem, DPoPVerifier } from '../../src/resource-server/dpop.js';

const TOKEN = 'an-access-token';

describe('resource server: a DPoP proof’s htu after RFC 3986 normalisation, eighteenth pass', () => {
  let check: (htu: string, url: string) => Promise<void>;

  before(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const jkt = await calculateJwkThumbprint(jwk);
    const verifier = new DPoPVerifier(['ES256'], 0);
    check = async (htu, url) => {
      const proof = await new SignJWT({ jti: randomUUID(), htm: 'GET', htu, ath: createHash('sha256').update(TOKEN).digest('base64url') })
        .setIssuedAt()
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .sign(privateKey);
      await verifier.check({ proof, method: 'GET', url }, TOKEN, jkt);
    };
  });

  it('takes an htu that differs from the URL called only by percent-encoded unreserved characters or the case of hex digits (RFC 9449 §4.3, RFC 3986 §6.2.2.1, §6.2.2.2)', async () => {
    const same: [string, string][] = [
      ['https://api.example.test/th%69ngs', 'https://api.example.test/things'],
      ['https://api.example.test/files/~me', 'https://api.example.test/files/%7Eme'],
      ['https://api.example.test/files/%7eme', 'https://api.example.test/files/~me'],
      ['https://api.example.test/a%2Db%5Fc%2E', 'https://api.example.test/a-b_c.'],
      ['https://api.example.test/caf%c3%a9', 'https://api.example.test/caf%C3%A9'],
      ['https://api.example.test/caf%C3%A9', 'https://api.example.test/café'],
      ['https://api.example.test/a%2fb', 'https://api.example.test/a%2Fb'],
      ['https://API.example.test:443/things?x=1', 'https://api.example.test/things'],
    ];
    for (const [htu, url] of same) await check(htu, url).catch((error: Error) => assert.fail(`${htu} for ${url}: ${error.message}`));
  });

  it('still refuses an htu for another resource: a reserved character encoded is not that character, and another path, host or port is another URL', async () => {
    const other: [string, string][] = [
      ['https://api.example.test/a%2Fb', 'https://api.example.test/a/b'],
      ['https://api.example.test/a%3Fb', 'https://api.example.test/a?b'],
      ['https://api.example.test/things/', 'https://api.example.test/things'],
      ['https://api.example.test:8443/things', 'https://api.example.test/things'],
      ['http://api.example.test/things', 'https://api.example.test/things'],
      ['https://api.example.test/%74hings2', 'https://api.example.test/things'],
    ];
    for (const [htu, url] of other) {
      await assert.rejects(check(htu, url), (error: DPoPProblem) => error.code === 'invalid_dpop_proof' && /htu/.test(error.message), `${htu} for ${url}`);
    }
  });
});
