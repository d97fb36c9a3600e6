/**
 * The engine's request in progress (oidc-provider's Koa context), read from its AsyncLocalStorage
 * (lib/helpers/als.js, what Provider.ctx reads) rather than through the engine itself: the store is
 * loaded by every CLI command, which never runs the engine and would pay most of its start-up
 * (about 0.45 s of CPU) for importing it.
 */
import requests from 'oidc-provider/lib/helpers/als.js';
import type { KoaContextWithOIDC } from 'oidc-provider';

export const engineRequest = (): KoaContextWithOIDC | undefined => requests.getStore() as KoaContextWithOIDC | undefined;
