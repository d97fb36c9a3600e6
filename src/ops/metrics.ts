/**
 * Prometheus metrics (prom-client), served on their own listener (metrics.host/metrics.port) so
 * they are never exposed on the public one. With `serve --workers N`, the primary process serves
 * the sum of its workers' metrics (prom-client's AggregatorRegistry).
 *
 * Labels are bounded: routes are oidc-provider's route names or our own route names, never paths.
 */
import { createServer, type Server } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { createHistogram, performance } from 'node:perf_hooks';
import client from 'prom-client';
import type { Logger } from './logger.js';
import { listen } from './listen.js';

const { Counter, Gauge, Histogram, Registry, AggregatorRegistry } = client;

export interface Observer {
  observe(value: number): void;
}

/** What prom-client keeps of a histogram's series (lib/histogram.js): its label set, buckets by upper bound, sum and count. */
interface SeriesValues {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly bucketValues: Record<string, number>;
  sum: number;
  count: number;
}
interface HistogramInternals {
  readonly hashMap?: Record<string, SeriesValues | undefined>;
  readonly upperBounds?: readonly number[];
  readonly enableExemplars?: boolean;
}

/**
 * One series of `histogram` (a label set), observed without prom-client's work per observation:
 * its observe() converts and validates the labels, joins them into the series' key, and converts
 * each bucket's bound to the string that names it (6-7 K instructions an observation, the cost of
 * a small store command's timing). The first observation goes through prom-client, which makes
 * the series; later ones add to that series' values as prom-client does (sum, count, the first
 * bucket whose bound is at or above the value), while they are still the ones it holds (after a
 * reset or a removal, and for a value that is not a finite number, prom-client again). Where
 * prom-client keeps its values otherwise (another version), every observation goes through it.
 */
function observerOf<T extends string>(histogram: client.Histogram<T>, labels: Record<T, string>): Observer {
  const internals = histogram as unknown as HistogramInternals;
  const bounds = internals.upperBounds;
  if (!internals.hashMap || !Array.isArray(bounds) || internals.enableExemplars) return histogram.labels(labels);
  const names = bounds.map(String);
  const count = bounds.length;
  let key: string | undefined;
  let values: SeriesValues | undefined;
  const find = () => {
    const map = internals.hashMap ?? {};
    for (const [hash, series] of Object.entries(map)) {
      if (series && Object.keys(labels).every((name) => series.labels[name] === labels[name as T]) && names.every((name) => typeof series.bucketValues[name] === 'number')) {
        key = hash;
        values = series;
        return;
      }
    }
    key = values = undefined;
  };
  return {
    observe(value: number) {
      if (values === undefined || !Number.isFinite(value) || internals.hashMap![key!] !== values) {
        histogram.observe(labels, value);
        find();
        return;
      }
      values.sum += value;
      values.count += 1;
      for (let i = 0; i < count; i += 1) {
        if (value <= bounds[i]!) {
          values.bucketValues[names[i]!]! += 1;
          return;
        }
      }
    },
  };
}

/** What prom-client keeps of a counter's series (lib/counter.js): its label set and value. */
interface CounterValues {
  readonly labels: Readonly<Record<string, string | number>>;
  value: number;
}
interface CounterInternals {
  readonly hashMap?: Record<string, CounterValues | undefined>;
  readonly enableExemplars?: boolean;
}

export interface Incrementer {
  inc(): void;
}

/**
 * One series of `counter` (a label set), counted without prom-client's work per increment: a
 * bound child's inc() still validates the labels and joins them into the series' key at every
 * call (about 4 K instructions each). As observerOf: the first increment goes through prom-client,
 * which makes the series; later ones add 1 to that series' value while it is still the one
 * prom-client holds (after a reset or a removal, prom-client again). Where prom-client keeps its
 * values otherwise (another version, exemplars), every increment goes through it.
 */
