/**
 * The oidc-provider instance in service, replaced when the key ring changes.
 *
 * oidc-provider fixes its keystore (and its JWKS) when it is constructed, and its maintainer
 * recommends against changing either at runtime; its supported way to take new keys is a new
 * instance. So each rotation builds a new Provider from the same configuration and the new
 * ring, and swaps it in: requests already inside the old one finish there, every new request
 * goes to the new one. Instances hold no state of their own (everything is in the store), so
 * nothing is lost in the swap. Construction takes a few milliseconds and happens once per
 * rotation; the request path pays one property read.
 */
import type { Middleware } from 'koa';
import mount from 'koa-mount';
import type Koa from 'koa';
import type { Provider } from 'oidc-provider';

export class ProviderHost {
  #current: Provider;
  #mounted: Middleware;
  readonly #listeners: ((provider: Provider) => void)[] = [];

  constructor(initial: Provider) {
    this.#current = initial;
    this.#mounted = mount(initial as unknown as Koa);
  }

  get current(): Provider {
    return this.#current;
  }

  /** Calls `listener` for the provider in service now and for each one that replaces it. */
  forEach(listener: (provider: Provider) => void): void {
    this.#listeners.push(listener);
    listener(this.#current);
  }

  replace(next: Provider): void {
    for (const listener of this.#listeners) listener(next);
    this.#mounted = mount(next as unknown as Koa);
    this.#current = next;
  }

  /** Koa middleware that hands each request to the provider in service when it arrives. */
  middleware(): Middleware {
    return (ctx, next) => this.#mounted(ctx, next);
  }
}
