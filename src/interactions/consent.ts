/**
 * The consent step: what the application asks for, in words, and the grant the person gives by
 * confirming it (remembered in provider/consents.ts, so that offline access needs no page later).
 */
import type { Context } from 'koa';
import { respondWithError } from '../http/errors.js';
import { render } from '../http/views.js';
import { predatesClient, type Consents } from '../provider/consents.js';
import { claimsBeyondScope, claimsOfScopes } from '../provider/scope-claims.js';
import { epochSeconds } from '../clock.js';
import type { Interaction, Interactions } from './interaction.js';

const SCOPE_WORDS: Record<string, string> = {
  openid: 'Know who you are (your account identifier)',
  profile: 'See your name and profile details',
  email: 'See your email address',
  offline_access: 'Keep access while you are not using it (offline access): it can act for you after you close it or sign out, until that access expires or is revoked',
};

/** What each scope lets an application do, in words (also on the device pages, interactions/device.ts). */
export function describeScopes(scopes: readonly string[]): string[] {
  return scopes.map((scope) => SCOPE_WORDS[scope] ?? `Use the "${scope}" permission`);
}

/**
 * The claims asked for by name (the `claims` parameter) that the client may have, and those it may
 * not: claims of scopes outside its `scope` metadata are never given (provider/id-token-claims.ts),
 * so the person is not asked for them and the grant records them as refused.
 */
async function askedClaims({ providers }: Interactions, interaction: Interaction): Promise<{ asked: string[]; beyond: string[] }> {
  const missing = ((interaction.prompt.details as { missingOIDCClaims?: string[] }).missingOIDCClaims) ?? [];
  if (!missing.length) return { asked: [], beyond: [] };
  const client = await providers.current.Client.find(String(interaction.params.client_id));
  const beyond = claimsBeyondScope(client);
  return { asked: missing.filter((claim) => !beyond.has(claim)), beyond: missing.filter((claim) => beyond.has(claim)) };
}

/**
 * Where, in the interaction's result, the consent page records the claims it listed (the engine
 * replaces the result when the interaction finishes). Which claims the client may have is read
 * from its registration, which can change while the page is open (the app's own RFC 7592 update,
 * an operator's): confirming gives only what the page listed, never a claim it left out then.
 */
const CLAIMS_LISTED = 'latchkey_claims_listed';

function claimsListed(interaction: Interaction): ReadonlySet<string> {
  const value = (interaction.result as Record<string, unknown> | undefined)?.[CLAIMS_LISTED];
  return new Set(Array.isArray(value) ? value.filter((claim): claim is string => typeof claim === 'string') : []);
}

/** Records `asked` as what the page lists (a page shown again records what it lists then). */
async function recordListed(interaction: Interaction, asked: readonly string[]): Promise<void> {
  const listed = claimsListed(interaction);
  if (listed.size === asked.length && asked.every((claim) => listed.has(claim))) return;
  interaction.result = { ...interaction.result, [CLAIMS_LISTED]: [...asked] };
  await interaction.persist();
}

/**
 * A request's permissions in words, as the consent page and the device confirmation list them: its
 * OpenID scopes, the claims it asks for by name, and each API's scopes named with the API.
 */
export function describePermissions(scopes: readonly string[], claims: readonly string[], resources: Record<string, readonly string[]>): string[] {
  const out = describeScopes(scopes);
  if (claims.length) out.push(`See these details about you: ${claims.join(', ')}`);
  for (const [resource, scopes] of Object.entries(resources)) {
    out.push(`Act on ${resource} with: ${scopes.join(', ') || 'basic access'}`);
  }
  return out;
}

function permissions(details: Record<string, unknown>, claims: readonly string[]): string[] {
  const out = describePermissions((details.missingOIDCScope as string[] | undefined) ?? [], claims, (details.missingResourceScopes as Record<string, string[]> | undefined) ?? {});
  return out.length ? out : ['Sign you in'];
}

const words = (scope: string | undefined) => (scope ?? '').split(' ').filter(Boolean);

/** The claim names of a `claims` parameter's userinfo and id_token members (none when it does not parse). */
export function claimsAskedByName(parameter: unknown): string[] {
  if (typeof parameter !== 'string') return [];
  try {
    const parsed = JSON.parse(parameter) as Record<string, unknown>;
    return [parsed.userinfo, parsed.id_token].flatMap((member) => (member && typeof member === 'object' && !Array.isArray(member) ? Object.keys(member) : []));
  } catch {
    return [];
  }
}

/**
 * What the page lists: what the app asks for that the person has not given it yet (the engine's
 * "missing" details, and the claims asked by name the client may have). When the app asks for
 * consent again (prompt=consent), the page lists also what the app asks for again from the earlier
 * consent, which confirming gives it: its OpenID scopes, each API's scopes and the claims it asks
 * for by name that the grant holds (left out before the eighteenth granting pass when nothing was
 * new, so the page read "Know who you are" while the tokens carried the email and name asked by
 * name; and, until the twelfth fresh-eyes passes, when something was new: the page listed the new
 * scope alone while the code's tokens carried the earlier ones beside it).
 */
