// A worker thread of the raw RS256 limit (plain JavaScript: worker threads do not load .ts).
// Signs (or verifies) an access-token-sized JWT with jose for `seconds`, then reports its count.
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { importJWK, jwtVerify, SignJWT } from 'jose';

const { jwk, publicJwk, seconds, operation } = workerData;
const privateKey = await importJWK(jwk, 'RS256');
const publicKey = await importJWK(publicJwk, 'RS256');
const claims = { client_id: 'machine', scope: 'read' };
const sign = () => {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: jwk.kid })
    .setIssuer('http://localhost:3000')
    .setSubject('machine')
    .setAudience('https://api.example.test')
    .setJti(Math.random().toString(36).slice(2))
    .setIssuedAt(now)
    .setExpirationTime(now + 900)
    .sign(privateKey);
};
const token = await sign();

parentPort.postMessage({ ready: true });
await new Promise((go) => parentPort.once('message', go));
const end = performance.now() + seconds * 1000;
let count = 0;
while (performance.now() < end) {
  for (let i = 0; i < 8; i += 1) {
    if (operation === 'sign') await sign();
    else await jwtVerify(token, publicKey);
  }
  count += 8;
}
parentPort.postMessage({ count });
