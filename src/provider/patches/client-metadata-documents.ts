/**
 * Resolves a client_id that is a metadata document's URL (registration/client-metadata-documents.ts)
 * inside oidc-provider's client lookup, so every route that names a client (authorization, PAR,
 * token, introspection, the interaction pages) sees such a client like a registered one.
 *
 * What it changes in oidc-provider: provider.Client.find is wrapped. When the original lookup
 * (static and stored clients) finds nothing and the id is a document URL, the checked metadata
 * is turned into a client with `new provider.Client(metadata, undefined, { cimd: true })`, as the
 * library's own (per-process, here unused) Client ID Metadata Document support does: `cimd` drops
 * array values this server does not support instead of refusing the document. A refused or
 * unreachable document is oidc-provider's invalid_client, with the reason as its description
 * (never a 500); the authorization endpoint's error page says the member and its rule instead
 * (DocumentRefused.shown), no value the document holds. Built clients are kept
 * per metadata, so an unchanged document is validated once per process.
 *
 * Pinned by test/unit/provider-patches.test.ts and test/e2e/client-metadata-documents.test.ts.
 */
import { errors, type Provider } from 'oidc-provider';
import { shownAs } from '../../http/errors.js';
import { DocumentRefused, documentUrl, shownRefusal, type ClientMetadataDocuments } from '../../registration/client-metadata-documents.js';

type Client = InstanceType<Provider['Client']>;
type ClientConstructor = new (metadata: Record<string, unknown>, ctx: undefined, options: { cimd: boolean }) => Client;

/** Built clients kept per process; an entry is replaced when its document's metadata changes. */
const BUILT_LIMIT = 1000;

export function resolveClientMetadataDocuments(provider: Provider, documents: ClientMetadataDocuments, allowLoopbackHttp: boolean): void {
  const Client = provider.Client as unknown as { find(id: string, ...rest: unknown[]): Promise<Client | undefined> };
  const find = Client.find.bind(Client);
  const built = new Map<string, { json: string; client: Client }>();
  const fromDocument = async (id: string): Promise<Client> => {
    let metadata: Record<string, unknown>;
    try {
      metadata = await documents.metadata(id);
    } catch (error) {
      if (error instanceof DocumentRefused) throw shownAs(new errors.InvalidClient(error.message), error.shown);
      throw error;
    }
    const json = JSON.stringify(metadata);
    const known = built.get(id);
    if (known?.json === json) return known.client;
    let client: Client;
    try {
      client = new (provider.Client as unknown as ClientConstructor)(metadata, undefined, { cimd: true });
    } catch (error) {
      if (error instanceof errors.InvalidClientMetadata) {
        throw shownAs(new errors.InvalidClient(`client metadata document: ${error.error_description}`), `client metadata document: ${shownRefusal(error.error_description ?? '')}`);
      }
      throw error;
    }
    if (built.size >= BUILT_LIMIT) built.delete(built.keys().next().value!);
    built.set(id, { json, client });
    return client;
  };
  // Not an async function: an id that cannot be a document's URL (every registered client's) gets
  // the original lookup's promise as it is.
  Client.find = (id: string, ...rest: unknown[]) => {
    const found = find(id, ...rest);
    if (typeof id !== 'string' || !documentUrl(id, allowLoopbackHttp)) return found;
    return found.then((client) => client ?? fromDocument(id));
  };
}

/**
 * Whether the client of a token still exists, for introspection: a client named by its metadata
 * document exists only while that document resolves (a refused or vanished one, once the cached
 * copy expires, is an unknown client). Its tokens are then inactive, as a deleted client's are,
 * rather than answering the introspecting API with the lookup's invalid_client. Any other client id
 * is left to the deletion list.
 */
export async function clientResolves(provider: Provider, clientId: unknown, allowLoopbackHttp: boolean): Promise<boolean> {
  if (typeof clientId !== 'string' || !documentUrl(clientId, allowLoopbackHttp)) return true;
  return (await provider.Client.find(clientId).catch(() => undefined)) !== undefined;
}
