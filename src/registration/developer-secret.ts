/** POST /developer/apps/:id/secret: a new secret for one of the person's apps, shown once. */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { respondWithError } from '../http/errors.js';
import { ClientError, type Clients } from './clients.js';
import type { DeveloperPage } from './developer-page.js';

interface Options {
  readonly issuer: string;
  readonly clients: Clients;
  readonly secretRotationGrace: number;
  /** Parses the page's forms. */
  readonly form: Middleware;
}

export function rotateSecretAction(router: Router, { page, submitted, ownApp }: DeveloperPage, { issuer, clients, secretRotationGrace, form }: Options): void {
  router.post('/apps/:id/secret', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found || !(await ownApp(ctx, found.who.accountId))) return;
    try {
      const app = await clients.rotateSecret(ctx.params.id!, secretRotationGrace);
      page(ctx, 'developer-secret', { title: 'New secret', app, issuer, rotated: true, graceHours: Math.round(secretRotationGrace / 3600) });
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      respondWithError(ctx, error.status, { error: error.error, error_description: error.description });
    }
  });
}
