/**
 * Fuzzing in CI: every target of test/fuzz/harness.ts with a fixed seed and a few runs each, so
 * that a run is quick and repeatable. FUZZ_RUNS and FUZZ_SEED change both; `npm run fuzz -- --runs
 * 10000` is the long run.
 */
import assert from 'node:assert/strict';
import { FuzzBench, targets, type Failure } from './harness.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 25);
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_901);

function report(failures: Failure[]): string {
  return failures
    .slice(0, 5)
    .map((failure) => `  ${failure.problem}\n    ${failure.request}\n    → ${failure.status} ${failure.body.slice(0, 400)}`)
    .join('\n');
}

describe(`fuzzing every endpoint and form (fast-check, seed ${SEED}, ${RUNS} runs per target)`, function () {
  this.timeout(300_000);
  let bench: FuzzBench;

  before(async () => {
    bench = await FuzzBench.start();
  });
  after(async () => {
    if (bench) {
      const { requests, serverErrors, runs, byStatus } = bench.figures;
      console.log(`\n  Fuzzing: ${runs} runs, ${requests} requests, ${serverErrors} answered 5xx; statuses ${JSON.stringify(byStatus)}\n`);
    }
    await bench?.stop();
  });

  for (const target of targets()) {
    it(`${target.name}: no 5xx, no stack trace, a well-formed protocol answer, and the server still answers`, async () => {
      const failures = await bench.fuzz(target, RUNS, SEED);
      assert.equal(failures.length, 0, `${failures.length} bad answers, the first:\n${report(failures)}`);
    });
  }
});