export function incrementerOf<T extends string>(counter: client.Counter<T>, labels: Record<T, string>): Incrementer {
  const internals = counter as unknown as CounterInternals;
  if (!internals.hashMap || internals.enableExemplars) return counter.labels(labels);
  const names = Object.keys(labels) as T[];
  let key: string | undefined;
  let values: CounterValues | undefined;
  const find = () => {
    for (const [hash, series] of Object.entries(internals.hashMap ?? {})) {
      if (series && typeof series.value === 'number' && names.every((name) => series.labels[name] === labels[name])) {
        key = hash;
        values = series;
        return;
      }
    }
    key = values = undefined;
  };
  return {
    inc() {
      if (values === undefined || internals.hashMap![key!] !== values) {
        counter.inc(labels);
        find();
        return;
      }
      values.value += 1;
    },
  };
}

/**
 * The metrics of one running server, in a registry of its own: serve() makes one and hands it to
 * what records into it (request log, provider events, rate limits, logins, store timing, the key
 * ring gauge). Nothing is registered at import time, so two servers in one process (the tests
 * start several) each count their own.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly requestDuration = new Histogram({
    name: 'latchkey_http_request_duration_seconds',
    help: 'HTTP requests by route, method and status class',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly tokensIssued = new Counter({
    name: 'latchkey_tokens_issued_total',
    help: 'Successful token endpoint grants, by grant type',
    labelNames: ['grant_type'] as const,
    registers: [this.registry],
  });
  readonly logins = new Counter({
    name: 'latchkey_logins_total',
    help: 'Password sign-ins by outcome: success, failure, throttled',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly secondFactors = new Counter({
    name: 'latchkey_second_factor_total',
    help: 'Second-factor and passkey uses by method (totp, recovery_code, passkey) and outcome (success, failure, replayed, throttled)',
    labelNames: ['method', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly secondFactorEnrolments = new Counter({
    name: 'latchkey_second_factor_enrolments_total',
    help: 'Second-factor changes by method (totp, recovery_codes, passkey) and action (added, removed, reset, failed)',
    labelNames: ['method', 'action'] as const,
    registers: [this.registry],
  });
  readonly providerEvents = new Counter({
    name: 'latchkey_provider_events_total',
    help: 'oidc-provider events (grant.success, grant.revoked, authorization.error, ...)',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  readonly storeCommands = new Histogram({
    name: 'latchkey_store_command_duration_seconds',
    help: 'Store (Redis) operations by operation and outcome',
    labelNames: ['operation', 'outcome'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2],
    registers: [this.registry],
  });
  readonly backchannelLogouts = new Counter({
    name: 'latchkey_backchannel_logouts_total',
    help: 'Back-channel logouts an app did not take at once, by outcome: retried (kept to send again), delivered (taken at a later attempt), dropped (given up); and expired (sessions ended by their expiry, their apps told)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'latchkey_rate_limited_total',
    help: 'Requests refused with 429, by endpoint and limit (ip or client)',
    labelNames: ['endpoint', 'limit'] as const,
    registers: [this.registry],
  });

  /**
   * requestDuration's children by route, method and status class, bound once (the label sets are
   * few). Maps within maps: a key joining the three was a new string per request.
   */
  readonly #requestSeries = new Map<string, Map<string, Map<string, Observer>>>();

  readonly #loopDelay: LoopDelay;

  /** `loopIdleAfter`: ms without a request after which the event loop's delay is no longer sampled (LoopDelay). */
  constructor(options: { readonly loopIdleAfter?: number } = {}) {
    // prom-client's own event-loop delay monitor, off in effect (its timer due every 24.8 days),
    // and its seven gauges replaced by LoopDelay's, of the same names.
    client.collectDefaultMetrics({ prefix: 'latchkey_', register: this.registry, eventLoopMonitoringPrecision: 2 ** 31 - 1 });
    for (const name of LOOP_DELAY_GAUGES) this.registry.removeSingleMetric(`latchkey_nodejs_eventloop_lag_${name}_seconds`);
    this.#loopDelay = new LoopDelay(this.registry, options.loopIdleAfter ?? LOOP_IDLE_AFTER);
  }

  /** Whether the event loop's delay is being sampled (a request arrived lately: LoopDelay). */
  get loopDelaySampling(): boolean {
    return this.#loopDelay.sampling;
  }

  /**
   * `listener`, telling this server's event-loop delay monitor of each request as it arrives (the
   * monitor samples only while requests arrive: LoopDelay).
   */
  arrivals(listener: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
    const loopDelay = this.#loopDelay;
    return function arrived(req, res) {
      loopDelay.arrived();
      listener(req, res);
    };
  }

  /** storeCommands' series of an operation and outcome (bound: see observerOf), for store/instrumented.ts. */
  storeCommand(operation: string, outcome: 'ok' | 'error'): Observer {
    return observerOf(this.storeCommands, { operation, outcome });
  }

  /** Records one request's duration, on a label set bound at its first use instead of hashed per request. */
  observeRequest(route: string, method: string, status: string, seconds: number): void {
    let byMethod = this.#requestSeries.get(route);
    if (!byMethod) this.#requestSeries.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let series = byStatus.get(status);
    if (!series) byStatus.set(status, (series = observerOf(this.requestDuration, { route, method, status })));
    series.observe(seconds);
  }

  /** tokensIssued's series by grant type, bound at first use (see incrementerOf) (only grant types the engine supports succeed). */
  readonly #issuedSeries = new Map<string, Incrementer>();

  /** Counts one successful token request. */
  countIssued(grantType: string): void {
    let series = this.#issuedSeries.get(grantType);
    if (!series) this.#issuedSeries.set(grantType, (series = incrementerOf(this.tokensIssued, { grant_type: grantType })));
    series.inc();
  }

  /** Signing keys by state (next, current, retired), read from `keys()` at each scrape. */
  observeSigningKeys(keys: () => readonly { state: string }[]): void {
    new Gauge({
      name: 'latchkey_signing_keys',
      help: 'Signing keys in the key ring, by state',
      labelNames: ['state'] as const,
      registers: [this.registry],
      // Every worker holds the same ring (--workers): the primary's sum counted each key once per worker.
      aggregator: 'max',
      collect() {
        this.reset();
        for (const key of keys()) this.inc({ state: key.state });
      },
    });
  }

  /**
   * In a worker process: answer the primary's requests for metrics (which it sums, see
   * serveMetrics) with this registry. prom-client keeps one such answerer per process, installed
   * by the first AggregatorRegistry made in it; a worker runs one server.
   */
  reportToPrimary(): void {
    AggregatorRegistry.setRegistries([this.registry]);
    new AggregatorRegistry();
  }
}

