/**
 * A check, at the token endpoint, of what a grant redeems (a refresh token, a code, a device code)
 * against its client as it is now: patches/step-up.ts (the sign-in's level) and
 * patches/current-registration.ts (redirect URI, scopes) each add one.
 *
 * oidc-provider's grants take what Model.find() gives; a find() that throws is the grant's error.
 * The check sees only what is found on the token endpoint, of the client that authenticated (another
 * client's is the engine's to refuse), and not consumed yet (one presented again is the engine's to
 * refuse: it revokes what it got).
 */
import { Provider } from 'oidc-provider';

/** What a redeemed refresh token, code or device code says, as the checks read it (scope may be narrowed). */
export interface Redeemed {
  clientId?: string;
  accountId?: string;
  acr?: string;
  scope?: string;
  redirectUri?: string;
  /** The engine's model name (AuthorizationCode, DeviceCode, ...). */
  readonly kind?: string;
  /** An authorization code's PKCE challenge (RFC 7636), when its request sent one. */
  readonly codeChallenge?: string;
  /** When it was issued, on the engine's clock (the instance's machine), and when its grant was given, on the store's (patches/grant-given-at.ts). */
  readonly iat?: number;
  readonly grantedAt?: number;
  /** Whether its tokens end with the session it was issued in (the engine's: a code without offline_access). */
  expiresWithSession?: boolean;
  readonly consumed?: unknown;
}

type Finder = { find(value: string, ...rest: unknown[]): Promise<Redeemed | undefined> };
type Check = (found: Redeemed, client: { clientId: string }) => void | Promise<void>;

/** Each model's checks: its find() is wrapped once, however many patches add one. */
const checksOf = new WeakMap<object, Check[]>();

/** Adds `check` (see above) to each model's find(), after the checks added before it. */
export function checkAtTokenEndpoint<Client extends { clientId: string }>(models: readonly unknown[], check: (found: Redeemed, client: Client) => void | Promise<void>): void {
  for (const Model of models as Finder[]) {
    const added = checksOf.get(Model);
    if (added) {
      added.push(check as Check);
      continue;
    }
    const checks: Check[] = [check as Check];
    checksOf.set(Model, checks);
    const find = Model.find.bind(Model);
    Model.find = async (value: string, ...rest: unknown[]) => {
      const found = await find(value, ...rest);
      const oidc = Provider.ctx?.oidc;
      const client = oidc?.client as unknown as Client | undefined;
      if (found && !found.consumed && oidc?.route === 'token' && client && found.clientId === client.clientId) {
        for (const each of checks) await each(found, client);
      }
      return found;
    };
  }
}
