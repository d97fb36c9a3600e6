/**
 * The shared cache of Client ID Metadata Documents (registration/client-metadata-documents.ts):
 * what a client_id URL's document said, or why it was refused, for as long as the fetch's
 * caching rules allow. Every instance reads the same entries, so one fetch serves them all.
 *
 * Layout: client-metadata-document:<sha256 of the URL, base64url> → JSON, always with a TTL.
 */
import type { Kv } from './kv.js';
import { clientMetadataDocumentKey } from './keys.js';

export type CachedDocument =
  | { readonly metadata: Record<string, unknown> }
  | { readonly refused: string };

export class ClientMetadataDocumentCache {
  constructor(private readonly kv: Kv) {}

  async get(url: string): Promise<CachedDocument | undefined> {
    const json = await this.kv.get(clientMetadataDocumentKey(url));
    return json === undefined ? undefined : (JSON.parse(json) as CachedDocument);
  }

  async put(url: string, entry: CachedDocument, ttl: number): Promise<void> {
    await this.kv.set(clientMetadataDocumentKey(url), JSON.stringify(entry), { ttl });
  }
}
