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
 * key first, so it is the one that signs.
 */
export function signingKeys(keyring: Keyring): { keys: SigningKey[] } {
  return { keys: keyring.keys.map(({ jwk }) => new SigningKey(jwk)) };
}

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

  constructor(jwk: JWK) {
    super();
    this.#kid = jwk.kid!;
    this.#private = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
    this.#public = createPublicKey(this.#private);
  }

  override get kid(): string {
    return this.#kid;
  }

  override get alg(): string {
    return 'RS256';
  }

  override keyObject(): KeyObject {
    return this.#public;
  }

  override sign(data: Uint8Array): Buffer {
    return sign('sha256', data, this.#private);
  }
}
