/**
 * A newcomer starts Latchkey on a VM or behind a proxy without setting ISSUER: its home page opens
 * under the address they use, while discovery, every redirect and every token name
 * http://localhost:<port>, which browsers and apps elsewhere cannot reach, and a sign-in fails far
 * from its cause (thirteenth newcomer pass). Under a loopback issuer, the first request for a host
 * that is not this machine is logged, once per process, with the ISSUER to set. Only a hint: the
 * request is served as the issuer's, as every request is (app.ts serveAsIssuer), and whoever sends
 * a Host header of their choice earns one line, once.
 */
import type { Middleware } from 'koa';
import type { Logger } from '../ops/logger.js';
import { onThisMachine } from './this-machine.js';

/** The middleware, or none for an issuer that is not on this machine (every deployment but a trial's). */
export function strayHostWarning(issuer: string, proxy: boolean, logger: Logger): Middleware | undefined {
  if (!onThisMachine(new URL(issuer).hostname)) return undefined;
  let warned = false;
  // The Host read last: a run of requests for one host (a load test, a browser) is read once.
  let last = '';
  return function strayHost(ctx, next) {
    if (warned) return next();
    const named = (proxy && ctx.get('X-Forwarded-Host').split(',')[0]!.trim()) || ctx.get('Host');
    if (named === last) return next();
    last = named;
    const url = URL.parse(`http://${named}`);
    if (url && url.hostname && !onThisMachine(url.hostname)) {
      warned = true;
      // As an issuer is spelt: no :80 or :443.
      const host = url.port === '443' ? url.hostname : url.host;
      logger.warn(
        { event: 'issuer.stray_host', host },
        `a request came for ${host}, but the issuer is ${issuer} (ISSUER): discovery, redirects and tokens name that, which browsers and apps elsewhere cannot reach; if people and apps reach Latchkey at ${host}, set ISSUER=https://${host} (TLS ended at a proxy in front, with PROXY=true; or http://${host} to try it without TLS, which production refuses)`,
      );
    }
    return next();
  };
}
