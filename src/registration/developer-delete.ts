/** POST /developer/apps/:id/delete: deletes one of the person's apps. */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Clients } from './clients.js';
import type { DeveloperPage } from './developer-page.js';

export function deleteAppAction(router: Router, { submitted, ownApp }: DeveloperPage, { clients, form }: { clients: Clients; form: Middleware }): void {
  router.post('/apps/:id/delete', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found || !(await ownApp(ctx, found.who.accountId))) return;
    // Ends everything the app held (the store's client removal hook, see provider.ts).
    await clients.remove(ctx.params.id!);
    ctx.status = 303;
    ctx.redirect('/developer');
  });
}