/** The event loop's delay gauges prom-client's defaults name `nodejs_eventloop_lag_<name>_seconds`, and how a cluster's are summed. */
const LOOP_DELAY_GAUGES = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'] as const;
const LOOP_DELAY_HELP = {
  min: ['The minimum recorded event loop delay', 'min'],
  max: ['The maximum recorded event loop delay', 'max'],
  mean: ['The mean of the recorded event loop delays', 'average'],
  stddev: ['The standard deviation of the recorded event loop delays', 'average'],
  p50: ['The 50th percentile of the recorded event loop delays', 'average'],
  p90: ['The 90th percentile of the recorded event loop delays', 'average'],
  p99: ['The 99th percentile of the recorded event loop delays', 'average'],
} as const;
/** The sampling stops one to two of these (ms) after the last request, until the next arrives. */
const LOOP_IDLE_AFTER = 1000;
/** Node's monitorEventLoopDelay's (and so prom-client's) sampling period, ms. */
const LOOP_DELAY_RESOLUTION = 10;

/**
 * The event loop's delay since the last scrape, sampled as prom-client's defaults sample it with
 * Node's monitorEventLoopDelay (a timer every 10 ms, each sample the time since the one before:
 * 10 ms and how late it came), but only while requests arrive and for one to two seconds
 * (LOOP_IDLE_AFTER) after the last. prom-client's monitor ran whether anything was asked or not:
 * 100 wake-ups a second, two thirds of an idle server's CPU (docs/performance.md). Here the first
 * sample after an idle spell runs from the request that ended it (monitorEventLoopDelay, enabled
 * again, would give the whole spell as one sample, or, enabled anew, miss that request's first
 * stall), so a stall while requests arrive is recorded as before; what the loop does once no
 * request came for that long (timers, a collection) is not, and a scrape after a spell without
 * samples reports 0 for every gauge. The timer is JavaScript's (about a microsecond a tick).
 */
