/**
 * A client's metadata by its registered (snake_case) names, made once per client object.
 *
 * oidc-provider's Client#metadata() builds the whole object anew at every call, renaming each
 * property (about 60 of them) to snake_case; the step-up check and the ID token's claims ask it
 * for one property on every authorization and token request, and the sign-in pages at every login
 * (interactions/client-branding.ts). A client object never changes once made (an update makes a new
 * one: oidc-provider keeps them by a hash of their metadata), so its metadata is made once and
 * shared by those readers, who only read it. (The account page's apps section, in accounts/, which
 * may not import provider/, still calls Client#metadata() itself: once per app listed.)
 */
type WithMetadata = { metadata(): Record<string, unknown> };

const made = new WeakMap<object, Readonly<Record<string, unknown>>>();

export function clientMetadata(client: WithMetadata): Readonly<Record<string, unknown>> {
  let metadata = made.get(client);
  if (!metadata) made.set(client, (metadata = client.metadata()));
  return metadata;
}
