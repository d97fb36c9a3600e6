/**
 * A sign-in resumes once: one interaction gives at most one code (or one device approval), however
 * many requests resume it at once (its resume URL replayed, a retry, at several instances).
 *
 * oidc-provider's resume (and device_resume) reads the interaction, then destroys it and goes on to
 * answer: two resumes that both read it before either destroyed it each went on, and one sign-in
 * answered two codes (the house rule: single-use artifacts are consumed atomically). Here, on those
 * routes, the interaction is taken by the store (store/adapter.ts take: consumed and deleted in one
 * round trip, as the deletion alone was) and a resume that did not take it stops with the engine's
 * own SessionNotFound ("interaction session not found", an error page) before anything is issued.
 * Relies on: resume.js calling interactionSession.destroy() before it processes the request, and
 * the route names `resume` and `device_resume`. Pinned by test/e2e/session-endings.test.ts ("one
 * sign-in resumed at two instances at once…").
 */
import { errors, Provider } from 'oidc-provider';

const RESUMES = new Set(['resume', 'device_resume']);

interface Taking {
  readonly jti: string;
  readonly adapter: { take?(id: string): Promise<boolean> };
  emit(event: string): void;
}

/**
 * The refusal of a resume that is not the interaction's to take (another took it, or another browser
 * asks: browser-bound-resume.ts). On device_resume the engine saves any error onto the interaction's
 * device code (lib/actions/authorization/device.js deviceUserFlowErrors, which finds the code through
 * the Interaction entity resume.js set), so a second resume of one approval at the same moment, such
 * as a browser's retry, wrote its refusal over the device code while the first approved it: the
 * person was told the code was used elsewhere, and the device got no tokens (fifteenth fresh-eyes
 * pass at the new kinds of clients). The request is refused as before, its entity dropped first: it
 * changes nothing of the flow it is not.
 */
export function notThisResume(description: string): InstanceType<typeof errors.SessionNotFound> {
  const entities = (Provider.ctx as { oidc?: { entities?: Record<string, unknown> } } | undefined)?.oidc?.entities;
  if (entities) delete entities.Interaction;
  return new errors.SessionNotFound(description);
}

export function singleUseResume(provider: Provider): void {
  const prototype = provider.Interaction.prototype as unknown as { destroy(this: Taking): Promise<void> };
  const destroy = prototype.destroy;
  prototype.destroy = async function (this: Taking) {
    const route = (Provider.ctx as { oidc?: { route?: string } } | undefined)?.oidc?.route;
    if (route === undefined || !RESUMES.has(route) || !this.adapter.take) return destroy.call(this);
    if (!(await this.adapter.take(this.jti))) throw notThisResume('interaction session not found');
    this.emit('destroyed');
  };
}
