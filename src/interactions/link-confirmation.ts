/**
 * A link to an existing account, offered by an upstream's sign-in and made only by the person
 * signing in to that account (accounts/links.ts signIn's `confirm`). The upstream's callback leaves
 * the offer in the interaction (whose cookie only this browser holds); the login page then asks the
 * person to sign in to the account, and the link is made when that sign-in completes, second factor
 * included (sign-in-result.ts), for that account only: signing in to another one links nothing.
 */
import type { Claims } from '../accounts/accounts.js';
import type { Interaction } from './interaction.js';

/** Where, in the interaction's result, the upstream's callback leaves the offer. */
const LINK_OFFERED = 'latchkey_link_offered';

export interface OfferedLink {
  readonly upstream: string;
  readonly upstreamSub: string;
  /** The upstream's issuer that vouched for upstreamSub (absent in offers made before it was kept). */
  readonly issuer?: string;
  /**
   * The addition of the upstream that offered it (upstreams/registry.ts Upstream.made; absent in
   * offers made before it was kept): the upstream removed and added again, even under the same
   * issuer, makes no link offered before (seventeenth passes, h2).
   */
  readonly made?: string;
  /** The local account the person must sign in to. */
  readonly sub: string;
  /** The upstream's display name, for the login page. */
  readonly displayName: string;
  /** The upstream's claims, taken once the link is made. */
  readonly claims: Claims;
}

export const offeredLinkResult = (offer: OfferedLink) => ({ [LINK_OFFERED]: offer });

/** The link this interaction offers, if any. */
export function offeredLink(interaction: Interaction): OfferedLink | undefined {
  return validOffer((interaction.result as Record<string, unknown> | undefined)?.[LINK_OFFERED]);
}

/** The offer as read back from a stored result (the second-factor step carries it), when well-formed. */
export function validOffer(value: unknown): OfferedLink | undefined {
  const offer = value as Partial<OfferedLink> | undefined;
  if (!offer || typeof offer.upstream !== 'string' || typeof offer.upstreamSub !== 'string' || typeof offer.sub !== 'string') return undefined;
  return { upstream: offer.upstream, upstreamSub: offer.upstreamSub, ...(typeof offer.issuer === 'string' && { issuer: offer.issuer }), ...(typeof offer.made === 'string' && { made: offer.made }), sub: offer.sub, displayName: String(offer.displayName ?? ''), claims: (offer.claims ?? {}) as Claims };
}

/** `{ link }` for a first factor of the account the interaction's offer names; nothing otherwise. */
export function linkFor(interaction: Interaction, sub: string): { link?: OfferedLink } {
  const offer = offeredLink(interaction);
  return offer?.sub === sub ? { link: offer } : {};
}

/** What the login page says once the upstream that offered the link was removed (added again or not) since: nothing will be linked. */
export const linkWithdrawnNotice = (offer: OfferedLink) =>
  `${offer.displayName} can no longer be linked here: it was removed or changed since it offered the link. Signing in to the account links nothing.`;

/** What the login page says while a link waits for the person to sign in to the account (upstream.ts upstreamChoices, while the offer stands). */
export const linkNotice = (offer: OfferedLink) =>
  `An account with your email address already exists here. Sign in to it (with its password, its passkey or the provider it already uses) to link it to ${offer.displayName}; from then on ${offer.displayName} signs you in to it.`;
