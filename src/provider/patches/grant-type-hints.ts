/**
 * The token endpoint's `unsupported_grant_type` says which grant was meant when the request's is a
 * slip of one Latchkey offers (`client-credentials`, `Authorization_Code`, `device_code` for RFC
 * 8628's URN), and that the resource owner password and implicit grants are not offered at all
 * (RFC 9700 §2.4, §2.1.2), where the engine said "unsupported grant_type requested" alone
 * (docs/security-passes.md, seventeenth passes, the newcomer's first hour). The request's value is
 * never repeated: RFC 6749 §5.2 keeps an error_description to printable ASCII without `"` and `\`,
 * and the offered names are.
 */
import type { Context, Middleware } from 'koa';
import { jsonError } from '../../http/errors.js';
import { scoped } from '../../http/layers.js';
import { grantTypeMeant } from '../../registration/policy.js';

/** A grant type as the retired grants' names are compared: lower case, hyphens for underscores. */
const loose = (grant: string) => grant.trim().toLowerCase().replace(/-/g, '_');

/** What an unsupported grant_type is told: the offered one it is a slip of, or why a grant RFC 9700 retired is not offered; undefined for anything else. */
export function grantTypeHint(asked: unknown, offered: readonly string[]): string | undefined {
  if (typeof asked !== 'string' || offered.includes(asked)) return undefined;
  const meant = grantTypeMeant(asked, offered);
  if (meant) return `unsupported grant_type requested; did you mean ${meant}? (grant types are written exactly: ${offered.join(', ')})`;
  if (loose(asked) === 'password') return 'the password grant is not offered (RFC 9700 section 2.4): people sign in through the authorization code flow with PKCE, devices and command-line tools through the device grant';
  if (loose(asked) === 'implicit') return 'the implicit grant is not offered (RFC 9700 section 2.1.2): use the authorization code flow with PKCE';
  return undefined;
}

/** The token endpoint's refusal of a grant type, with grantTypeHint's words. */
export function grantTypeHints(offered: readonly string[]): Middleware {
  const corrected = (ctx: Context): void => {
    const body = ctx.body as { error?: string } | undefined;
    if (body?.error !== 'unsupported_grant_type') return;
    const hint = grantTypeHint((ctx as { oidc?: { params?: { grant_type?: unknown } } }).oidc?.params?.grant_type, offered);
    if (hint) jsonError(ctx, ctx.status, 'unsupported_grant_type', hint);
  };
  return scoped({ routes: ['token'] }, function grantTypeHinted(ctx, next) {
    return next().then(() => corrected(ctx));
  });
}