class LoopDelay {
  readonly #histogram = createHistogram();
  readonly #idleAfter: number;
  /** performance.now() of the last sample's end (a tick, or the arrival that started the sampling). */
  #previous = 0;
  #ticks = 0;
  #seen = false;
  #ticker: NodeJS.Timeout | undefined;

  constructor(registry: client.Registry, idleAfter: number) {
    this.#idleAfter = idleAfter;
    const histogram = this.#histogram;
    // The first gauge's collect sets them all (as prom-client's does), then starts a new period.
    const collect = () => {
      const values = histogram.count === 0 ? [0, 0, 0, 0, 0, 0, 0] : [histogram.min, histogram.max, histogram.mean, histogram.stddev, histogram.percentile(50), histogram.percentile(90), histogram.percentile(99)];
      for (const [i, gauge] of gauges.entries()) gauge.set(values[i]! / 1e9);
      histogram.reset();
    };
    const gauges: client.Gauge[] = LOOP_DELAY_GAUGES.map(
      (name, i) =>
        new Gauge({
          name: `latchkey_nodejs_eventloop_lag_${name}_seconds`,
          help: `${LOOP_DELAY_HELP[name][0]}, while requests arrived.`,
          aggregator: LOOP_DELAY_HELP[name][1],
          registers: [registry],
          ...(i === 0 ? { collect } : {}),
        }),
    );
  }

  /** Whether the loop is being sampled (requests arrived lately). */
  get sampling(): boolean {
    return this.#ticker !== undefined;
  }

  arrived(): void {
    this.#seen = true;
    if (this.#ticker) return;
    this.#previous = performance.now();
    this.#ticks = 0;
    this.#ticker = setInterval(this.#tick, LOOP_DELAY_RESOLUTION).unref();
  }

  readonly #tick = () => {
    const now = performance.now();
    this.#histogram.record(Math.max(1, Math.round((now - this.#previous) * 1e6)));
    this.#previous = now;
    if ((this.#ticks += 1) * LOOP_DELAY_RESOLUTION < this.#idleAfter) return;
    this.#ticks = 0;
    if (this.#seen) {
      this.#seen = false;
      return;
    }
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  };
}

export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Every answer of the metrics listener: text for a scraper, never a page's (nothing framed, sniffed,
 * stored or read across origins), as every answer of the main listener says.
 */
const METRICS_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
} as const;

/**
 * Whether a browser sent `req` from a page (Fetch Metadata's Sec-Fetch-Site other than `none`, which
 * is the address typed or bookmarked). The listener answers any Host, so a page on a name of an
 * attacker's, rebound to this machine's address (DNS rebinding), would read the metrics as its own
 * origin's (same-origin); a scraper sends no Sec-Fetch-Site, and no page of this listener's own
 * sends requests, so no such request is ours to answer.
 */
function fromAPage(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  return site !== undefined && site !== 'none';
}

/** The name (or address) of a Host header, its port taken off, in lower case. */
const hostName = (value: string) => (value.startsWith('[') ? value.slice(1, value.indexOf(']') < 0 ? undefined : value.indexOf(']')) : value.replace(/:\d*$/, '')).toLowerCase();

/** How many names refused the metrics listener logs (each once): a page rebinding many names cannot fill the log. */
const REFUSALS_LOGGED = 16;

