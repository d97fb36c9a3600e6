/**
 * What the login and consent pages show about the client (OpenID Connect Registration §2): its
 * name, its logo (`logo_uri`), and links to its privacy policy (`policy_uri`) and terms of
 * service (`tos_uri`), so the person sees who asks before signing in or allowing access.
 *
 * The site-wide Content-Security-Policy (app.ts) allows images only from ourselves. A page that
 * shows a client's logo widens img-src, on that response only, by exactly the origin of that
 * client's registered logo_uri (http/image-origins.ts, which the account page uses too). The registration policy (registration/policy.ts) admits only
 * https URLs there, and http for loopback hosts (development); anything else is not shown.
 *
 * A client whose client_id is a URL (a Client ID Metadata Document, registration/
 * client-metadata-documents.ts) names itself: its name and logo are whatever its document says.
 * What is proven is the host that served the document, so the pages show that `domain` first.
 *
 * Any other client's name and logo are self-asserted too: whoever registers an app (the developer
 * page, open registration) may call it "Notes" like the operator's app. What a person can check is
 * where their answer goes, the authorization request's redirect URI, which the client registered
 * and the engine matched exactly: the sign-in, account choice and consent pages name its host
 * (`returnsTo`), so two apps of one name read apart (red team's ninth granting pass). The device
 * page has no redirect URI to name: it shows the web hosts the client registered (`hosts`), or says
 * it has none (red team's tenth granting pass, RFC 8628 §5.4).
 */
import type { Context } from 'koa';
import type { Provider } from 'oidc-provider';
import { allowImagesFrom, registeredHosts, webUrl } from '../http/image-origins.js';
import { FIRST_PARTY_CLIENT_IDS } from '../http/first-party-sign-in.js';
import type { Config } from '../config.js';
import { clientMetadata } from '../provider/client-metadata.js';

type Client = NonNullable<Awaited<ReturnType<Provider['Client']['find']>>>;

export interface ClientBranding {
  readonly name: string;
  readonly logoUri?: string;
  readonly policyUri?: string;
  readonly tosUri?: string;
  /** The host of a URL client_id: the one thing about such a client that is not self-asserted. */
  readonly domain?: string;
  /** Where this request sends the person back (http/image-origins.ts returnedTo); for a client with a `domain`, only when it is not that domain. */
  readonly returnsTo?: string;
  /** The web hosts the client registered (http/image-origins.ts registeredHosts): what the device page shows, having no redirect URI to name. */
  readonly hosts?: readonly string[];
  /**
   * Whether the client registered itself (RFC 7591, or a developer on the developer page) and is no
   * operator's: its name and logo are its own word, which the sign-in and consent pages say
   * (views/client-return.eta), as the device page does. Set per request (interaction.ts clientBranding).
   */
  readonly selfRegistered?: boolean;
}

/**
 * Whether a client's name and logo are its own word, vouched for by no operator: a developer's app
 * (`owner`), or one that registered itself and holds registration access tokens (`managesItself`,
 * store/adapter-indexes.ts: no operator has written it since).
 */
export async function registeredItself(client: Client, managesItself: (clientId: string) => Promise<boolean>): Promise<boolean> {
  return clientMetadata(client).owner !== undefined || (await managesItself(client.clientId));
}

/**
 * `managesItself` that asks the store only of a client no operator configured: a configured client
 * (CLIENTS) or one of Latchkey's own is the operator's whatever the store holds (the engine finds it
 * before any stored client of that id), and the login page of such a client stays one round trip.
 */
export function unlessConfigured(config: Pick<Config, 'clients'>, managesItself: (clientId: string) => Promise<boolean>): (clientId: string) => Promise<boolean> {
  const ids = new Set([...FIRST_PARTY_CLIENT_IDS, ...config.clients.map((client) => client.client_id)]);
  return (clientId) => (ids.has(clientId) ? Promise.resolve(false) : managesItself(clientId));
}


/**
 * Made once per client object (a client object never changes: provider/client-metadata.ts), not at
 * every page: the URL parsing is most of it, and a client_id that is not a URL costs a thrown error.
 */
const brandings = new WeakMap<Client, ClientBranding>();

export function brandingOf(client: Client | undefined, clientId: string): ClientBranding {
  if (!client) return branding(undefined, clientId);
  let made = brandings.get(client);
  if (!made) brandings.set(client, (made = branding(client, clientId)));
  return made;
}

function branding(client: Client | undefined, clientId: string): ClientBranding {
  const metadata: Readonly<Record<string, unknown>> = client ? clientMetadata(client) : {};
  return {
    name: client?.clientName ?? clientId,
    logoUri: webUrl(metadata.logo_uri)?.href,
    policyUri: webUrl(metadata.policy_uri)?.href,
    tosUri: webUrl(metadata.tos_uri)?.href,
    domain: webUrl(clientId)?.host,
    hosts: registeredHosts(metadata),
  };
}

/** Adds the logo's origin to img-src of this response's Content-Security-Policy. */
export function allowLogo(ctx: Context, branding: ClientBranding): void {
  allowImagesFrom(ctx, branding.logoUri ? [branding.logoUri] : []);
}
