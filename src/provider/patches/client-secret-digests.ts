/**
 * A stored client's secret is kept as its SHA-256 digest (store/adapter.ts: client_secret_digest),
 * and the engine is given, as the client's client_secret, a handle naming that digest within this
 * process only. This patch makes the engine work with it:
 *
 * - Client authentication (client_secret_basic, client_secret_post: lib/shared/client_auth.js through
 *   Client.prototype.compareClientSecret): for a handle, the presented secret's digest is compared
 *   with the handle's digest in constant time. Neither the handle nor a digest read from a copy of the
 *   store is a secret here: what is presented is digested first. A client written by the release
 *   before (its secret in clear) is compared as the engine compares it.
 * - RFC 7592 update (registration.js equalChecks): a client_secret sent back in the body (RFC 7592
 *   §2.2: the client MUST send it if it has one, the server MUST check it) is compared by its digest;
 *   a matching one is handed to the engine's check as the handle, anything else fails it
 *   (invalid_request, as before).
 * - RFC 7592 read and update responses (clientReadResponse, clientUpdateResponse): the handle is not
 *   a secret to hand out, and the secret is not known any more; the responses leave client_secret
 *   out (RFC 7591 §3.2.1 makes it OPTIONAL; RFC 7592 §2.1/§2.2 let the response's values differ from
 *   the registration's). client_secret_expires_at stays. The secret is shown once, in the answer
 *   that hands it out (registration, rotation).
 *
 * Relies on: compareClientSecret, the step names equalChecks, clientReadResponse and
 * clientUpdateResponse in lib/actions/registration.js, and the update reading ctx.oidc.body and
 * ctx.oidc.client.clientSecret in equalChecks. Pinned in test/unit/provider-patches.test.ts.
 */
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import { get as readSteps, put as updateSteps } from 'oidc-provider/lib/actions/registration.js';
import { digestOf, isSecretHandle, secretDigestOf } from '../../store/record-keys.js';
import { sameSecret } from './previous-secrets.js';

type Step = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;

/** Whether `presented` is the secret whose digest `handle` names (constant time: the digests have one length). */
export function matchesSecretHandle(handle: string, presented: string): boolean {
  return sameSecret(secretDigestOf(handle), digestOf(presented));
}

function sendBack(step: Step): Step {
  return async function equalChecks(ctx, next) {
    const body = ctx.oidc.body as { client_secret?: unknown } | undefined;
    const secret = ctx.oidc.client?.clientSecret;
    if (body && 'client_secret' in body && isSecretHandle(secret)) {
      body.client_secret = typeof body.client_secret === 'string' && matchesSecretHandle(secret, body.client_secret) ? secret : '';
    }
    return step(ctx, next);
  };
}

function withoutHandle(step: Step): Step {
  const named = {
    async [step.name](ctx: KoaContextWithOIDC, next: () => Promise<void>) {
      await step(ctx, next);
      const body = ctx.body as { client_secret?: unknown } | undefined;
      if (body && typeof body === 'object' && isSecretHandle(body.client_secret)) delete body.client_secret;
    },
  };
  return named[step.name]!;
}

/** Replaces the engine's step `name` in `steps` by `wrap` of it, once; fails at start-up if the engine no longer has it. */
function wrapStep(steps: Step[], name: string, wrap: (step: Step) => Step, marker: WeakSet<Step>) {
  const at = steps.findIndex((step) => step.name === name);
  if (at < 0) throw new Error(`oidc-provider's registration endpoint has no ${name} step: review src/provider/patches/client-secret-digests.ts`);
  if (marker.has(steps[at]!)) return;
  const wrapped = wrap(steps[at]!);
  marker.add(wrapped);
  steps[at] = wrapped;
}

const wrapped = new WeakSet<Step>();
wrapStep(updateSteps as Step[], 'equalChecks', sendBack, wrapped);
wrapStep(updateSteps as Step[], 'clientUpdateResponse', withoutHandle, wrapped);
wrapStep(readSteps as Step[], 'clientReadResponse', withoutHandle, wrapped);

/** Client authentication compares a stored secret by its digest (the module's steps are changed as it loads). */
export function clientSecretDigests(provider: Provider): void {
  const prototype = provider.Client.prototype as unknown as { clientSecret?: string; compareClientSecret(actual: string): Promise<boolean> | boolean };
  const compare = prototype.compareClientSecret;
  prototype.compareClientSecret = function (this: { clientSecret?: string }, actual: string) {
    return isSecretHandle(this.clientSecret) ? matchesSecretHandle(this.clientSecret, actual) : compare.call(this, actual);
  };
}