/**
 * Whether a request's Host (`value`) names this listener by a name no page can have rebound to it: an address (IPv4, or
 * IPv6 in brackets), `localhost` or a name under it, a name of one label (a container's, a host's
 * on the local network: found through the machine's own resolver, never a name of the public DNS),
 * or one of `names` (metrics.hosts), or no Host at all. Fetch Metadata does not stop a rebound name:
 * a browser sends Sec-Fetch-* only to a potentially trustworthy URL (HTTPS, or localhost), and this
 * listener is plain HTTP, so a page at `http://rebound.attacker.example:9464` fetches /metrics with
 * no Sec-Fetch-Site at all (eighteenth passes, h12: Chromium, its local-network checks off as in a
 * browser without them). Its Host, the attacker's name, is what gives it away.
 */
function namedForUs(value: string | undefined, names: ReadonlySet<string>): boolean {
  if (value === undefined) return true;
  const host = hostName(value);
  if (isIP(host) !== 0) return true;
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (/^[a-z0-9_-]+$/.test(host)) return true;
  return names.has(host.replace(/\.$/, ''));
}

/**
 * GET /metrics on its own port: a server's own `metrics`, or (a cluster primary's) the sum of its
 * workers'. `hosts`: the names besides addresses, localhost, one-label names and `host` (when a
 * name) a scraper may reach it by (metrics.hosts).
 */
export async function serveMetrics(host: string, port: number, logger: Logger, metrics: Metrics | 'workers', hosts: readonly string[] = []): Promise<MetricsListener> {
  // The name it is bound by (metrics.host, when a name) is the operator's too: its own URL answers.
  const names = new Set([...hosts, ...(isIP(host) === 0 ? [host] : [])].map((name) => name.toLowerCase().replace(/\.$/, '')));
  const logged = new Set<string>();
  const aggregator = metrics === 'workers' ? new AggregatorRegistry() : undefined;
  const registry = metrics === 'workers' ? aggregator! : metrics.registry;
  const text = (res: ServerResponse, status: number, body: string, more: Record<string, string> = {}) =>
    res.writeHead(status, { ...METRICS_HEADERS, 'content-type': 'text/plain', ...more }).end(body);
  const server: Server = createServer((req, res) => {
    // The path, whatever its query (a scraper's ?name[]= filters are not taken: the whole set).
    if (req.url?.split('?')[0] !== '/metrics') {
      text(res, 404, 'not found\n');
      return;
    }
    // RFC 9110 §9.3.2 HEAD as GET without the body; §15.5.6 405 naming the methods taken.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      text(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    if (fromAPage(req)) {
      text(res, 403, 'the metrics are for a scraper, or for their address typed in the address bar: not for a page\n');
      return;
    }
    // RFC 9110 §15.5.20: a name this listener does not answer for (a page's, rebound to this address).
    if (!namedForUs(req.headers.host, names)) {
      // Said in the log too: a scraper shows only the status (Prometheus: "421 Misdirected Request").
      const refused = hostName(req.headers.host!).slice(0, 253);
      if (logged.size < REFUSALS_LOGGED && !logged.has(refused)) {
        logged.add(refused);
        logger.warn(
          { event: 'metrics.host_refused', host: refused },
          `metrics listener: a request naming ${JSON.stringify(refused)} refused (421); a scraper reaching it by this name needs it in metrics.hosts (METRICS_HOSTS), without the port; a page on a name rebound to this address is refused so${logged.size === REFUSALS_LOGGED ? ' (the last name refused logged)' : ''}`,
        );
      }
      text(res, 421, 'this listener answers for its addresses, localhost, names of one label and those in metrics.hosts (METRICS_HOSTS): add the name a scraper uses there, without the port\n');
      return;
    }
    (aggregator ? aggregator.clusterMetrics() : registry.metrics()).then(
      (body) => res.writeHead(200, { ...METRICS_HEADERS, 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
      (error: unknown) => {
        logger.error({ err: error }, 'metrics collection failed');
        text(res, 500, 'metrics unavailable\n');
      },
    );
  });
  await listen(server, { port, host, names: { port: 'METRICS_PORT', host: 'METRICS_HOST' } });
  const address = server.address() as AddressInfo;
  logger.info({ port: address.port, host }, 'metrics listener');
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/metrics`,
    close: () => new Promise((done) => server.close(() => done())),
  };
}
