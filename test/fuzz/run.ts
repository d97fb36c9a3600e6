/**
 * The long fuzzing run: `npm run fuzz -- --runs 10000 [--seed N] [--target NAME]…`.
 *
 * Runs every target of test/fuzz/harness.ts (or the named ones) for `--runs` generated requests
 * each against one Latchkey on a real redis-server, then prints the figures (requests, answers by
 * status, 5xx count, duration, per target) and the first bad answers. Exits 1 if any answer was
 * bad or the server stopped answering. The seed is printed, so a failing run can be repeated.
 */
import { parseArgs } from 'node:util';
import { FuzzBench, targets } from './harness.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    seed: { type: 'string' },
    target: { type: 'string', multiple: true },
  },
});
const runs = Number(values.runs);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
if (!Number.isSafeInteger(runs) || runs <= 0 || !Number.isSafeInteger(seed)) {
  console.error('usage: npm run fuzz -- [--runs N] [--seed N] [--target NAME]…');
  process.exit(2);
}
const chosen = targets().filter((target) => !values.target?.length || values.target.includes(target.name));
if (!chosen.length) {
  console.error(`no such target; targets: ${targets().map((target) => target.name).join(', ')}`);
  process.exit(2);
}

const started = process.hrtime.bigint();
const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
console.log(`fuzzing ${chosen.length} targets, ${runs} runs each, seed ${seed}`);
const bench = await FuzzBench.start();
let exitCode = 0;
try {
  for (const target of chosen) {
    const before = bench.figures.requests;
    const failures = await bench.fuzz(target, runs, seed);
    console.log(`  ${target.name.padEnd(32)} ${String(bench.figures.requests - before).padStart(7)} requests  ${failures.length ? `${failures.length} BAD` : 'ok'}  (${seconds().toFixed(0)} s)`);
  }
  await bench.stillAnswers();
} catch (error) {
  console.error(`the run stopped: ${String(error)}`);
  exitCode = 1;
} finally {
  await bench.stop();
}

const { requests, serverErrors, byStatus, failures, runs: total } = bench.figures;
console.log(`
runs:          ${total}
requests:      ${requests}
5xx answers:   ${serverErrors}
bad answers:   ${failures.length}
by status:     ${Object.entries(byStatus).map(([status, count]) => `${status}: ${count}`).join(', ')}
duration:      ${seconds().toFixed(1)} s (${(requests / seconds()).toFixed(0)} requests/s)
seed:          ${seed}`);
for (const failure of failures.slice(0, 10)) {
  console.log(`\n[${failure.target}] ${failure.problem}\n  ${failure.request}\n  → ${failure.status} ${failure.body.slice(0, 500)}`);
}
process.exit(failures.length || exitCode ? 1 : 0);
