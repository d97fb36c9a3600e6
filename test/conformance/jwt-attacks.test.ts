/**
 * JWT attacks at every place Latchkey accepts a JWT: id_token_hint at the end-session and
 * authorization endpoints, private_key_jwt client assertions at the token endpoint, JWT access
 * tokens at introspection, at the revocation feed and in latchkey/resource-server, access tokens
 * at userinfo, DPoP proofs, and request objects.
 *
 * Each place first accepts a genuine token (so a refusal means the attack failed, not the test),
 * then refuses each forgery: alg none, HS256 keyed with the verifier's public key, a key it does
 * not know, a stranger's key under a known kid, keys offered in the token's own header (jku, x5u,
 * jwk), expired and not-yet-valid tokens, the wrong audience or issuer, and tokens of one kind
 * used as another (RFC 9068 / RFC 8725 §3.11 typ). jku and x5u point at a server of the attacker's
 * that counts its requests: it must never be asked.
 *
 * The operator provisions the OP's signing key (keys/keyring.json), so the suite can sign "as the
 * OP" the tokens only the OP could make: expired ones, ones for another audience, ones of another type.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent, ALICE, callbackParams, grantApi, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const API = 'https://api.example.test';
const OTHER_API = 'https://other-api.example.test';
const SECRET = 'jwt-attacks-client-secret-with-plenty-of-entropy-01';
const BYE = 'https://web.example.test/signed-out';
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/** The attacker's web server: serves a JWKS and a certificate URL, and counts every request. */
async function startAttacker(jwks: { keys: JWK[] }): Promise<{ url: string; hits: number; server: Server }> {
  const attacker = { url: '', hits: 0, server: undefined as unknown as Server };
  attacker.server = createServer((req, res) => {
    attacker.hits += 1;
    res.writeHead(200, { 'content-type': req.url?.includes('x5u') ? 'application/pem-certificate-chain' : 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((done) => attacker.server.listen(0, '127.0.0.1', done));
  attacker.url = `http://127.0.0.1:${(attacker.server.address() as AddressInfo).port}`;
  return attacker;
}

interface Target {
  /** The private key a genuine token of this place is signed with (the OP's, or the client's). */
  readonly privateKey: Key;
  /** Its public JWK (with kid), as the verifier holds it. */
  readonly publicJwk: JWK;
}

interface Attack {
  readonly title: string;
  readonly ref: string;
  /** Builds the forgery from a genuine token of the place. */
  make(genuine: string, target: Target): Promise<string>;
}

describe('JWT attacks at every place a JWT is accepted (RFC 8725, RFC 7515, RFC 9068)', function () {
  this.timeout(60_000);
  let op: Op;
  let opTarget: Target;
  let clientTarget: Target;
  let stranger: { privateKey: Key; jwk: JWK };
  let attacker: Awaited<ReturnType<typeof startAttacker>>;
  let receiver: { server: Server; url: string; tokens: string[] };
  let web: RelyingParty;
  let helper: ResourceServer;
  let alice: Agent;
  let aliceIdToken: string;

  const machine = { id: 'machine', secret: SECRET };
  const api = { id: 'api', secret: SECRET };
  const basic = ({ id, secret }: { id: string; secret: string }) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

  before(async () => {
    const strangerPair = await generateKeyPair('RS256', { extractable: true });
    stranger = { privateKey: strangerPair.privateKey, jwk: { ...(await exportJWK(strangerPair.publicKey)), kid: 'attacker-key', alg: 'RS256', use: 'sig' } };
    attacker = await startAttacker({ keys: [stranger.jwk] });
    receiver = { server: undefined as unknown as Server, url: '', tokens: [] };
    receiver.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        const token = new URLSearchParams(body).get('logout_token');
        if (token) receiver.tokens.push(token);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((done) => receiver.server.listen(0, '127.0.0.1', done));
    receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/web`;

    const clientPair = await generateKeyPair('RS256', { extractable: true });
    clientTarget = { privateKey: clientPair.privateKey, publicJwk: { ...(await exportJWK(clientPair.publicKey)), kid: 'client-key', alg: 'RS256', use: 'sig' } };
    const machineClient = (id: string) => ({ client_id: id, client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
    op = await startOp({
      provisionKey: true,
      people: [ALICE],
      env: {
        RESOURCE_SERVERS: JSON.stringify([
          { identifier: API, scopes: ['read'], format: 'jwt', grants: [{ client_id: 'machine', scopes: ['read'] }, { client_id: 'api', introspect: true }] },
          { identifier: OTHER_API, scopes: ['read'], format: 'jwt', grants: [{ client_id: 'machine', scopes: ['read'] }] },
        ]),
      },
      clients: [
        webClient('web', SECRET, { backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true, post_logout_redirect_uris: [BYE] }),
        machineClient('machine'),
        machineClient('api'),
        {
          client_id: 'pkjwt',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [clientTarget.publicJwk] },
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
        },
      ],
    });
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicPart } = op.signingKey!;
    opTarget = { privateKey: (await importJWK(op.signingKey!, 'RS256')) as Key, publicJwk: publicPart };
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    alice = new Agent();
    aliceIdToken = (await web.redeem(await web.signIn(alice, ALICE))).id_token!;
    await grantApi(op, api.id, `${op.issuer}/revocations`, ['revocations']);
    helper = await createResourceServer({ issuer: op.issuer, audience: API, clientId: api.id, clientSecret: api.secret });
  });

  after(async () => {
    helper?.close();
    await op?.stop();
    attacker?.server.close();
    receiver?.server.close();
  });

  afterEach(() => {
    assert.equal(attacker.hits, 0, 'a key URL from a token header was fetched');
  });

  // ---- forging -------------------------------------------------------------------------------

  const sign = (claims: JWTPayload, header: Record<string, unknown>, key: Key | Uint8Array) =>
    new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);

  /** A JWS jose will not make (it refuses to sign a crit it does not understand): the signing input signed with WebCrypto. */
  const signUnchecked = async (claims: JWTPayload, header: Record<string, unknown>, key: Key) => {
    const input = `${b64(header)}.${b64(claims)}`;
    const algorithm = header.alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
    const signature = await crypto.subtle.sign(algorithm, key as Parameters<typeof crypto.subtle.sign>[1], new TextEncoder().encode(input));
    return `${input}.${Buffer.from(signature).toString('base64url')}`;
  };

  /** The genuine token's header and claims, to build forgeries that differ in one thing only. */
  const parts = (genuine: string) => ({ header: decodeProtectedHeader(genuine) as Record<string, unknown>, claims: decodeJwt(genuine) });

  const publicPem = (jwk: JWK) => Buffer.from(createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string);

  /** Signed with the place's own key, with changed claims or header: tokens only the key holder could make. */
  const resigned = (change: (claims: JWTPayload) => JWTPayload, headerChange: (header: Record<string, unknown>) => Record<string, unknown> = (h) => h) =>
    async (genuine: string, target: Target) => {
      const { header, claims } = parts(genuine);
      return sign(change({ ...claims, jti: claims.jti === undefined ? undefined : randomUUID() }), headerChange(header), target.privateKey);
    };

  const SIGNATURE_ATTACKS: Attack[] = [
    {
      title: 'alg none, unsigned',
      ref: 'RFC 8725 §2.1, §3.1',
      make: async (genuine) => {
        const { header, claims } = parts(genuine);
        return `${b64({ ...header, alg: 'none' })}.${b64(claims)}.`;
      },
    },
    {
      title: 'HS256 keyed with the public key as PEM (key confusion)',
      ref: 'RFC 8725 §2.1, §3.1',
      make: async (genuine, target) => {
        const { header, claims } = parts(genuine);
        return sign(claims, { ...header, alg: 'HS256' }, publicPem(target.publicJwk));
      },
    },
    {
      title: 'HS256 keyed with the public JWK as JSON (key confusion)',
      ref: 'RFC 8725 §2.1, §3.1',
      make: async (genuine, target) => {
        const { header, claims } = parts(genuine);
        return sign(claims, { ...header, alg: 'HS256' }, new TextEncoder().encode(JSON.stringify(target.publicJwk)));
      },
    },
    {
      title: 'a key it does not know (unknown kid)',
      ref: 'RFC 7515 §4.1.4, RFC 8725 §3.1',
      make: async (genuine) => {
        const { header, claims } = parts(genuine);
        return sign(claims, { ...header, kid: 'unknown-kid' }, stranger.privateKey);
      },
    },
    {
      title: "a stranger's key under the genuine kid",
      ref: 'RFC 7515 §5.2',
      make: async (genuine) => {
        const { header, claims } = parts(genuine);
        return sign(claims, header, stranger.privateKey);
      },
    },
    {
      title: "a jku header pointing at the attacker's JWKS",
      ref: 'RFC 7515 §4.1.2, RFC 8725 §3.10',
      make: async (genuine) => {
        const { header, claims } = parts(genuine);
        return sign(claims, { ...header, kid: stranger.jwk.kid, jku: `${attacker.url}/jwks.json` }, stranger.privateKey);
      },
    },
    {
      title: "an x5u header pointing at the attacker's certificate",
      ref: 'RFC 7515 §4.1.5, RFC 8725 §3.10',
      make: async (genuine) => {
        const { header, claims } = parts(genuine);
        return sign(claims, { ...header, kid: stranger.jwk.kid, x5u: `${attacker.url}/x5u.pem` }, stranger.privateKey);
      },
    },
    {
      title: "the attacker's key embedded in a jwk header",
      ref: 'RFC 7515 §4.1.3, RFC 8725 §3.10',
      make: async (genuine) => {
        const { header, claims } = parts(genuine);
        return sign(claims, { ...header, kid: stranger.jwk.kid, jwk: stranger.jwk }, stranger.privateKey);
      },
    },
    {
      title: 'a tampered payload under the genuine signature',
      ref: 'RFC 7515 §5.2',
      make: async (genuine) => {
        const [header, , signature] = genuine.split('.');
        return `${header}.${b64({ ...decodeJwt(genuine), sub: 'someone-else' })}.${signature}`;
      },
    },
  ];

  const unknownCrit: Attack = {
    title: 'a crit header naming an extension no one here understands, though signed with the genuine key',
    ref: 'RFC 7515 §4.1.11, RFC 8725 §3.1',
    make: async (genuine, target) => {
      const { header, claims } = parts(genuine);
      return signUnchecked({ ...claims, jti: claims.jti === undefined ? undefined : randomUUID() }, { ...header, crit: ['urn:example:must-understand'], 'urn:example:must-understand': true }, target.privateKey);
    },
  };
  const expired: Attack = {
    title: 'an expired token, though signed with the genuine key',
    ref: 'RFC 7519 §4.1.4',
    make: resigned((claims) => ({ ...claims, iat: now() - 7200, exp: now() - 3600 })),
  };
  const notYetValid: Attack = {
    title: 'a not-yet-valid token (nbf an hour ahead), though signed with the genuine key',
    ref: 'RFC 7519 §4.1.5',
    make: resigned((claims) => ({ ...claims, nbf: now() + 3600 })),
  };
  const wrongIssuer: Attack = {
    title: 'another issuer, though signed with the genuine key',
    ref: 'RFC 7519 §4.1.1, RFC 8725 §3.8',
    make: resigned((claims) => ({ ...claims, iss: 'https://evil.example' })),
  };
  const wrongAudience = (aud: string): Attack => ({
    title: `the wrong audience (${aud}), though signed with the genuine key`,
    ref: 'RFC 7519 §4.1.3, RFC 8725 §3.9',
    make: resigned((claims) => ({ ...claims, aud })),
  });
  const retyped = (typ: string | undefined, what: string): Attack => ({
    title: `${what} (typ ${typ ?? 'absent'}), though signed with the genuine key`,
    ref: 'RFC 8725 §3.11, RFC 9068 §2.1',
    make: resigned(
      (claims) => claims,
      (header) => {
        const { typ: _typ, ...rest } = header;
        return typ === undefined ? rest : { ...rest, typ };
      },
    ),
  });

  // ---- the places ----------------------------------------------------------------------------

  interface Place {
    readonly name: string;
    readonly target: () => Target;
    readonly genuine: () => Promise<string>;
    readonly accepts: (token: string) => Promise<boolean>;
    readonly attacks: Attack[];
  }

  async function accessToken(resource: string, scope = 'read', client = machine): Promise<string> {
    const response = await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
    });
    const body = (await response.json()) as { access_token?: string; error_description?: string };
    assert.equal(response.status, 200, body.error_description);
    return body.access_token!;
  }

  async function introspectionActive(token: string): Promise<boolean> {
    const response = await fetch(op.metadata.introspection_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic(api) },
      body: new URLSearchParams({ token }),
    });
    assert.equal(response.status, 200);
    return ((await response.json()) as { active: boolean }).active;
  }

  async function endSessionAccepts(hint: string): Promise<boolean> {
    const url = new URL(op.metadata.end_session_endpoint!);
    url.search = new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: BYE }).toString();
    const page = await new Agent().follow(url.href, {}, 'https://');
    assert.ok([200, 400].includes(page.status), `end_session answered ${page.status}`);
    return page.status === 200;
  }

  async function authorizationAccepts(hint: string): Promise<boolean> {
    const flow = await web.authorize(alice, { prompt: 'none', id_token_hint: hint });
    if (!flow.page.url.startsWith(web.redirectUri)) return false;
    return callbackParams(flow).get('code') !== null;
  }

  async function clientAssertion(claims: Partial<JWTPayload> = {}): Promise<string> {
    return sign(
      { iss: 'pkjwt', sub: 'pkjwt', aud: op.issuer, jti: randomUUID(), iat: now(), exp: now() + 60, ...claims },
      { alg: 'RS256', kid: clientTarget.publicJwk.kid },
      clientTarget.privateKey,
    );
  }

  async function assertionAccepted(assertion: string, headers: Record<string, string> = {}): Promise<boolean> {
    const response = await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: 'pkjwt',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
    if (response.status !== 200) {
      assert.ok([400, 401].includes(response.status), `token endpoint answered ${response.status}`);
      assert.ok(['invalid_client', 'invalid_request'].includes(((await response.json()) as { error: string }).error));
    }
    return response.status === 200;
  }

  const helperAccepts = (token: string) =>
    helper.verify(token).then(
      () => true,
      (error: unknown) => {
        if (error instanceof TokenRejected) return false;
        throw error;
      },
    );

  async function feedAccepts(token: string): Promise<boolean> {
    const response = await fetch(`${op.issuer}/revocations`, { headers: { authorization: `Bearer ${token}` } });
    if (response.status !== 200) assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    return response.status === 200;
  }

  /** A genuine logout token for `web`: sign in, sign out, catch it at the back-channel endpoint. */
  async function logoutToken(): Promise<string> {
    const agent = new Agent();
    const idToken = (await web.redeem(await web.signIn(agent, ALICE))).id_token!;
    receiver.tokens.length = 0;
    const url = new URL(op.metadata.end_session_endpoint!);
    url.search = new URLSearchParams({ id_token_hint: idToken }).toString();
    const page = await agent.follow(url.href);
    await agent.submit(page, '/session/end/confirm', { logout: 'yes' }, 'https://');
    assert.equal(receiver.tokens.length, 1);
    return receiver.tokens[0]!;
  }

  const ID_TOKEN_TYPES = [retyped('at+jwt', 'an access token'), retyped('logout+jwt', 'a logout token'), retyped('application/at+jwt', 'an access token')];
  const ACCESS_TOKEN_TYPES = [retyped(undefined, 'an untyped JWT'), retyped('JWT', 'a plain JWT')];

  const places: Place[] = [
    {
      name: 'id_token_hint at the end-session endpoint',
      target: () => opTarget,
      genuine: async () => aliceIdToken,
      accepts: endSessionAccepts,
      attacks: [...SIGNATURE_ATTACKS, unknownCrit, notYetValid, wrongIssuer, wrongAudience('not-a-client'), ...ID_TOKEN_TYPES],
    },
    {
      name: 'id_token_hint at the authorization endpoint',
      target: () => opTarget,
      genuine: async () => aliceIdToken,
      accepts: authorizationAccepts,
      attacks: [...SIGNATURE_ATTACKS, unknownCrit, notYetValid, wrongIssuer, wrongAudience('not-a-client'), ...ID_TOKEN_TYPES],
    },
    {
      name: 'private_key_jwt client assertion at the token endpoint',
      target: () => clientTarget,
      genuine: () => clientAssertion(),
      accepts: assertionAccepted,
      attacks: [...SIGNATURE_ATTACKS, unknownCrit, expired, notYetValid, wrongAudience('https://other-issuer.example')],
    },
    {
      name: 'latchkey/resource-server',
      target: () => opTarget,
      genuine: () => accessToken(API),
      accepts: helperAccepts,
      attacks: [...SIGNATURE_ATTACKS, unknownCrit, expired, notYetValid, wrongIssuer, wrongAudience(OTHER_API), ...ACCESS_TOKEN_TYPES],
    },
    {
      name: 'introspection of JWT access tokens',
      target: () => opTarget,
      genuine: () => accessToken(API),
      accepts: introspectionActive,
      attacks: [...SIGNATURE_ATTACKS, unknownCrit, expired, notYetValid, wrongIssuer, ...ACCESS_TOKEN_TYPES],
    },
    {
      name: 'the revocation feed',
      target: () => opTarget,
      genuine: () => accessToken(`${op.issuer}/revocations`, 'revocations', api),
      accepts: feedAccepts,
      attacks: [...SIGNATURE_ATTACKS, unknownCrit, expired, notYetValid, wrongIssuer, wrongAudience(API), ...ACCESS_TOKEN_TYPES],
    },
  ];

  for (const place of places) {
    describe(place.name, () => {
      it(`${place.name}: a genuine token is accepted (the baseline for every refusal below)`, async () => {
        assert.equal(await place.accepts(await place.genuine()), true);
      });
      it(`${place.name}: a genuine token signed again by hand is accepted (the baseline of the crit refusal)`, async () => {
        const { header, claims } = parts(await place.genuine());
        assert.equal(await place.accepts(await signUnchecked({ ...claims, jti: claims.jti === undefined ? undefined : randomUUID() }, header, place.target().privateKey)), true);
      });
      for (const attack of place.attacks) {
        it(`${place.name}: refuses ${attack.title} (${attack.ref})`, async () => {
          const forged = await attack.make(await place.genuine(), place.target());
          assert.equal(await place.accepts(forged), false);
        });
      }
    });
  }

  describe('tokens of one kind used as another', () => {
    it('an ID token is not an access token: refused by latchkey/resource-server, inactive at introspection, refused by the feed (RFC 9068 §4, RFC 8725 §3.11)', async () => {
      assert.equal(await helperAccepts(aliceIdToken), false);
      assert.equal(await introspectionActive(aliceIdToken), false);
      assert.equal(await feedAccepts(aliceIdToken), false);
    });

    it('an ID token is not an access token at userinfo: 401 invalid_token (Core §5.3.3, RFC 6750 §3.1)', async () => {
      const response = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${aliceIdToken}` } });
      assert.equal(response.status, 401);
      assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    });

    it('an access token for an API is not accepted at userinfo (RFC 9700 §2.3: audience restriction)', async () => {
      const response = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${await accessToken(API)}` } });
      assert.equal(response.status, 401);
    });

    it('a genuine JWT access token is not an id_token_hint (RFC 8725 §3.11, RFC 9068 §2.1)', async () => {
      const token = await accessToken(API);
      assert.equal(await endSessionAccepts(token), false);
      assert.equal(await authorizationAccepts(token), false);
    });

    it("a genuine logout token, received by the client's back-channel endpoint, is not an id_token_hint (RFC 8725 §3.11, Back-Channel Logout §2.4)", async () => {
      const token = await logoutToken();
      assert.equal(decodeProtectedHeader(token).typ, 'logout+jwt');
      assert.equal(await endSessionAccepts(token), false);
      assert.equal(await authorizationAccepts(token), false);
    });

    it('a genuine logout token is not an access token (RFC 8725 §3.11)', async () => {
      const token = await logoutToken();
      assert.equal(await helperAccepts(token), false);
      assert.equal(await introspectionActive(token), false);
    });
  });

  describe('single use and time rules of client assertions', () => {
    it('a client assertion whose jti was used before is refused (RFC 7523 §3 item 7, RFC 9700 §2.5)', async () => {
      const assertion = await clientAssertion();
      assert.equal(await assertionAccepted(assertion), true);
      assert.equal(await assertionAccepted(assertion), false, 'replayed');
    });

    it('a client assertion without exp is refused (RFC 7523 §3 item 4)', async () => {
      const assertion = await sign({ iss: 'pkjwt', sub: 'pkjwt', aud: op.issuer, jti: randomUUID(), iat: now() }, { alg: 'RS256', kid: 'client-key' }, clientTarget.privateKey);
      assert.equal(await assertionAccepted(assertion), false);
    });

    it('a client assertion without iat is refused: a deliberate departure from Core §9 and RFC 7523 §3, where iat is optional (docs/protocol.md, Deliberate departures)', async () => {
      const assertion = await sign({ iss: 'pkjwt', sub: 'pkjwt', aud: op.issuer, jti: randomUUID(), exp: now() + 60 }, { alg: 'RS256', kid: 'client-key' }, clientTarget.privateKey);
      assert.equal(await assertionAccepted(assertion), false);
      assert.equal(await assertionAccepted(await clientAssertion()), true, 'the same with iat is accepted');
    });

    it('a client assertion whose iss or sub is not the client is refused (RFC 7523 §3 items 1-2)', async () => {
      assert.equal(await assertionAccepted(await clientAssertion({ iss: 'someone-else' })), false);
      assert.equal(await assertionAccepted(await clientAssertion({ sub: 'someone-else' })), false);
    });

    it('the issuer identifier is the audience; the token endpoint URL alone is refused (RFC 7523 §3 item 3 as draft-ietf-oauth-rfc7523bis updates it: audience injection)', async () => {
      assert.equal(await assertionAccepted(await clientAssertion({ aud: op.metadata.token_endpoint! })), false);
      assert.equal(await assertionAccepted(await clientAssertion({ aud: op.issuer })), true);
    });
  });

  describe('expired ID tokens as hints', () => {
    it('an expired but genuine ID token is still a hint at the end-session endpoint (RP-Initiated Logout §2)', async () => {
      assert.equal(await endSessionAccepts(await expired.make(aliceIdToken, opTarget)), true);
    });

    it('an expired but genuine ID token is still a hint at the authorization endpoint (Core §3.1.2.1: a past session)', async () => {
      assert.equal(await authorizationAccepts(await expired.make(aliceIdToken, opTarget)), true);
    });
  });

  describe('DPoP proofs (RFC 9449)', () => {
    let dpopKeys: Awaited<ReturnType<typeof generateKeyPair>>;

    before(async () => {
      dpopKeys = await generateKeyPair('ES256', { extractable: true });
    });

    async function proof(claims: Partial<JWTPayload> = {}, header: Record<string, unknown> = {}, key: Key | Uint8Array = dpopKeys.privateKey) {
      return sign(
        { htm: 'POST', htu: op.metadata.token_endpoint!, iat: now(), jti: randomUUID(), ...claims },
        { alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(dpopKeys.publicKey), ...header },
        key,
      );
    }

    async function tokenWithProof(dpop: string) {
      const response = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic(machine), dpop },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
      });
      return { status: response.status, body: (await response.json()) as { error?: string; token_type?: string; access_token?: string } };
    }

    it('a genuine proof binds the token: token_type DPoP with cnf.jkt (RFC 9449 §5, §6)', async () => {
      const { status, body } = await tokenWithProof(await proof());
      assert.equal(status, 200);
      assert.equal(body.token_type, 'DPoP');
      assert.ok((decodeJwt(body.access_token!).cnf as { jkt?: string } | undefined)?.jkt);
    });

    const forgedProofs: [string, () => Promise<string>][] = [
      ['alg none', async () => `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: await exportJWK(dpopKeys.publicKey) })}.${b64({ htm: 'POST', htu: op.metadata.token_endpoint, iat: now(), jti: randomUUID() })}.`],
      ['HS256', async () => proof({}, { alg: 'HS256' }, new TextEncoder().encode('a shared secret of at least thirty-two bytes'))],
      ['signed by a key other than its jwk', async () => proof({}, {}, (await generateKeyPair('ES256')).privateKey)],
      ['a private key in its jwk header', async () => proof({}, { jwk: await exportJWK(dpopKeys.privateKey) })],
      [
        'a crit header naming an extension no one here understands (RFC 7515 §4.1.11)',
        async () =>
          signUnchecked(
            { htm: 'POST', htu: op.metadata.token_endpoint!, iat: now(), jti: randomUUID() },
            { alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(dpopKeys.publicKey), crit: ['urn:example:must-understand'], 'urn:example:must-understand': true },
            dpopKeys.privateKey,
          ),
      ],
      ['the wrong typ', async () => proof({}, { typ: 'JWT' })],
      ['the wrong htm', async () => proof({ htm: 'GET' })],
      ['the wrong htu', async () => proof({ htu: 'https://evil.example/token' })],
    ];
    for (const [what, make] of forgedProofs) {
      it(`the token endpoint refuses a DPoP proof with ${what} (RFC 9449 §4.3)`, async () => {
        const { status, body } = await tokenWithProof(await make());
        assert.equal(status, 400);
        assert.equal(body.error, 'invalid_dpop_proof');
        assert.equal(body.access_token, undefined);
      });
    }

    it('a proof with an iat an hour old is refused, and the client is told a server nonce to prove freshness with (RFC 9449 §4.3, §8)', async () => {
      const response = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic(machine), dpop: await proof({ iat: now() - 3600 }) },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
      });
      const body = (await response.json()) as { error?: string; access_token?: string };
      assert.equal(response.status, 400);
      assert.equal(body.error, 'use_dpop_nonce');
      assert.equal(body.access_token, undefined);
      assert.ok(response.headers.get('dpop-nonce'));
    });

    it('a proof signed by hand, without crit, binds the token (the baseline of the crit refusal)', async () => {
      const dpop = await signUnchecked({ htm: 'POST', htu: op.metadata.token_endpoint!, iat: now(), jti: randomUUID() }, { alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(dpopKeys.publicKey) }, dpopKeys.privateKey);
      assert.equal((await tokenWithProof(dpop)).status, 200);
    });

    it('a replayed DPoP proof (same jti) is refused as invalid_dpop_proof (RFC 9449 §11.1, §5)', async () => {
      const dpop = await proof();
      assert.equal((await tokenWithProof(dpop)).status, 200);
      const again = await tokenWithProof(dpop);
      assert.equal(again.status, 400);
      assert.equal(again.body.error, 'invalid_dpop_proof');
      assert.equal(again.body.access_token, undefined);
    });

    /** A code of `web` for alice (signed in already), redeemed with `dpop`. */
    async function redeemWithProof(flow: { page: { url: string }; verifier: string; redirectUri: string }, dpop: string) {
      const response = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic({ id: 'web', secret: SECRET }), dpop },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: new URL(flow.page.url).searchParams.get('code')!, redirect_uri: flow.redirectUri, code_verifier: flow.verifier }),
      });
      return { status: response.status, body: (await response.json()) as { error?: string; token_type?: string; access_token?: string } };
    }

    it('a replayed DPoP proof does not spend the code it came with: the client redeems it with a proof of its own after (RFC 9449 §11.1, RFC 6749 §4.1.2)', async () => {
      const dpop = await proof();
      assert.equal((await redeemWithProof(await web.authorize(alice, { prompt: 'none' }), dpop)).status, 200);
      // Someone holding that proof and an intercepted code tries it: refused, and the code is still the client's.
      const intercepted = await web.authorize(alice, { prompt: 'none' });
      const replayed = await redeemWithProof(intercepted, dpop);
      assert.equal(replayed.status, 400);
      assert.equal(replayed.body.error, 'invalid_dpop_proof');
      const own = await redeemWithProof(intercepted, await proof());
      assert.equal(own.status, 200, JSON.stringify(own.body));
      assert.equal(own.body.token_type, 'DPoP');
    });

    it("a DPoP proof one client used is refused from another (RFC 9449 §4.3: a jti once per endpoint, whoever sends it)", async () => {
      const dpop = await proof();
      assert.equal((await tokenWithProof(dpop)).status, 200);
      const other = await redeemWithProof(await web.authorize(alice, { prompt: 'none' }), dpop);
      assert.equal(other.status, 400);
      assert.equal(other.body.error, 'invalid_dpop_proof');
    });

    it("a client assertion replayed beside a fresh DPoP proof of the same jti is still refused: the proof's single use does not stand in for the assertion's (RFC 7523 §3 item 7, RFC 9449 §11.1)", async () => {
      const jti = randomUUID();
      const assertion = await clientAssertion({ jti });
      assert.equal(await assertionAccepted(assertion), true);
      assert.equal(await assertionAccepted(assertion, { dpop: await proof({ jti }) }), false, 'replayed with a proof naming its jti');
    });

    it("a DPoP proof that came with a code is remembered for the engine's whole window (iat within five minutes): a code redeemed with it minutes later is refused (RFC 9449 §11.1)", async () => {
      const jti = randomUUID();
      const dpop = await proof({ jti });
      assert.equal((await redeemWithProof(await web.authorize(alice, { prompt: 'none' }), dpop)).status, 200);
      const digest = createHash('sha256').update(`token\n${await calculateJwkThumbprint(await exportJWK(dpopKeys.publicKey))}\n${jti}`).digest('base64url');
      const raw = new Redis(op.env.REDIS_URL!);
      try {
        const ttl = await raw.ttl(`${op.env.REDIS_KEY_PREFIX ?? 'lk:'}dpop-proof:${digest}`);
        assert.ok(ttl > 240, `the proof is remembered for ${ttl} s`);
      } finally {
        raw.disconnect();
      }
    });

    it('a DPoP proof replayed at userinfo is refused with the DPoP challenge and invalid_dpop_proof; the token stays good (RFC 9449 §7.1)', async () => {
      const config = await oidc.discovery(new URL(op.issuer), 'web', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
      const flow = await web.authorize(alice, { prompt: 'none' });
      const tokens = await oidc.authorizationCodeGrant(config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }, undefined, { DPoP: oidc.getDPoPHandle(config, dpopKeys) });
      const ath = createHash('sha256').update(tokens.access_token).digest('base64url');
      const atUserinfo = () => proof({ htm: 'GET', htu: op.metadata.userinfo_endpoint!, ath });
      const ask = (dpop: string) => fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop } });
      const dpop = await atUserinfo();
      assert.equal((await ask(dpop)).status, 200);
      const again = await ask(dpop);
      assert.equal(again.status, 401);
      assert.match(again.headers.get('www-authenticate') ?? '', /^DPoP .*error="invalid_dpop_proof"/);
      assert.equal((await ask(await atUserinfo())).status, 200, 'the token itself is not ended');
    });

    it('a DPoP-bound access token presented as a Bearer token is refused at userinfo (RFC 9449 §7.2, RFC 9700 §2.2.1)', async () => {
      const config = await oidc.discovery(new URL(op.issuer), 'web', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
      const handle = oidc.getDPoPHandle(config, dpopKeys);
      const flow = await web.authorize(alice, { prompt: 'none' });
      const tokens = await oidc.authorizationCodeGrant(config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }, undefined, { DPoP: handle });
      assert.equal(tokens.token_type.toLowerCase(), 'dpop');
      const bearer = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.equal(bearer.status, 401);
      const info = await oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck, { DPoP: handle });
      assert.equal(info.sub, op.subs.alice, 'with its proof it works');
    });
  });

  describe('request objects', () => {
    it('are refused at the authorization endpoint and at the pushed authorization request endpoint: request objects are not enabled (Core §6.1, RFC 9101)', async () => {
      const unsigned = `${b64({ alg: 'none' })}.${b64({ iss: 'web', aud: op.issuer, client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: web.redirectUri })}.`;
      const signed = await sign({ iss: 'web', aud: op.issuer, client_id: 'web' }, { alg: 'RS256', kid: stranger.jwk.kid, jku: `${attacker.url}/jwks.json` }, stranger.privateKey);
      for (const request of [unsigned, signed]) {
        const flow = await web.authorize(new Agent(), { request });
        assert.equal(callbackParams(flow).get('error'), 'request_not_supported');
        const par = await fetch(op.metadata.pushed_authorization_request_endpoint!, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic({ id: 'web', secret: SECRET }) },
          body: new URLSearchParams({ request }),
        });
        assert.equal(par.status, 400);
        assert.equal(((await par.json()) as { error: string }).error, 'request_not_supported');
      }
    });
  });
});
