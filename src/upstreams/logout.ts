/**
 * RP-initiated logout that also ends the upstream session: when a person signs out of Latchkey
 * everywhere and their session came from an upstream added with `endSession` that offers an
 * end_session_endpoint, the browser goes on to that endpoint (id_token_hint: the upstream's ID token
 * of this session), which sends it back to `<issuer>/upstream/<id>/signed-out`; from there it
 * continues to where Latchkey's own logout was going (the app's post_logout_redirect_uri). That
 * destination is kept server-side under a random handle (the `state` of the upstream request),
 * used once.
 *
 * Layout: upstream:logout:<handle> → the destination, with upstreams.stateTtl.
 */
import { randomBytes } from 'node:crypto';
import type { Kv } from '../store/kv.js';
import { upstreamLogoutKey } from '../store/keys.js';
import type { UpstreamClients } from './client.js';
import { UpstreamUnreadable, type Upstreams } from './registry.js';
import type { FederatedSessions } from './sessions.js';

const HANDLE = /^[\w-]{32,64}$/;

export class UpstreamLogout {
  constructor(
    private readonly kv: Kv,
    private readonly upstreams: Upstreams,
    private readonly clients: UpstreamClients,
    private readonly federated: FederatedSessions,
    private readonly issuer: string,
    private readonly ttl: number,
  ) {}

  /**
   * Where a browser signed out of the session `sessionUid` goes instead of `destination`: the
   * upstream's end_session_endpoint, or undefined to go on as before (no upstream, not configured,
   * no such endpoint, or the upstream unreachable: Latchkey's own logout is done either way).
   */
  async redirectFor(sessionUid: string, destination: string): Promise<string | undefined> {
    const record = await this.federated.find(sessionUid);
    if (!record) return undefined;
    await this.federated.forget(sessionUid);
    // An upstream whose secret cannot be opened (the sign-in page logs why) is not followed either.
    const upstream = await this.upstreams.find(record.upstream).catch((error: unknown) => {
      if (error instanceof UpstreamUnreadable) return undefined;
      throw error;
    });
    if (!upstream?.endSession) return undefined;
    const url = await this.clients.endSessionUrl(upstream, record.idToken).catch(() => undefined);
    if (!url) return undefined;
    const handle = randomBytes(24).toString('base64url');
    await this.kv.putRecord(upstreamLogoutKey(handle), destination, this.ttl);
    url.searchParams.set('post_logout_redirect_uri', `${this.issuer}/upstream/${upstream.id}/signed-out`);
    url.searchParams.set('state', handle);
    return url.href;
  }

  /** Where the browser goes on after the upstream's logout; undefined for an unknown or used handle. */
  async destination(handle: string): Promise<string | undefined> {
    if (!HANDLE.test(handle)) return undefined;
    if ((await this.kv.consumeRecord(upstreamLogoutKey(handle), Date.now() / 1000)) !== 'consumed') return undefined;
    return (await this.kv.getRecord(upstreamLogoutKey(handle)))?.payload;
  }
}
