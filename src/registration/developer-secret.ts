/**
 * POST /developer/apps/:id/secret: a new secret for one of the person's apps, shown once. The old
 * one keeps working for the grace (so the app can be redeployed), unless the person says it leaked:
 * then it stops at once. It needs a recent sign-in (developer-page.ts recentlySubmitted).
 */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { respondWithError } from '../http/errors.js';
import { field } from '../http/signed-in-pages.js';
import { ClientError, type Clients } from './clients.js';
import type { DeveloperPage } from './developer-page.js';

interface Options {
  readonly issuer: string;
  readonly clients: Clients;
  readonly secretRotationGrace: number;
  /** Parses the page's forms. */
  readonly form: Middleware;
}

/** A grace period as a person reads it: "24 hours", "1 hour", "10 minutes", "30 seconds" (never "0 hours"). */
export function spokenDuration(seconds: number): string {
  const [amount, unit] = seconds >= 3600 ? [Math.round(seconds / 3600), 'hour'] : seconds >= 60 ? [Math.round(seconds / 60), 'minute'] : [seconds, 'second'];
  return `${amount} ${unit}${amount === 1 ? '' : 's'}`;
}

export function rotateSecretAction(router: Router, { page, recentlySubmitted, ownApp }: DeveloperPage, { issuer, clients, secretRotationGrace, form }: Options): void {
  router.post('/apps/:id/secret', form, async (ctx) => {
    // The new secret is shown on the page: only after a recent sign-in (a stolen session cookie would take it).
    const found = await recentlySubmitted(ctx);
    if (!found || !(await ownApp(ctx, found.who.accountId))) return;
    try {
      const leaked = field(found.body, 'leaked') === 'yes';
      const grace = leaked ? 0 : secretRotationGrace;
      const app = await clients.rotateSecret(ctx.params.id!, grace);
      page(ctx, 'developer-secret', { title: 'New secret', app, issuer, rotated: true, grace, graceSpoken: spokenDuration(grace) });
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      respondWithError(ctx, error.status, { error: error.error, error_description: error.description });
    }
  });
}
