/** What the fake upstream identity providers of the tests have in common. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { Agent } from './agent.js';
import type { TestServer } from './server.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { Upstreams } from '../../src/upstreams/registry.js';

/** The discovery document of a fake upstream at `issuer`: code flow, PKCE S256, RS256 ID tokens. */
export function upstreamDiscovery(issuer: string) {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    code_challenge_methods_supported: ['S256'],
  };
}

export type Mode = 'good' | 'forged' | 'expired' | 'audience' | 'nonce' | 'deny' | 'issuer' | 'several-audiences' | 'several-audiences-azp' | 'azp-other' | 'alg-none' | 'hs256' | 'email-split';

/**
 * An upstream we control: discovery, authorize (straight back), token (an ID token as `mode` says), JWKS.
 * Under /ui it is another upstream (issuer <issuer>/ui) that also has a userinfo endpoint (whose `sub` is
 * `userinfoSub` when set), advertises HS256 for ID tokens besides RS256, as some providers do, and sends
 * `iss` in its authorization responses (RFC 9207), as it advertises.
 */
export async function startFakeUpstream(clientSecret: string) {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'fake-key', alg: 'RS256', use: 'sig' };
  const state = { mode: 'good' as Mode, nonce: '', issuer: '', sub: 'fake-person-1', sid: 'fake-sid-1', authorizations: 0, tokens: 0, userinfos: 0, prompt: null as string | null, email: undefined as string | undefined, userinfoSub: undefined as string | undefined, maxAge: null as string | null, authTime: undefined as number | null | undefined, emailVerified: true as unknown, extraClaims: {} as JWTPayload, tokenRedirectUri: undefined as string | undefined, jwksDown: false, moreKeys: [] as JWK[] };
  const sign = (payload: JWTPayload, key = privateKey, typ?: string) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'fake-key', ...(typ && { typ }) }).sign(key);
  const signedAs = (payload: JWTPayload, mode: Mode) => {
    if (mode === 'alg-none') return Promise.resolve(`${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`);
    // Keyed with the client secret Latchkey holds at this upstream: no one else could make it, but it is no signature of the upstream's keys.
    if (mode === 'hs256') return new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(clientSecret));
    return sign(payload, mode === 'forged' ? other.privateKey : privateKey);
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', state.issuer);
    // A slow upstream: never answers (Latchkey's bound, upstreams.timeout, ends the wait).
    if (url.pathname.startsWith('/slow/')) return;
    const prefix = url.pathname.startsWith('/ui/') ? '/ui' : '';
    const path = url.pathname.slice(prefix.length);
    const issuer = `${state.issuer}${prefix}`;
    const json = (body: unknown, status = 200) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (path === '/.well-known/openid-configuration') {
      const discovery = upstreamDiscovery(issuer);
      return json(prefix ? { ...discovery, jwks_uri: `${state.issuer}/jwks`, userinfo_endpoint: `${issuer}/userinfo`, id_token_signing_alg_values_supported: ['RS256', 'HS256'], authorization_response_iss_parameter_supported: true } : discovery);
    }
    // jwksDown: a test plays an upstream whose key set cannot be read for a moment (a 503).
    // moreKeys: keys a test publishes besides the fake's own (a rotation).
    if (path === '/jwks') return state.jwksDown ? json({ error: 'temporarily_unavailable' }, 503) : json({ keys: [jwk, ...state.moreKeys] });
    if (prefix && path === '/userinfo') {
      state.userinfos += 1;
      // email-split: userinfo vouches for another address than the ID token names.
      const email = state.mode === 'email-split' ? `verified-${state.sub}@fake.example` : (state.email ?? `${state.sub}@fake.example`);
      return json({ sub: state.userinfoSub ?? state.sub, email, email_verified: true, name: 'Userinfo Person' });
    }
    if (path === '/authorize') {
      state.authorizations += 1;
      state.prompt = url.searchParams.get('prompt');
      state.maxAge = url.searchParams.get('max_age');
      state.nonce = url.searchParams.get('nonce') ?? '';
      const back = new URL(url.searchParams.get('redirect_uri')!);
      if (state.mode === 'deny') back.searchParams.set('error', 'access_denied');
      else back.searchParams.set('code', 'a-code');
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      // Under /ui the upstream identifies itself in its responses (RFC 9207), as it advertises.
      if (prefix) back.searchParams.set('iss', issuer);
      return res.writeHead(302, { location: back.href }).end();
    }
    if (path === '/token') {
      state.tokens += 1;
      // The redirect_uri the code is redeemed with (RFC 6749 §4.1.3: the authorization request's, identical).
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => (state.tokenRedirectUri = new URLSearchParams(body).get('redirect_uri') ?? undefined));
      const now = Math.floor(Date.now() / 1000);
      const { mode } = state;
      const audiences: Partial<Record<Mode, string | string[]>> = { audience: 'someone-else', 'several-audiences': ['latchkey', 'someone-else'], 'several-audiences-azp': ['latchkey', 'someone-else'], 'azp-other': ['latchkey', 'someone-else'] };
      const claims: JWTPayload = {
        iss: mode === 'issuer' ? 'https://attacker.example' : issuer,
        sub: state.sub,
        aud: audiences[mode] ?? 'latchkey',
        ...(mode === 'several-audiences-azp' && { azp: 'latchkey' }),
        ...(mode === 'azp-other' && { azp: 'someone-else' }),
        iat: mode === 'expired' ? now - 7200 : now,
        exp: mode === 'expired' ? now - 3600 : now + 300,
        nonce: mode === 'nonce' ? 'another-nonce' : state.nonce,
        sid: state.sid,
        // When the person signed in at the upstream: now, unless a test plays an upstream answering from an older session, or one that does not say (null).
        ...(state.authTime !== null && { auth_time: state.authTime ?? now }),
        email: state.email ?? `${state.sub}@fake.example`,
        // email-split: the ID token names an address without saying it is verified.
        // emailVerified: what the ID token says beside it (true unless a test plays an upstream saying it otherwise: "true", 1).
        ...(mode !== 'email-split' && { email_verified: state.emailVerified }),
        name: 'Fake Person',
        // extraClaims: more the ID token says (a test plays an upstream naming the address in another claim too).
        ...state.extraClaims,
      };
      void signedAs(claims, mode).then((idToken) => {
        json({ access_token: 'an-access-token', token_type: 'Bearer', expires_in: 60, id_token: idToken });
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  state.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    state,
    /** A logout token as the fake upstream (or a forger, with `key`) would send it. */
    logoutToken: (claims: JWTPayload, key = privateKey, typ = 'logout+jwt') =>
      sign({ iss: state.issuer, aud: 'latchkey', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 120, jti: crypto.randomUUID(), events: { ['http://schemas.openid.net/event/backchannel-logout']: {} }, ...claims }, key, typ),
    otherKey: other.privateKey,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/** The fake upstream, started and added to `server` as the upstream `fake` (scope `openid email profile`, no email linking, no end-session), as `latchkey upstreams add` would. */
export async function fakeUpstreamOf(server: TestServer, clientSecret: string): Promise<Awaited<ReturnType<typeof startFakeUpstream>>> {
  const fake = await startFakeUpstream(clientSecret);
  await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'fake', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret, scope: 'openid email profile', displayName: 'Fake', linkByEmail: false, endSession: false });
  return fake;
}

