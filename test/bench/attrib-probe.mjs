/**
 * Preloaded into a server by tail-attrib.ts (NODE_OPTIONS=--import): what could make a slow request,
 * each with its time, to line up with the load generator's slow requests. Written as JSON to
 * ATTRIB_PROBE_OUT when the process exits:
 *
 * - gc: every GC pause (start, length, kind: 1 scavenge, 2 minor mark-sweep, 4 mark-compact,
 *   8 incremental marking, 16 weak callbacks), and the old space's size after each mark-compact;
 * - gaps: every time the event loop did not come round for more than ATTRIB_PROBE_GAP_MS (10) ms
 *   (a 1-ms timer came late), with the main thread's CPU time meanwhile: about the gap's length
 *   when it ran (synchronous work or a GC pause), much less when it was off its core;
 * - requests: every HTTP request's time in the server, from node's 'http.server.request.start'
 *   to the response's 'http.server.response.finish' (epoch ms of its start, its length), so that
 *   a request slow at the client but quick here was delayed before the server read it;
 * - redisStalls: a PING of the probe's own to Redis (ATTRIB_PROBE_REDIS, host:port) answered after
 *   more than 5 ms.
 *
 * Times are epoch milliseconds (performance.timeOrigin + now), as in stall-probe.mjs.
 */
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import process from 'node:process';
import { setInterval, setTimeout } from 'node:timers';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

const origin = performance.timeOrigin;
const gapMs = Number(process.env.ATTRIB_PROBE_GAP_MS ?? 10);
const gc = [];
/** The heap's size after each mark-compact (MiB, old space used), to see an old generation grow. */
const old = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.push([origin + entry.startTime, entry.duration, entry.detail?.kind ?? 0]);
    if (entry.detail?.kind === 4) old.push([origin + entry.startTime, Math.round(getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_used_size / 2 ** 20)]);
  }
}).observe({ entryTypes: ['gc'] });

const gaps = [];
const threadCpuMs = () => {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1000;
};
let last = performance.now();
let lastCpu = threadCpuMs();
const tick = () => {
  const now = performance.now();
  const cpu = threadCpuMs();
  if (now - last > gapMs) gaps.push([origin + last, now - last, cpu - lastCpu]);
  last = now;
  lastCpu = cpu;
};
setInterval(tick, 1).unref();

// ATTRIB_PROBE_REDIS (host:port): a PING on a connection of the probe's own whenever the last one
// was answered, at most every millisecond; answers later than 5 ms are kept (start, length): Redis
// (or its core) held, seen from a process whose own loop is not (the gaps above say when it was).
const redisStalls = [];
if (process.env.ATTRIB_PROBE_REDIS) {
  const [host, port] = process.env.ATTRIB_PROBE_REDIS.split(':');
  const socket = connect({ host, port: Number(port) });
  socket.setNoDelay(true);
  socket.unref();
  let sent = 0;
  const ping = () => {
    sent = performance.now();
    socket.write('PING\r\n');
  };
  socket.on('connect', ping);
  socket.on('data', () => {
    const ms = performance.now() - sent;
    if (ms > 5) redisStalls.push([origin + sent, ms]);
    setTimeout(ping, 1).unref();
  });
  socket.on('error', () => {});
}

const starts = new WeakMap();
const requests = [];
subscribe('http.server.request.start', ({ response }) => starts.set(response, performance.now()));
subscribe('http.server.response.finish', ({ response }) => {
  const start = starts.get(response);
  if (start !== undefined) requests.push([origin + start, performance.now() - start]);
});

// A CPU profile's sample times are the monotonic clock in µs: with this, epoch = origin + (t / 1000 - monotonic).
const monotonic = Number(process.hrtime.bigint()) / 1e6 - performance.now();
process.on('exit', () => writeFileSync(process.env.ATTRIB_PROBE_OUT, JSON.stringify({ gc, old, gaps, redisStalls, requests, origin, monotonic })));