async function listed({ providers }: Interactions, interaction: Interaction, asked: string[]): Promise<{ details: Record<string, unknown>; claims: string[] }> {
  const details = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  const missing = details.missingOIDCScope?.length || details.missingOIDCClaims?.length || Object.keys(details.missingResourceScopes ?? {}).length;
  // prompt=consent as the app sent it (the engine's consent_prompt reason); one added for offline
  // access alone asks only what is missing (patches/offline-access.ts skips that check).
  const again = !missing || interaction.prompt.reasons.includes('consent_prompt');
  const grant = again && interaction.grantId ? await providers.current.Grant.find(interaction.grantId) : undefined;
  if (!grant) return { details, claims: asked };
  const requested = new Set(words(interaction.params.scope as string | undefined));
  const askedAgain = (scope: string | undefined) => words(scope).filter((name) => requested.has(name));
  const resources = [interaction.params.resource].flat().filter((resource): resource is string => typeof resource === 'string');
  const union = (held: readonly string[], more: readonly string[] | undefined) => [...new Set([...held, ...(more ?? [])])];
  const openid = union(askedAgain(grant.getOIDCScope()), details.missingOIDCScope);
  // The claims by name the grant holds, as issuance gives them: within the client's scope, and not
  // those the scopes listed already say.
  const client = await providers.current.Client.find(String(interaction.params.client_id));
  const beyond = claimsBeyondScope(client);
  const byScope = claimsOfScopes(openid);
  const held = new Set(grant.getOIDCClaims());
  const claims = union([...new Set(claimsAskedByName(interaction.params.claims))].filter((claim) => held.has(claim) && !beyond.has(claim) && !byScope.has(claim)), asked);
  return {
    details: {
      missingOIDCScope: openid,
      missingResourceScopes: Object.fromEntries(
        [...new Set([...resources, ...Object.keys(details.missingResourceScopes ?? {})])]
          .map((resource) => [resource, union(askedAgain(grant.getResourceScope(resource)), details.missingResourceScopes?.[resource])])
          .filter(([, scopes]) => scopes!.length),
      ),
    },
    claims,
  };
}

/**
 * Whether the client the sign-in began for still takes its redirect URI. The resumed request is
 * checked against the client as registered now (provider/patches/current-registration.ts); this
 * step checks first, so that a consent given on the page of a client since deleted is neither shown
 * nor remembered for a client made again with its id (which asks everyone's consent anew).
 */
async function redirectStillAllowed({ providers }: Interactions, interaction: Interaction): Promise<boolean> {
  const client = await providers.current.Client.find(String(interaction.params.client_id));
  const redirectUri = interaction.params.redirect_uri;
  // A sign-in begun for a client deleted since, whose id was given again (registration/clients.ts
  // add), is not for this one: the person saw, or would see, the other's page.
  if (!client || predatesClient(client.clientIdIssuedAt, interaction.iat)) return false;
  // The device flow has no redirect URI.
  return redirectUri === undefined || (typeof redirectUri === 'string' && client.redirectUriAllowed(redirectUri));
}

/**
 * Whether an API the sign-in asks for was removed and added again under its identifier since the
 * interaction began (on the store's clock, as an API's `addedAt`): its consent page was the removed
 * API's, and what the person allows there is not for the new one, as a consent remembered for the
 * removed API is not (apis/apis.ts predates). Before the eleventh fresh-eyes passes of 2026-12-07 such
 * a page, confirmed, gave a code for the new API and remembered the consent for it.
 */
async function apisReplaced(consents: Consents, interaction: Interaction): Promise<boolean> {
  const resources = [interaction.params.resource].flat().filter((resource): resource is string => typeof resource === 'string');
  return resources.length > 0 && (await consents.apisReplacedSince(resources, interaction.iat));
}

const CLIENT_CHANGED = { error: 'invalid_request', error_description: 'the app changed since this sign-in began; start again from the app' };
/** An API the page asks for was removed and added again since the sign-in began. */
const API_CHANGED = { error: 'invalid_request', error_description: 'an API this app asks for changed since this sign-in began; start again from the app' };
/** The grant a consent page adds to ended, before or while the page was confirmed. */
const CONSENT_WITHDRAWN = { error: 'session_not_found', error_description: 'the earlier consent was withdrawn; start again' };
/** The person's or the app's access was ended (grants revoked, a disable) while a first consent was confirmed. */
const ACCESS_ENDED = { error: 'session_not_found', error_description: "this app's access was ended while this was confirmed; start again" };
/** The session the consent was given in ended while the page was confirmed. */
const SESSION_ENDED = { error: 'session_not_found', error_description: 'you were signed out while this was confirmed; start again' };

