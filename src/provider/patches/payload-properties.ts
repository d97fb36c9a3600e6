/**
 * Properties more that oidc-provider keeps of a model's instances when it stores them (their payload),
 * for the patches that record something on a code, device code or refresh token. The engine reads a
 * model's IN_PAYLOAD once per model, when the first instance is made or read (models/payload.js), so
 * this runs before the provider serves; each call adds to what the calls before it added.
 */
export function keptInPayload(model: unknown, ...properties: string[]): void {
  const payload = (model as { IN_PAYLOAD?: unknown }).IN_PAYLOAD;
  if (!Array.isArray(payload)) throw new Error('oidc-provider Model.IN_PAYLOAD is gone: review src/provider/patches/payload-properties.ts');
  Object.defineProperty(model, 'IN_PAYLOAD', { configurable: true, get: () => [...payload, ...properties] });
}
