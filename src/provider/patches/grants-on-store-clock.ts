/**
 * A grant is dated on the store's clock (clock.ts epochSeconds), the clock every cutoff its `iat` is
 * compared with is written on.
 *
 * A session's grant is taken up again by its app's next authorization request in that session
 * (consents.ts loadExistingGrant), and a consent page adding to it confirms onto it
 * (interactions/consent.ts), unless it was given before a cutoff: its person's (`grantsEndedAt`,
 * their cutoff for the client, `endedAt`: accounts.ts endedWithPerson), its client's (`delegated`,
 * revocation/list.ts; `clientIdIssuedAt`) or the re-addition of an API it names (`addedAt`,
 * apis.ts predates). Each is written on the store's clock; the grant's `iat` was oidc-provider's,
 * stamped at its first save on the clock of the machine of the instance that made it
 * (opaque.js: `token.iat || epochTime()`). The consent page dated the grants it makes on the store's
 * clock already; a grant made from a remembered consent (a sign-in in another browser, no consent
 * page) was not. With instances on one Redis whose clocks differ by some seconds, such a grant made
 * at one whose clock ran ahead just before an API it names was removed and added again, or before
 * `grants revoke --user` or the app's withdrawal stopped half-way after its cutoff, counted as given
 * after it: the app's next request in that session got a code silently, and with it the new API's
 * token or tokens the ending had ended. One made at an instance behind just after such an ending
 * counted as given before it: a consent page asking one scope more was refused as withdrawn
 * (twenty-eighth endings pass, test/e2e/redteam-endings-28.test.ts).
 *
 * What it changes in oidc-provider: Grant#save sets a grant's `iat` to the store's epoch second when
 * it has none (its first save; later saves keep it, as opaque.js does). Its `exp` stays the
 * engine's, on this machine's clock, as every expiry the engine reads (lifetimes-as-configured.ts
 * bounds it by `iat` plus `ttl.grant`: an instance whose clock is ahead of the store's by some
 * seconds bounds its grants that much earlier, of days). A grant stored before this change keeps
 * the `iat` it was saved with.
 */
import type { Provider } from 'oidc-provider';
import { epochSeconds } from '../../clock.js';

type Dated = { iat?: number };

export function grantsOnStoreClock(provider: Provider): void {
  const prototype = provider.Grant.prototype as unknown as { save(this: Dated, ...args: unknown[]): Promise<unknown> };
  const save = prototype.save;
  if (typeof save !== 'function') throw new Error('oidc-provider Grant#save is gone: review src/provider/patches/grants-on-store-clock.ts');
  prototype.save = function (this: Dated, ...args: unknown[]) {
    if (this.iat === undefined) this.iat = epochSeconds();
    return save.apply(this, args);
  };
}
