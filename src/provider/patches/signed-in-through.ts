/**
 * Which upstream provider signed in the sign-in a code, device code or refresh token came from: the
 * ID tokens made from it name that one (`idp`, beside the `amr` ["fed"] and `auth_time` it carries).
 *
 * The `idp` claim was read from the session's record (upstreams/sessions.ts) when each ID token was
 * made, and that record says what the session last signed in through. A person signed in to an app
 * through one upstream (a social login), and later in the same browser through another linked to
 * the same account (the company's, for another app or a prompt=login): the app's refresh, and a code
 * of the first sign-in redeemed after, got ID tokens naming the company's upstream, with the social
 * sign-in's `amr` and `auth_time` (red team's twentieth granting pass, performed). An app that lets
 * in whom its company's provider signed in took a social login for it.
 *
 * What it changes in oidc-provider: AuthorizationCode, DeviceCode and RefreshToken keep one more
 * property, `idp` (IN_PAYLOAD), set when first saved from a sign-in through an upstream (`amr`
 * "fed"): a code or an approved device code from the sign-in of its request (the interaction's
 * result, which the session's record takes only after the engine answered), else from the session's
 * record (a session reused, whose `amr` is its last sign-in's); a refresh token from what it is made
 * from. One stored before this change has none: upstreamOf then reads the session's record, as before.
 */
import { Provider, type KoaContextWithOIDC } from 'oidc-provider';
import type { FederatedSessions } from '../../upstreams/sessions.js';
import { carriedAlongRefreshChain } from './carried-along-refresh-chain.js';

type Marked = { idp?: unknown; amr?: unknown; sessionUid?: unknown };

const federatedSignIn = (token: Marked): boolean => Array.isArray(token.amr) && token.amr.includes('fed');

/** The upstream a code or device code's sign-in went through: this request's sign-in, else the session's. */
async function signedInThrough(federated: FederatedSessions, token: Marked): Promise<string | undefined> {
  const oidc = (Provider.ctx as KoaContextWithOIDC | undefined)?.oidc as { result?: { login?: unknown; upstream?: { upstream?: unknown } } } | undefined;
  if (oidc?.result?.login) return typeof oidc.result.upstream?.upstream === 'string' ? oidc.result.upstream.upstream : undefined;
  return typeof token.sessionUid === 'string' ? (await federated.find(token.sessionUid))?.upstream : undefined;
}

export function signedInThroughKept(provider: Provider, federated: FederatedSessions): void {
  carriedAlongRefreshChain(provider, 'idp', {
    when: (token) => typeof token.accountId === 'string' && federatedSignIn(token),
    issued: (token) => signedInThrough(federated, token),
    first: ({ AuthorizationCode, DeviceCode }) => (AuthorizationCode ?? DeviceCode)?.idp,
  });
}

/** The upstream an ID token made from `token` names: the one kept with it, else (stored before it was kept) the session's. */
export async function upstreamOf(federated: FederatedSessions, token: Marked | undefined): Promise<string | undefined> {
  if (!token || !federatedSignIn(token)) return undefined;
  if (typeof token.idp === 'string') return token.idp;
  return typeof token.sessionUid === 'string' ? (await federated.find(token.sessionUid))?.upstream : undefined;
}
