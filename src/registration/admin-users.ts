/**
 * The admin API's routes for people (src/accounts/):
 *
 *   GET    /admin/users                       every account (sub, username, disabled, claims)
 *   POST   /admin/users                       create one {username, password, claims…}
 *   POST   /admin/users/{username}/disable    disable it: its consents are forgotten, its grants
 *                                             revoked, its sessions end
 *   POST   /admin/users/{username}/enable     enable it again
 *   GET    /admin/users/{username}/mfa        their second factors (names and dates, no secrets)
 *   POST   /admin/users/{username}/mfa/reset  remove every second factor (e.g. a lost phone); the
 *                                             sessions signed in with one end, with their grants
 *                                             and the consents those were made under
 */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { AccountError, untilEndingPassed, type Accounts, type Claims, type SubjectEndings } from '../accounts/accounts.js';
import type { SecondFactors } from '../accounts/second-factors.js';
import type { OwedEndings } from '../accounts/owed-endings.js';
import type { AccountSessions, ForgetsConsentsGivenWith } from '../accounts/sessions.js';
import { jsonError } from '../http/errors.js';
import type { ForgetsConsents, GrantRevocation } from '../revocation/grants.js';

interface Options {
  readonly accounts: Accounts;
  /** Ends everything issued to a disabled person in one entry, before their grants one by one (revocation/list.ts). */
  readonly endings: SubjectEndings;
  /** Revokes what a disabled person held. */
  readonly grants: GrantRevocation;
  /** Forgets what a disabled person consented to: enabled again, each app asks again. */
  readonly consents: ForgetsConsents & ForgetsConsentsGivenWith;
  /** Ends a disabled person's sessions (with back-channel logout to their apps). */
  readonly sessions: AccountSessions;
  readonly secondFactors: SecondFactors;
  /** A reset ends the sessions the factors signed in, kept as owed until done (a reset cut off after its write is finished by the sweep). */
  readonly owed: OwedEndings;
  /** Logs operators' resets (the event, never a secret). */
  readonly onReset: (sub: string) => void;
  readonly read: Middleware;
  readonly write: Middleware;
  readonly json: Middleware;
}

const newUser = z.strictObject({
  username: z.string(),
  password: z.string(),
  name: z.string().max(256).optional(),
  given_name: z.string().max(256).optional(),
  family_name: z.string().max(256).optional(),
  email: z.email().optional(),
  email_verified: z.boolean().optional(),
  locale: z.string().max(35).optional(),
});

const publicAccount = ({ sub, username, disabled, claims }: { sub: string; username: string; disabled: boolean; claims: Claims }) => ({
  sub,
  username,
  disabled,
  ...claims,
});

export function userRoutes(router: Router, { accounts, endings, grants, consents, sessions, secondFactors, owed, onReset, read, write, json }: Options): void {
  router.get('/users', read, async (ctx) => {
    ctx.body = (await accounts.list()).map(publicAccount);
  });

  router.post('/users', write, json, async (ctx) => {
    const parsed = newUser.safeParse(ctx.request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return jsonError(ctx, 400, 'invalid_request', `${issue.path.join('.') || 'body'}: ${issue.message}`);
    }
    const { username, password, ...claims } = parsed.data;
    if (await accounts.findByUsername(username)) return jsonError(ctx, 409, 'conflict', `the username "${username}" is taken`);
    try {
      ctx.status = 201;
      ctx.body = publicAccount(await accounts.create(username, password, claims));
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      if (error.conflict) jsonError(ctx, 409, 'conflict', error.message);
      else jsonError(ctx, 400, 'invalid_request', error.message);
    }
  });

  for (const [action, disabled] of [['disable', true], ['enable', false]] as const) {
    router.post(`/users/:username/${action}`, write, async (ctx) => {
      try {
        // Disabling ends everything issued to the person up to now in its own write, one entry first
        // (accounts.ts endedAt): a failure of what follows leaves none of it working.
        const account = await accounts.setDisabled(ctx.params.username!, disabled, endings);
        if (disabled) {
          await grants.revokeAccountWithConsents(account.sub, consents);
          await sessions.endAll(account.sub);
          await untilEndingPassed(account);
        }
        ctx.body = publicAccount(account);
      } catch (error) {
        if (!(error instanceof AccountError)) throw error;
        jsonError(ctx, 404, 'not_found', error.message);
      }
    });
  }

  router.get('/users/:username/mfa', read, async (ctx) => {
    const account = await accounts.findByUsername(ctx.params.username!);
    if (!account) return jsonError(ctx, 404, 'not_found', `no user "${ctx.params.username}"`);
    ctx.body = { sub: account.sub, username: account.username, ...(await secondFactors.summary(account.sub)) };
  });

  router.post('/users/:username/mfa/reset', write, async (ctx) => {
    const account = await accounts.findByUsername(ctx.params.username!);
    if (!account) return jsonError(ctx, 404, 'not_found', `no user "${ctx.params.username}"`);
    // The factors may be on a lost or stolen device: the sessions they signed in end too, with their
    // grants and the consents given in them (whose grants may have ended already: signed out).
    const ending = { sub: account.sub, changed: { kind: 'second-factors' } } as const;
    const member = await owed.owe(ending);
    await secondFactors.reset(account.sub);
    await owed.finish(ending);
    await owed.drop(member);
    onReset(account.sub);
    ctx.body = { sub: account.sub, username: account.username, ...(await secondFactors.summary(account.sub)) };
  });
}
