/**
 * The part of autocannon's API the bench uses (the package ships no types; @types/autocannon
 * describes an older major).
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  export interface AutocannonRequest {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    setupRequest?: (request: AutocannonRequest, context: Record<string, string>) => AutocannonRequest | undefined;
    onResponse?: (status: number, body: string, context: Record<string, string>, headers: Record<string, string | string[]>) => void;
  }

  export interface AutocannonOptions {
    url: string;
    connections?: number;
    duration?: number;
    amount?: number;
    timeout?: number;
    pipelining?: number;
    sampleInt?: number;
    requests?: AutocannonRequest[];
    setupClient?: (client: unknown) => void;
  }

  export interface AutocannonResult {
    errors: number;
    timeouts: number;
    duration: number;
  }

  export interface Instance extends EventEmitter {
    stop(): void;
  }

  export default function autocannon(
    options: AutocannonOptions,
    callback: (error: Error | null, result: AutocannonResult) => void,
  ): Instance;
}
