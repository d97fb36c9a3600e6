/**
 * The provider in service now, as our own routes see it: they read `current` per request, so
 * after a ring change they use the provider that replaced the first one (provider/host.ts's
 * ProviderHost is one). Its own module, below every folder, so that registration/ and accounts/,
 * which provider/ imports, can take a host without importing provider/.
 */
import type { Provider } from 'oidc-provider';

export interface ProviderInService {
  readonly current: Provider;
}
