/**
 * An initial access token registers one client (`latchkey registration token create`, README):
 * an operator who hands one to a developer hands out one registration, not as many as fit in its
 * lifetime. oidc-provider accepts an initial access token for every registration until it
 * expires, so this middleware (installed with provider.use) spends it on the first successful one.
 *
 * The token is claimed in the store before the registration runs (set-if-absent, so of concurrent
 * registrations with one token exactly one proceeds), taken once the registration succeeded, and
 * released if it failed: a developer whose metadata was refused may correct it and try again. A
 * token revoked while its registration was in flight (checked by the engine, then revoked before
 * the client was written back) is no longer there to take: the client just written is removed and
 * the registration answered 401 invalid_token, its credentials never shown.
 *
 * A registration answered 503 at the token's spend (Redis paused past the command timeout: the
 * bounded consumption, run late, takes nothing) had made its client, and the claim stayed: the
 * developer's retry was refused as "already used", and once the claim expired the token registered
 * a second client, the first one's secret shown to nobody (the fourth blips pass left it; the
 * seventh fixed it). So the claim names the client as it is about to be written
 * (CLIENT_ABOUT_TO_BE_WRITTEN, called by patches/registration-token-first.ts) and lives as long as
 * the token: a claim naming a client while the token is not spent is a registration that stopped
 * between the client's write and the spend (or one still finishing, which ABANDONED_AFTER_TIMEOUTS
 * command timeouts outlast: every write it makes after naming the client is bounded, or harmless).
 * A retry that finds one removes that client and registers anew; one that comes sooner is answered
 * 503 with Retry-After, as the registration it waits on (and, within a command timeout of the
 * naming, 401 "already used", as registrations sent at once: the registration named it just now). A spend run in time whose answer was lost
 * (the connection cut after it) spent the token on a client nobody was shown, as any
 * acknowledgement lost: the retry is refused (401), the client listed for the operator to remove.
 *
 * An operator lists the outstanding ones (`latchkey registration token list`: each one's id and
 * expiry, never its value) and revokes one (`registration token revoke <token-or-id>`, a leaked
 * token): its record goes, so /reg answers it 401 invalid_token, as it does an unknown one. The id
 * is a digest of the token (initialAccessTokenId), printed when the token is made: it names the
 * token without being it.
 */
import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import { bearerToken } from '../http/bearer.js';
import { jsonError } from '../http/errors.js';
import type { Kv } from '../store/kv.js';
import { initialAccessTokenClaimKey } from '../store/keys.js';
import { scoped } from '../http/layers.js';
import { AdapterIndexes } from '../store/adapter-indexes.js';
import { storeMilliseconds } from '../clock.js';
import { StoreBehind } from '../store/outage.js';

/** Seconds a claim outlives a registration that never finished (a crash mid-request). */
const CLAIM_TTL = 60;
/**
 * Command timeouts after a claim named its client by which the registration that wrote it has
 * finished, one way or the other: the claim's write, the client's index and record (bounded), the
 * token's spend (bounded), each answered or timed out within one; one more for what runs between.
 */
const ABANDONED_AFTER_TIMEOUTS = 5;

/**
 * On the koa context of a registration with an initial access token: what the store adapter's
 * client write calls (patches/registration-token-first.ts) with the client's id just before the
 * client is written, so that the claim names it.
 */
export const CLIENT_ABOUT_TO_BE_WRITTEN = Symbol('the client of a registration with an initial access token is about to be written');

/** A claim's value: when it was made or last named its client (store milliseconds), and the client. */
const claimOf = (value: string): { at: number; clientId?: string } => {
  const [at = '0', clientId] = value.split(' ');
  return { at: Number(at), clientId };
};

export function singleUseInitialAccessTokens(provider: Provider, kv: Kv, realm: string, commandTimeout: number): Middleware {
  const path = provider.pathFor('registration');
  const alreadyUsed = (ctx: Parameters<Middleware>[0]) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('WWW-Authenticate', `Bearer realm="${realm}", error="invalid_token", error_description="initial access token already used"`);
    jsonError(ctx, 401, 'invalid_token', 'this initial access token has already been used');
  };
  return scoped({ paths: [path] }, async function initialAccessTokens(ctx, next) {
    if (ctx.method !== 'POST' || ctx.path !== path) return next();
    const token = bearerToken(ctx);
    if (!token) return next(); // oidc-provider answers the missing token
    const claim = initialAccessTokenClaimKey(token);
    const made = String(Math.round(storeMilliseconds()));
    if (!(await kv.set(claim, made, { ttl: CLAIM_TTL, onlyIfAbsent: true }))) {
      const held = await kv.get(claim);
      const stopped = held === undefined ? undefined : claimOf(held);
      // A claim that names no client: a registration in flight (or done and spent). One that named
      // it less than a command timeout ago is in flight too (one stopped by a timeout answered no
      // sooner): registrations sent at once are answered as they were, one registered, the rest 401.
      if (stopped?.clientId === undefined || storeMilliseconds() - stopped.at < commandTimeout) return alreadyUsed(ctx);
      const unspent = await provider.InitialAccessToken.find(token);
      if (!unspent || (unspent as { consumed?: unknown }).consumed) return alreadyUsed(ctx);
      if (storeMilliseconds() - stopped.at < ABANDONED_AFTER_TIMEOUTS * commandTimeout) throw new StoreBehind('a registration with this initial access token is still finishing');
      // It stopped between its client's write and the token's spend: nobody was shown that client.
      await clientsOf(provider).destroy(stopped.clientId);
      if (!(await kv.compareAndSet(claim, held, made, CLAIM_TTL))) return alreadyUsed(ctx);
    }
    const state = ctx.state as Record<symbol, (clientId: string) => Promise<void>>;
    state[CLIENT_ABOUT_TO_BE_WRITTEN] = async (clientId) => {
      const expiresAt = (ctx.oidc?.entities as { InitialAccessToken?: { exp?: number } } | undefined)?.InitialAccessToken?.exp;
      const ttl = Math.max(CLAIM_TTL, expiresAt === undefined ? 0 : expiresAt - Math.floor(storeMilliseconds() / 1000));
      await kv.set(claim, `${Math.round(storeMilliseconds())} ${clientId}`, { ttl });
    };
    let registered = false;
    try {
      await next();
      registered = ctx.status === 201;
      // Spent by taking it: a token revoked (or expired) since the engine checked it registers
      // nothing. The client written meanwhile goes before its credentials are answered.
      if (registered && !(await spend(provider, token))) {
        const { client_id: clientId } = (ctx.body ?? {}) as { client_id?: unknown };
        if (typeof clientId === 'string') await clientsOf(provider).destroy(clientId);
        ctx.set('Cache-Control', 'no-store');
        ctx.set('WWW-Authenticate', `Bearer realm="${realm}", error="invalid_token", error_description="initial access token revoked"`);
        jsonError(ctx, 401, 'invalid_token', 'this initial access token was revoked (or expired) before the registration was complete');
      }
    } finally {
      // A registration stopped after naming its client keeps the claim (above); one that failed before, not.
      if (!registered) await kv.del([claim]);
    }
  });
}

