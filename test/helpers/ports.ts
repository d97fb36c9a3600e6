/**
 * Free ports for the servers tests start, or have a child process start, a moment later: picked at
 * random below the kernel's ephemeral range, and reserved across every process of the run.
 *
 * Below the ephemeral range: a port the kernel chose (listen on 0) is an ephemeral one, which any
 * outgoing connection of another test file running beside this one (npm test runs five at a time),
 * of Chromium or of a load generator may take as its local port before the server binds it
 * (EADDRINUSE).
 *
 * Reserved: a port free when it is picked stays free until its server binds it, a second or more
 * later under load (a `latchkey serve` process starting, a server restarted on the same port, a
 * redis-server killed and started again). Checked free alone, another file's pick in that window
 * took the same port: its server started, ours failed with EADDRINUSE, or, for a server process
 * whose readiness is its /healthz, the other file's server answered in its place (a CI rehearsal
 * of 2026-12-05: two such collisions in one run, an unknown client at a skewed instance). A pick is
 * a file named for the port in one directory, made exclusively and kept for the life of the
 * process (a test keeps its port across restarts); one left by a process gone is taken over.
 */
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The kernel's ephemeral ports (Linux), from which it picks the local port of every outgoing
 * connection; a port a test server is about to take must not be one of them.
 */
function ephemeralPorts(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low! > 0 && high! >= low!) return { low: low!, high: high! };
  } catch {
    // Not Linux: assume the IANA range.
  }
  return { low: 49152, high: 65535 };
}
const EPHEMERAL = ephemeralPorts();
/** Ports below the ephemeral range that tests pick from (above the well-known and common service ports). */
const PICK_FROM = 10_000;
/** Redis Cluster's bus listens on its node's port + 10000 (`cluster-port` is Redis 7's only). */
const CLUSTER_BUS_OFFSET = 10_000;

const RESERVED = join(tmpdir(), 'latchkey-test-ports');
/** The ports this process reserved, released when it exits. */
const held = new Set<number>();
process.once('exit', () => {
  for (const port of held) rmSync(join(RESERVED, String(port)), { force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether this process now holds `port`'s reservation (false when another live process holds it). */
function reserve(port: number): boolean {
  if (held.has(port)) return false;
  mkdirSync(RESERVED, { recursive: true });
  const file = join(RESERVED, String(port));
  const mine = String(process.pid);
  // Written whole, then linked in (made only if it is not there): a file made empty and written
  // after was read by another process in between as left by no one, and taken over, both holding it.
  const staged = `${file}.${mine}`;
  writeFileSync(staged, mine);
  try {
    linkSync(staged, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const owner = Number(readFileSync(file, 'utf8'));
    if (owner > 0 && alive(owner)) {
      rmSync(staged, { force: true });
      return false;
    }
    // Renamed in, then read back: of two processes taking it over at once, the last rename holds it.
    renameSync(staged, file);
    if (readFileSync(file, 'utf8') !== mine) return false;
  }
  rmSync(staged, { force: true });
  held.add(port);
  return true;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/** A free port, reserved for this process (see above); one the kernel picks where too few are below its ephemeral range. */
export async function freePort(): Promise<number> {
  const span = Math.min(EPHEMERAL.low, 65536) - PICK_FROM;
  if (span >= 1000) return pick(span, [0]);
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/**
 * A free port for a Redis Cluster node whose bus port (port + 10000) is free too, both reserved and
 * below the ephemeral range: a bus port in the ephemeral range, or taken by a file running beside,
 * made the node abort at start ("Failed listening on port").
 */
export async function freeClusterPort(): Promise<number> {
  return pick(Math.min(EPHEMERAL.low, 65536) - CLUSTER_BUS_OFFSET - PICK_FROM, [0, CLUSTER_BUS_OFFSET]);
}

/** A port from PICK_FROM to PICK_FROM + span whose ports at `offsets` from it are all free and now reserved. */
async function pick(span: number, offsets: readonly number[]): Promise<number> {
  if (span < 1000) throw new Error(`the kernel's ephemeral ports start at ${EPHEMERAL.low}: too few ports below them to pick from`);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = PICK_FROM + Math.floor(Math.random() * span);
    const ports = offsets.map((offset) => port + offset);
    if (!ports.every(reserve)) continue;
    if ((await Promise.all(ports.map(bindable))).every(Boolean)) return port;
  }
  throw new Error(`no free port below the ephemeral range (from ${PICK_FROM}) in 100 tries`);
}
