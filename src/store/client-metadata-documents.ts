/**
 * The shared cache of Client ID Metadata Documents (registration/client-metadata-documents.ts):
 * what a client_id URL's document said, or why it was refused, for as long as the fetch's
 * caching rules allow. Every instance reads the same entries, so one fetch serves them all.
 *
 * Layout: client-metadata-document:<sha256 of the URL, base64url> → JSON, always with a TTL, and
 * with the second it was cached (`at`): a copy cached under a longer clientMetadataDocuments.cacheMax
 * than the one configured now is read as gone once that has passed (get's maxAge), so that an operator
 * who lowered it and restarted has changed documents read within it (thirteenth fresh-eyes passes; an
 * entry an earlier release cached, without `at`, lives to its TTL).
 *
 * Beside it, the metadata last accepted at the URL (client-metadata-document-accepted:<sha256>):
 * what the next accepted document is compared with (its changes end what a write's would), gone
 * with a definite 404 or 410. Kept, from each acceptance, for as long as something issued under the
 * document may live (`keep`), not for ever: anyone can name documents of their own, and a document
 * no one read for that long has nothing left to end. Written by compare-and-set, so that of
 * instances reading one change at once, one runs its endings; while they run it holds a mark
 * (`removing ` or `replacing ` and the metadata before: registration/client-metadata-documents.ts),
 * so that endings a store failure cut short are run again. Their URLs are indexed
 * (client-metadata-documents-accepted-ends, a sorted set scored by when each URL's accepted record
 * ends, `keep` after its last acceptance), so that a start with the feature switched off ends their
 * clients (switchedOff). Each add drops the URLs already ended, in the same step: under a steady
 * stream of new documents the index holds those of the last `keep` seconds, not every one ever
 * accepted (the twentieth endings pass's plain set, whose TTL each add renewed, never lost one).
 * That set (client-metadata-documents-accepted), left by the release before, is read beside it
 * until it expires, `keep` after its last add; nothing adds to it now.
 */
import { epochSeconds } from '../clock.js';
import type { Kv } from './kv.js';
import { CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY, CLIENT_METADATA_DOCUMENTS_ACCEPTED_KEY, clientMetadataDocumentAcceptedKey, clientMetadataDocumentKey } from './keys.js';

/** Seconds an index entry outlives the accepted record written after it (which is written a round trip later). */
const INDEX_MARGIN = 60;

export type CachedDocument =
  | { readonly metadata: Record<string, unknown> }
  | { readonly refused: string; /** What the error page says (DocumentRefused.shown); absent in a refusal cached by an earlier release. */ readonly shown?: string };

export class ClientMetadataDocumentCache {
  constructor(
    private readonly kv: Kv,
    /** Seconds the accepted metadata is kept from each acceptance (provider.ts: the longest a grant and its last access token live, and a cached copy's). */
    private readonly keep: number,
  ) {}

  /** The cached entry, unless cached `maxAge` seconds ago or more (clientMetadataDocuments.cacheMax as configured now). */
  async get(url: string, maxAge = Infinity): Promise<CachedDocument | undefined> {
    const json = await this.kv.get(clientMetadataDocumentKey(url));
    if (json === undefined) return undefined;
    const { at, ...entry } = JSON.parse(json) as CachedDocument & { at?: number };
    return at !== undefined && at + maxAge <= epochSeconds() ? undefined : entry;
  }

  async put(url: string, entry: CachedDocument, ttl: number): Promise<void> {
    await this.kv.set(clientMetadataDocumentKey(url), JSON.stringify({ ...entry, at: epochSeconds() }), { ttl });
  }

  /** The metadata last accepted at the URL, as written (JSON), if any. */
  accepted(url: string): Promise<string | undefined> {
    return this.kv.get(clientMetadataDocumentAcceptedKey(url));
  }

  /** Records `next` as the metadata accepted at the URL, for `keep` seconds more, if `previous` still is (false: another instance changed it first). */
  async replaceAccepted(url: string, previous: string | undefined, next: string): Promise<boolean> {
    // Indexed first: an index naming a URL whose record was not written is harmless (switchedOff skips it).
    // Scored by when the record written next ends (`keep` after its write, a round trip after this
    // add), with a minute to spare: the index names the URL as long as its record may live.
    await this.kv.addExpiring(CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY, url, this.keep + INDEX_MARGIN);
    return this.kv.compareAndSet(clientMetadataDocumentAcceptedKey(url), previous, next, this.keep);
  }

  /** The URLs whose metadata may be kept accepted (those accepted before the index was kept are not among them). */
  async acceptedUrls(): Promise<string[]> {
    const [indexed, before] = await Promise.all([this.kv.liveMembers(CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY), this.kv.members(CLIENT_METADATA_DOCUMENTS_ACCEPTED_KEY)]);
    return [...new Set([...indexed, ...before])];
  }

  /** Takes `url` out of the index (its accepted metadata is gone). */
  async unindex(url: string): Promise<void> {
    await Promise.all([this.kv.removeExpiring(CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY, url), this.kv.removeFromSet(CLIENT_METADATA_DOCUMENTS_ACCEPTED_KEY, url)]);
  }

  /** Forgets the metadata accepted at the URL if it still is `previous` (false: another instance did first). */
  forgetAccepted(url: string, previous: string): Promise<boolean> {
    return this.kv.deleteIfEquals(clientMetadataDocumentAcceptedKey(url), previous);
  }
}