interface Takes {
  take(id: string): Promise<boolean>;
  destroy(id: string): Promise<void>;
}

const clientsOf = (provider: Provider) => (provider.Client as unknown as { adapter: Takes }).adapter;

/**
 * Takes the initial access token (consumed and deleted in one round trip, store/adapter.ts take)
 * and says whether it was still there: an operator's revocation landing between the engine's check
 * of the token and the registration's end wins, as it would a moment later.
 */
async function spend(provider: Provider, token: string): Promise<boolean> {
  const adapter = (provider.InitialAccessToken as unknown as { adapter: Takes }).adapter;
  const taken = await adapter.take(token);
  await adapter.destroy(token); // its place in the index of outstanding tokens
  return taken;
}

/** Nothing to revoke: one line, exit 1 (cli.ts). */
export class InitialAccessTokenError extends Error {
  override name = 'InitialAccessTokenError';
}

/** What names an initial access token in lists and revocations: a digest of it, never the token. */
export function initialAccessTokenId(token: string): string {
  return `iat_${createHash('sha256').update(token).digest('base64url').slice(0, 22)}`;
}

/** An outstanding initial access token, as an operator sees it. */
export interface OutstandingInitialAccessToken {
  readonly id: string;
  /** Epoch seconds. */
  readonly expires_at: number;
}

/**
 * The initial access tokens that may still register a client (made since the store's index of
 * them exists), soonest to expire first. Ids of tokens expired or used are dropped from the index.
 */
export async function outstandingInitialAccessTokens(provider: Provider, kv: Kv): Promise<OutstandingInitialAccessToken[]> {
  const index = new AdapterIndexes(kv);
  const entries = await index.initialAccessTokenIds();
  // An entry is a token's digest (the store holds no token), or a token kept by its value before.
  const found = await Promise.all(entries.map(async (entry) => (isDigest(entry) ? index.initialAccessTokenByDigest(entry) : provider.InitialAccessToken.find(entry))));
  await Promise.all(entries.map((entry, at) => (live(found[at]) ? undefined : index.forgetInitialAccessToken(entry))));
  return entries
    .flatMap((entry, at) => (live(found[at]) ? [{ id: idOfEntry(entry), expires_at: found[at]!.exp ?? 0 }] : []))
    .sort((a, b) => a.expires_at - b.expires_at);
}

/** A token not yet expired (a record outlives its token by the store's grace). */
const live = (payload: { exp?: number } | undefined) => payload !== undefined && (payload.exp === undefined || payload.exp > Math.floor(Date.now() / 1000));
const isDigest = (entry: string) => entry.startsWith('sha256:');
/** The id an operator sees (initialAccessTokenId) of an index entry: its digest's first characters, or the digest of a token kept by value. */
const idOfEntry = (entry: string) => (isDigest(entry) ? `iat_${entry.slice('sha256:'.length, 'sha256:'.length + 22)}` : initialAccessTokenId(entry));

/**
 * Revokes the initial access token `tokenOrId` (the token itself, or its id): it registers nothing
 * from now on. Returns its id; InitialAccessTokenError when no outstanding token is that.
 */
export async function revokeInitialAccessToken(provider: Provider, kv: Kv, tokenOrId: string): Promise<string> {
  const token = tokenOrId.startsWith('iat_') ? undefined : await provider.InitialAccessToken.find(tokenOrId);
  if (token) {
    await token.destroy();
    return initialAccessTokenId(token.jti);
  }
  const index = new AdapterIndexes(kv);
  const entry = (await index.initialAccessTokenIds()).find((candidate) => idOfEntry(candidate) === tokenOrId);
  if (entry && isDigest(entry) && live(await index.initialAccessTokenByDigest(entry))) {
    await index.endInitialAccessTokenByDigest(entry);
    return tokenOrId;
  }
  const legacy = entry && !isDigest(entry) ? await provider.InitialAccessToken.find(entry) : undefined;
  if (!legacy) throw new InitialAccessTokenError('no outstanding initial access token with that value or id (it may have expired or been used)');
  await legacy.destroy();
  return initialAccessTokenId(legacy.jti);
}
