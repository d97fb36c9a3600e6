/**
 * Clients kept in the store (as opposed to static ones in config): add, list, remove. Metadata is
 * validated by oidc-provider's own client schema before it is stored, so what the CLI accepts is
 * exactly what the provider will load.
 */
import { randomBytes } from 'node:crypto';
import type { Provider } from 'oidc-provider';
import { adapterFactory, CLIENTS_KEY } from '../store/adapter.js';
import type { Kv } from '../store/kv.js';

export type ClientMetadata = Record<string, unknown> & { client_id: string };

export class ClientError extends Error {
  override name = 'ClientError';
}

/** 256 bits from the CSPRNG, base64url: a secret worth comparing with a plain constant-time compare. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export class Clients {
  readonly #adapter;

  constructor(
    private readonly kv: Kv,
    private readonly provider: Provider,
  ) {
    this.#adapter = adapterFactory(kv)('Client');
  }

  async add(metadata: ClientMetadata): Promise<ClientMetadata> {
    const id = metadata.client_id;
    if (await this.#adapter.find(id)) throw new ClientError(`a client "${id}" exists already`);
    try {
      // Throws InvalidClientMetadata / InvalidRedirectUri with the provider's own description.
      await (this.provider.Client as unknown as { validate(m: unknown): Promise<unknown> }).validate(metadata);
    } catch (error) {
      const { error: code, error_description: description } = error as { error?: string; error_description?: string };
      if (code) throw new ClientError(`${code}: ${description ?? ''}`.trim());
      throw error;
    }
    await this.#adapter.upsert(id, metadata, 0);
    return metadata;
  }

  async get(id: string): Promise<ClientMetadata | undefined> {
    return (await this.#adapter.find(id)) as ClientMetadata | undefined;
  }

  async list(): Promise<ClientMetadata[]> {
    const ids = (await this.kv.members(CLIENTS_KEY)).sort();
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found.filter((client): client is ClientMetadata => !!client);
  }

  async remove(id: string): Promise<void> {
    if (!(await this.#adapter.find(id))) throw new ClientError(`no client "${id}"`);
    await this.#adapter.destroy(id);
  }
}