/**
 * A sign-in through the upstream `upstream` (the fake, answering as its person `sub`) to the app
 * `clientId` at `redirectUri`, in a fresh browser: the local account the link (upstream, sub) names
 * after it, if any.
 */
export async function linkedBySignIn(server: TestServer, fake: Awaited<ReturnType<typeof startFakeUpstream>>, { upstream, sub, clientId, redirectUri }: { upstream: string; sub: string; clientId: string; redirectUri: string }): Promise<string | undefined> {
  fake.state.mode = 'good';
  fake.state.sub = sub;
  const params = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream });
  await new Agent().follow(`${server.issuer}/auth?${params}`, {}, redirectUri);
  return (await new UpstreamLinks(server.kv, server.accounts).find(upstream, sub))?.sub;
}

/**
 * Another provider added under the id of the upstream `settings` (removed): the fake under another
 * issuer name (localhost for 127.0.0.1), whose person has another email; the account that `signIn`
 * (its person, whose sub is the same string as the removed provider's) then signs in to.
 */
export async function anotherProviderSignsIn(server: TestServer, fake: Awaited<ReturnType<typeof startFakeUpstream>>, settings: Omit<Parameters<Upstreams['add']>[0], 'issuer'>, signIn: () => Promise<string | undefined>): Promise<string | undefined> {
  fake.state.issuer = fake.state.issuer.replace('127.0.0.1', 'localhost');
  fake.state.email = 'another-person@swap.example';
  await new Upstreams(server.kv, server.config.keys.secrets).add({ ...settings, issuer: fake.state.issuer });
  return signIn();
}
