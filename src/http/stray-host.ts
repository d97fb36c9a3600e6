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
  return function strayHost(ctx, next) {
    if (warned) return next();
    const named = (proxy && ctx.get('X-Forwarded-Host').split(',')[0]!.trim()) || ctx.get('Host');
    const url = URL.parse(`http://${named}`);
    if (url && url.hostname && !onThisMachine(url.hostname)) {
      warned = true;
      logger.warn(
        { event: 'issuer.stray_host', host: url.host },
        `a request came for ${url.host}, but the issuer is ${issuer} (ISSUER): discovery, redirects and tokens name that, which browsers and apps elsewhere cannot reach; if people and apps reach Latchkey at ${url.host}, set ISSUER=https://${url.host} (TLS ended at a proxy in front, with PROXY=true; or http://${url.host} to try it without TLS, which production refuses)`,
      );
    }
    return next();
  };
}
