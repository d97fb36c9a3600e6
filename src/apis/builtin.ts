/** The APIs (resource servers) every Latchkey has: those configured and the built-in ones. */
import type { Config } from '../config.js';
import { adminResourceServer } from './admin-resource.js';
import type { ApiDefinition } from './apis.js';
import { feedResourceServer } from './feed-server.js';

/** The built-in APIs, both privileged: the revocation feed and the admin API. */
export function builtinResourceServers(config: Config): ApiDefinition[] {
  return [{ ...feedResourceServer(config.issuer), privileged: true }, adminResourceServer(config.issuer)];
}

/** The configured resource servers and the built-in ones (runtime APIs live in the store: src/apis/). */
export function resourceServers(config: Config): ApiDefinition[] {
  return [...config.resourceServers.map(({ grants: _grants, ...api }) => api), ...builtinResourceServers(config)];
}
