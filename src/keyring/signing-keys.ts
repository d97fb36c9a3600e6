/**
 * The key ring as oidc-provider signs with it. Its own module, imported by the provider's
 * configuration alone: `ExternalSigningKey` is the engine's, and loading the engine is about half
 * of what a CLI command costs to start (the CLI reads and writes the ring, never signs with it).
 */
import { createPrivateKey, createPublicKey, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { ExternalSigningKey } from 'oidc-provider';
import type { Keyring } from './keyring.js';

/**
 * The keys as oidc-provider signs with them (its features.externalSigningSupport): the current
 * key first. Which key may sign is asked when the engine picks one (`signsWith`, by default the
 * ring's current key): a provider built from an older ring, still serving a request when this
 * process followed a revocation, signs with the key that replaced the revoked one (the older
 * ring's next key, which a revocation promotes), never with the revoked one, and never with a
 * next or retired key.
 */
export function signingKeys(keyring: Keyring, signsWith: (kid: string) => boolean = (kid) => kid === keyring.current?.kid): { keys: SigningKey[] } {
  return { keys: keyring.keys.map(({ jwk }) => new SigningKey(jwk, signsWith)) };
}

/** What a key that does not sign now may still do for the engine: verify (an id_token_hint). */
const VERIFY_ONLY = Object.freeze(['verify']);

/**
 * One RS256 key of the ring as oidc-provider's signer: the engine serialises the JWS header and
 * payload itself and hands us the signing input, which node:crypto signs with the key made once
 * here, on the calling thread. Given the private JWK instead, the engine signed through jose and
 * WebCrypto, whose job went to libuv's pool and back for every token (an eventfd write, two more
 * loop turns, about five futex calls): 11% more CPU a signature on one core, for the same
 * instructions. The trade: one process's signatures no longer spread over the pool's threads.
 */
export class SigningKey extends ExternalSigningKey {
  readonly #kid: string;
  readonly #private: KeyObject;
  readonly #public: KeyObject;
  readonly #signsWith: (kid: string) => boolean;

  constructor(jwk: JWK, signsWith: (kid: string) => boolean) {
    super();
    this.#kid = jwk.kid!;
    this.#signsWith = signsWith;
    this.#private = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
    this.#public = createPublicKey(this.#private);
  }

  override get kid(): string {
    return this.#kid;
  }

  override get alg(): string {
    return 'RS256';
  }

  /** The engine's keystore picks a key to sign with only among those whose key_ops, if any, say "sign". */
  override get key_ops(): string[] | undefined {
    return this.#signsWith(this.#kid) ? undefined : (VERIFY_ONLY as string[]);
  }

  override keyObject(): KeyObject {
    return this.#public;
  }

  override sign(data: Uint8Array): Buffer {
    return sign('sha256', data, this.#private);
  }
}
