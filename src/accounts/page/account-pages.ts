/**
 * The account page (/account): each person's own page, signed in with Latchkey itself. This module
 * wires it: its own first-party client and sign-in, the frame (account-page.ts), and the sections,
 * each a module that adds itself to the frame: the page's own (password-section.ts,
 * apps-section.ts, sessions-section.ts), then those of other modules (`extensions`; see
 * AccountPage in account-page.ts).
 */
import type { Middleware } from 'koa';
import { FIRST_PARTY_CLIENT_IDS, FIRST_PARTY_PAGES, firstPartySignIn } from '../../http/first-party-sign-in.js';
import { underPrefix } from '../../http/under-prefix.js';
import { routesWithAllow } from '../../http/method-not-allowed.js';
import type { Logger } from '../../ops/logger.js';
import type { ProviderInService } from '../../provider-in-service.js';
import type { GrantRevocation } from '../../revocation/grants.js';
import type { Accounts } from '../accounts.js';
import type { SessionActivity } from '../session-activity.js';
import type { AccountSessions } from '../sessions.js';
import type { LoginThrottle } from '../throttle.js';
import { ACCOUNT_PATH, accountPage, type AccountPage, type Person } from './account-page.js';
import { appsSection, type RememberedConsents } from './apps-section.js';
import type { OwedEndings } from '../owed-endings.js';
import { passwordSection } from './password-section.js';
import { sessionsSection } from './sessions-section.js';

const ACCOUNT_PAGE = FIRST_PARTY_PAGES.account;
export const ACCOUNT_CLIENT_ID = ACCOUNT_PAGE.clientId;

export { accountClient } from './account-client.js';

/** A module that adds a section and its actions to the page (passkeys, authenticator app, …). */
export type AccountPageExtension = (page: AccountPage) => void;

interface Options {
  readonly issuer: string;
  /** The provider in service, read per request (it is replaced when the key ring changes). */
  readonly providers: ProviderInService;
  readonly accounts: Accounts;
  /** Re-checks the session's person on every request; lists and signs out their sessions. */
  readonly sessions: AccountSessions;
  readonly csrfKey: string;
  /** Sections of other modules, added after the page's own. */
  readonly extensions?: readonly AccountPageExtension[];
  /** The sign-in brute-force throttle, which wrong current passwords count against too. */
  readonly throttle: LoginThrottle;
  /** Revokes what a person withdraws or signs out. */
  readonly grants: GrantRevocation;
  readonly consents: RememberedConsents;
  readonly activity: SessionActivity;
  /** What a removed credential or a changed password ends, kept as owed until done. */
  readonly owed: OwedEndings;
  readonly logger: Logger;
  /** accounts.reauthenticateAfter: seconds a sign-in counts as recent for changing credentials. */
  readonly reauthenticateAfter: number;
  /** Whether the person has a second factor this session did not add: credentials change only from a session as strong. */
  readonly secondFactorBeyond?: (sub: string, sessionUid: string) => Promise<boolean>;
}

export function accountPages(options: Options): Middleware {
  const { issuer, providers, accounts, sessions, csrfKey, extensions = [], throttle, grants, consents, activity, owed, logger, reauthenticateAfter, secondFactorBeyond } = options;
  const page = accountPage({ providers, sessions, csrfKey, reauthenticateAfter, owed, ...(secondFactorBeyond && { secondFactorBeyond }) });
  firstPartySignIn(page.router, issuer, ACCOUNT_PAGE);
  const own = [
    passwordSection({ accounts, throttle, owed, logger }),
    appsSection({ providers, grants, accounts, consents, firstParty: FIRST_PARTY_CLIENT_IDS, logger }),
    sessionsSection({ providers, sessions, activity, grants, logger }),
  ];
  for (const extend of [...own, ...extensions]) extend(page);
  page.router.get('/', page.personRequired, async (ctx) => page.show(ctx, ctx.state.person as Person));
  return underPrefix(ACCOUNT_PATH, routesWithAllow(page.router));
}
