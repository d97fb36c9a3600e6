/**
 * A Latchkey as latchkey/resource-server sees it, over plain HTTP: its discovery document, one RS256
 * key in its JWKS (`kid`), a token endpoint that hands out a feed token, and a revocation feed whose
 * answer `feed` gives for the request's `after` (null without one).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

export interface StandInIssuer {
  readonly issuer: string;
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  close(): Promise<void>;
}

export async function startStandInIssuer(kid: string, feed: (after: string | null) => unknown): Promise<StandInIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  let issuer = '';
  const server = createServer((req, res) => {
    const send = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/openid-configuration') return send({ issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token`, revocation_feed_endpoint: `${issuer}/revocations` });
    if (url.pathname === '/jwks') return send({ keys: [jwk] });
    if (url.pathname === '/token') return send({ access_token: 'feed-token', token_type: 'Bearer', expires_in: 300 });
    if (url.pathname === '/revocations') return send(feed(url.searchParams.get('after')));
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { issuer, privateKey, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