/** The consent page of an interaction waiting for consent. */
export async function showConsent(steps: Interactions, ctx: Context, interaction: Interaction, consents: Consents): Promise<void> {
  const { csrf, clientBranding, activeAccount } = steps;
  const account = await activeAccount(ctx, interaction);
  if (!account) return;
  if (!(await redirectStillAllowed(steps, interaction))) return respondWithError(ctx, 400, CLIENT_CHANGED);
  if (await apisReplaced(consents, interaction)) return respondWithError(ctx, 400, API_CHANGED);
  const { asked } = await askedClaims(steps, interaction);
  await recordListed(interaction, asked);
  const shown = await listed(steps, interaction, asked);
  ctx.type = 'html';
  ctx.body = render('consent', {
    title: 'Allow access',
    client: await clientBranding(ctx, interaction),
    permissions: permissions(shown.details, shown.claims),
    username: account.username,
    action: `/interaction/${interaction.uid}/confirm`,
    abort: `/interaction/${interaction.uid}/abort`,
    csrf: csrf.token(interaction.uid),
  });
}

/** POST /interaction/:uid/confirm */
export function confirmConsent(steps: Interactions, consents: Consents) {
  const { providers, submitted, activeAccount } = steps;
  return async (ctx: Context): Promise<void> => {
    const found = await submitted(ctx);
    if (!found) return;
    const { interaction } = found;
    if (interaction.prompt.name !== 'consent' || !interaction.session) {
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for consent' });
      return;
    }
    if (!(await activeAccount(ctx, interaction))) return;
    if (!(await redirectStillAllowed(steps, interaction))) return respondWithError(ctx, 400, CLIENT_CHANGED);
    if (await apisReplaced(consents, interaction)) return respondWithError(ctx, 400, API_CHANGED);
    const details = interaction.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const provider = providers.current;
    // A new grant is dated now, as the person decided, not when it is written: an ending whose cutoff
    // comes between (grants revoke, a disable) ends it, and the check after the writes finds it so.
    const grant = interaction.grantId
      ? await provider.Grant.find(interaction.grantId)
      : Object.assign(new provider.Grant({ accountId: interaction.session.accountId, clientId: String(interaction.params.client_id) }), { iat: epochSeconds() });
    // The grant the page added to was revoked since, or given before its person's or client's cutoff
    // (an operator's grants revoke that stopped half-way left it stored): what it held is not given
    // again, nor remembered as given now, by a page that asked only for what it lacked.
    if (!grant || (interaction.grantId && (await consents.grantEnded(grant, ctx)))) {
      respondWithError(ctx, 400, CONSENT_WITHDRAWN);
      return;
    }
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    // The claims the page listed that the client may still have; one it may have now but the page
    // did not list is neither given nor refused, so the engine asks for it on a page of its own.
    const claims = await askedClaims(steps, interaction);
    const listed = claimsListed(interaction);
    const given = claims.asked.filter((claim) => listed.has(claim));
    if (given.length) grant.addOIDCClaims(given);
    if (claims.beyond.length) grant.rejectOIDCClaims(claims.beyond);
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await consents.remember(grant, interaction.session.uid);
    // Checked again once written, from Redis: an ending that wrote its cutoff after the check above
    // (or, for a new grant, after the person decided) but before the writes (the grant revoked, the
    // consent forgotten, then written back by this request) would otherwise be undone: the revoked
    // grant stored again, or a new one made, its consent remembered as given now. An ending's
    // cutoff comes first (then the consents, then the grants): not seen here, it is later than
    // these writes, and what it forgets and revokes after includes them.
    // The grant's own ending too (fresh: an ending with no cutoff, an app's RFC 7009 revocation of
    // one of its tokens, a refresh token's reuse, a sign-out), marked before its record is deleted,
    // however long before this request began (until the twenty-second granting pass told endings
    // apart by time, which missed an ending stalled across the request's start). A revocation of the
    // grant's tokens alone (a sign-out keeping offline access) is no ending: the page adds to the grant.
    const [grantEnded, sessionLive, apiReplaced] = await Promise.all([
      consents.grantEnded(grant, ctx, true),
      // And the session the consent is given in, ended meanwhile by an ending with no cutoff that
      // forgets consents (a password change signing the other sessions out, a credential removed):
      // it forgot them before it ended the session, so a consent written after it forgot is taken
      // here, once the session is seen ended; or, seen live, by its next forgetting, which comes
      // after the session's end (accounts/sessions.ts endSignedInWith, the password section).
      provider.Session.findByUid(interaction.session.uid),
      // And an API the page asked for, removed and added again meanwhile: what was written is the new one's.
      apisReplaced(consents, interaction),
    ]);
    if (apiReplaced) {
      if (!interaction.grantId) await grant.destroy();
      await consents.forget(grant.accountId!, grant.clientId!);
      respondWithError(ctx, 400, API_CHANGED);
      return;
    }
    if (grantEnded || !sessionLive) {
      // A grant this page made has nothing else; one it added to is the ending's to decide
      // (a plain sign-out keeps offline access), but what it ended is not taken up again.
      if (grantEnded || !interaction.grantId) await grant.destroy();
      await consents.forget(grant.accountId!, grant.clientId!);
      respondWithError(ctx, 400, !grantEnded ? SESSION_ENDED : interaction.grantId ? CONSENT_WITHDRAWN : ACCESS_ENDED);
      return;
    }
    await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.respond = false;
  };
}
