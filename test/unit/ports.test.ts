/**
 * test/helpers/ports.ts: the ports tests pick for their servers are never handed out twice while
 * the process that picked one lives, in one process or across the run's processes (npm test runs
 * five files at a time, and tests start processes that pick their own).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';

const PORTS = new URL('../helpers/ports.ts', import.meta.url).href;

/** `count` ports picked at once by a process of its own, which holds them until told to exit. */
function picker(count: number): { pid: string; ports: Promise<number[]>; exit: () => Promise<void> } {
  const script = `const { freePort } = await import(${JSON.stringify(PORTS)}); const ports = await Promise.all(Array.from({ length: ${count} }, () => freePort())); console.log(JSON.stringify(ports)); process.stdin.once('data', () => process.exit(0));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const ports = new Promise<number[]>((done, fail) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.endsWith('\n')) done(JSON.parse(out) as number[]);
    });
    child.once('exit', (code) => fail(new Error(`picker exited ${code}`)));
  });
  const exit = () => new Promise<void>((done) => {
    child.once('exit', () => done());
    child.stdin.end('\n');
  });
  return { pid: String(child.pid), ports, exit };
}

describe('test helpers: free ports reserved across processes', function () {
  this.timeout(60_000);

  it('hands out no port twice in one process, and marks each as this process’s', async () => {
    const ports = await Promise.all(Array.from({ length: 300 }, () => freePort()));
    assert.equal(new Set(ports).size, ports.length);
    for (const port of ports) assert.equal(readFileSync(join(tmpdir(), 'latchkey-test-ports', String(port)), 'utf8'), String(process.pid));
  });

  it('hands out no port two living processes picked at once, and frees a process’s ports when it exits', async () => {
    // 2 × 1000 of about 22,000 ports: picked at random without the reservation, some 45 would be both's.
    const [a, b] = [picker(1000), picker(1000)];
    const [first, second] = await Promise.all([a.ports, b.ports]);
    const both = first.filter((port) => second.includes(port));
    assert.deepEqual(both, []);
    await Promise.all([a.exit(), b.exit()]);
    // Freed: no reservation of theirs is left (a port freed may already be another test file's, running beside this one).
    const owner = (port: number) => {
      try {
        return readFileSync(join(tmpdir(), 'latchkey-test-ports', String(port)), 'utf8');
      } catch {
        return undefined;
      }
    };
    assert.deepEqual([...first, ...second].filter((port) => [a.pid, b.pid].includes(owner(port) ?? '')), []);
  });
});
