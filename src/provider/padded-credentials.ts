/**
 * A client_id or client secret copied with a space or line break at an end (a newcomer's slip:
 * `curl -u "demo:$SECRET "`, a secret read from a file with its newline) fails client
 * authentication with only "client authentication failed". No client_id or secret written here has
 * one (registration/policy.ts refuses it), so a failed authentication that sent one is told so.
 * Read from the request alone, whether the client exists or not: the hint says nothing of which
 * clients exist or what their secrets are.
 */
import type { Context } from 'koa';
import { PADDED } from '../registration/policy.js';

/** The credentials of a Basic header, decoded as oidc-provider decodes them (lib/shared/client_auth.js), if it is one. */
function basicCredentials(header: string): { id: string; secret: string } | undefined {
  const parts = header.split(' ');
  if (parts.length !== 2 || parts[0]!.toLowerCase() !== 'basic') return undefined;
  const basic = Buffer.from(parts[1]!, 'base64').toString('utf8');
  const colon = basic.indexOf(':');
  if (colon < 0) return undefined;
  try {
    const decode = (token: string) => decodeURIComponent(token.replace(/\+/g, '%20'));
    return { id: decode(basic.slice(0, colon)), secret: decode(basic.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

/** What to add to a failed client authentication's description when it sent a padded client_id or secret. */
export function paddedCredentialHint(ctx: Context): string | undefined {
  const params = (ctx as { oidc?: { params?: Record<string, unknown> } }).oidc?.params;
  const basic = basicCredentials(ctx.get('Authorization'));
  const sent = (name: 'client_id' | 'client_secret', fromBasic: string | undefined) =>
    [params?.[name], fromBasic].some((value) => typeof value === 'string' && PADDED.test(value));
  const which = sent('client_secret', basic?.secret) ? 'client secret' : sent('client_id', basic?.id) ? 'client_id' : undefined;
  return which && `the ${which} begins or ends with a space or line break (copied with one?), which none here has`;
}
