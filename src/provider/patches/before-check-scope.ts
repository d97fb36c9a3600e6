/**
 * Puts a step into an authorization endpoint's steps (`/auth`, `/request`, `/device/auth`) just
 * before the engine's scope check: offline-access.ts and scope-required.ts each put one there
 * (and offline-access.ts one after `/auth`'s loadGrant).
 * The engine builds each endpoint's steps once and every Provider spreads them into its routes when
 * made, so a patch calls this as its module loads (provider.ts imports it before making one); it
 * fails at start-up if the engine no longer has that step.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';

export type Step = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void> | void;

/** `step` before checkScope in `endpoint`'s steps, once; `patch`: the file to review when the engine changed. */
export function beforeCheckScope(endpoint: string, step: Step, patch: string): void {
  const steps = authorizationSteps(endpoint) as Step[];
  if (steps.includes(step)) return;
  const at = steps.findIndex((each) => each.name === 'checkScope');
  if (at < 0) throw new Error(`oidc-provider's ${endpoint} steps have no checkScope: review src/provider/patches/${patch}`);
  steps.splice(at, 0, step);
}

/** `step` just after loadGrant in `/auth`'s steps, once (offline-access.ts), failing at start-up as beforeCheckScope does. */
export function afterLoadGrant(step: Step, patch: string): void {
  const steps = authorizationSteps('authorization') as Step[];
  if (steps.includes(step)) return;
  const at = steps.findIndex((each) => each.name === 'loadGrant');
  if (at < 0) throw new Error(`oidc-provider's authorization steps have no loadGrant: review src/provider/patches/${patch}`);
  steps.splice(at + 1, 0, step);
}
