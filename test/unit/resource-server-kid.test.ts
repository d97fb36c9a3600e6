/**
 * latchkey/resource-server refuses an access token whose header names no key (no `kid`): every
 * token Latchkey signs names its key, and the revoked-key check is keyed on it. The far side is a
 * plain HTTP server answering as a Latchkey would, publishing one signing key, so that jose would
 * pick that key for a token without `kid` (with two keys it refuses to choose).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { startStandInIssuer, type StandInIssuer } from '../helpers/stand-in-issuer.js';

const AUDIENCE = 'https://api.example.test';
const KID = 'the-one-key';

describe('latchkey/resource-server: a token must name its signing key (kid)', () => {
  let standIn: StandInIssuer;
  let issuer: string;
  let helper: ResourceServer;
  const feed: { type: 'kid'; kid: string; revoked_at: number; exp: number }[] = [];

  before(async () => {
    standIn = await startStandInIssuer(KID, () => ({ entries: feed, cursor: null, more: false }));
    issuer = standIn.issuer;
    helper = await createResourceServer({ issuer, audience: AUDIENCE, clientId: 'api', clientSecret: 'secret' });
  });
  after(async () => {
    helper?.close();
    await standIn?.close();
  });

  const token = (header: { alg: string; typ: string; kid?: string }) =>
    new SignJWT({ sub: 'someone', client_id: 'app', scope: 'read', jti: randomUUID() })
      .setProtectedHeader(header)
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(standIn.privateKey);
  const accepted = (jwt: string) =>
    helper.verify(`Bearer ${jwt}`).then(
      () => true,
      (error: unknown) => {
        if (error instanceof TokenRejected && error.code === 'invalid_token') return false;
        throw error;
      },
    );

  it('a token naming the published key is accepted (the baseline of the refusals below)', async () => {
    assert.equal(await accepted(await token({ alg: 'RS256', typ: 'at+jwt', kid: KID })), true);
  });

  it('a token without kid is refused with invalid_token, though signed by the one published key', async () => {
    assert.equal(await accepted(await token({ alg: 'RS256', typ: 'at+jwt' })), false);
  });

  it('once that key is revoked, a token without kid is refused too, while the cached JWKS still holds the key', async () => {
    feed.push({ type: 'kid', kid: KID, revoked_at: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3600 });
    await helper.sync();
    assert.equal(await accepted(await token({ alg: 'RS256', typ: 'at+jwt', kid: KID })), false);
    assert.equal(await accepted(await token({ alg: 'RS256', typ: 'at+jwt' })), false);
  });
});
