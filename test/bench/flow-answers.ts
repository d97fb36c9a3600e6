/**
 * Like for like: what Latchkey and the bare oidc-provider each answer to the SSO flow's two
 * requests (scenarios.ts sso-code, one flow each, on its own Redis): status, headers, cookies set,
 * the token response's fields, each token's format (an opaque token's length; a JWT's header and
 * claims). What one issues and the other does not (a second signature, a refresh token, a claim,
 * a header) shows before any CPU is compared.
 *
 *   node --import tsx test/bench/flow-answers.ts
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { startRedisServer } from '../helpers/redis.js';
import type { Context, Request, Step } from './load.js';
import { SCENARIOS, type Target } from './scenarios.js';
import { addUser, startBare, startLatchkey } from './targets.js';

function send(base: string, { method, path, headers, body }: Request): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function show(target: Target) {
  const scenario = SCENARIOS.find((candidate) => candidate.id === 'sso-code')!;
  const { steps } = await scenario.prepare(target, { introspectionPool: 0, jwtRevocationPool: 0, sessions: 1, chains: 0 });
  const ctx: Context = {};
  console.log(`\n=== ${target.kind}`);
  for (const step of steps as Step[]) {
    const request = step.request(ctx);
    if (!request) break;
    const response = await send(target.url, request);
    console.log(`${step.name}: ${response.status}, ${response.body.length} bytes of body, check: ${step.check(response, ctx) ?? 'ok'}`);
    for (const [name, value] of Object.entries(response.headers)) if (name !== 'date') console.log(`  ${name}: ${Array.isArray(value) ? value.join(' | ') : value}`);
    if (step.name !== 'token') continue;
    const answer = JSON.parse(response.body) as Record<string, unknown>;
    console.log(`  fields: ${Object.keys(answer).sort().join(', ')}`);
    for (const [name, value] of Object.entries(answer)) {
      if (typeof value !== 'string' || !name.endsWith('_token')) continue;
      if (value.split('.').length === 3) console.log(`  ${name}: JWT ${JSON.stringify(decodeProtectedHeader(value))} ${JSON.stringify(decodeJwt(value))}`);
      else console.log(`  ${name}: opaque, ${value.length} characters`);
    }
  }
}

const redis = await startRedisServer();
try {
  const latchkey = await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info' });
  try {
    await addUser(latchkey, 'dist');
    await show(latchkey);
  } finally {
    await latchkey.stop();
  }
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const bare = await startBare({ signingKey: { ...(await exportJWK(privateKey)), kid: 'bench', alg: 'RS256', use: 'sig' } });
  try {
    await show(bare);
  } finally {
    await bare.stop();
  }
} finally {
  await redis.stop();
}
process.exit(0);
