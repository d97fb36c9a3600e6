/**
 * Counts the conformance checks at the end of a run and prints one line per test plan, so CI
 * shows how many checks ran and passed. A root hook plugin (.mocharc.json requires this file): it
 * runs once after a serial run, over every file; in a parallel run (npm test) once per file, in
 * the worker that ran it, over that file's checks.
 */
import type { Context, Suite, Test } from 'mocha';

const MARK = `${'/'}test${'/'}conformance${'/'}`;

function testsOf(suite: Suite): Test[] {
  return [...suite.tests, ...suite.suites.flatMap(testsOf)];
}

/** The test plan a check belongs to: the title of its outermost describe. */
function planOf(test: Test): string {
  let suite = test.parent;
  while (suite?.parent && !suite.parent.root) suite = suite.parent;
  return suite?.title ?? '(root)';
}

function report(this: Context): void {
  const root = this.test?.parent;
  if (!root) return;
  const checks = testsOf(root).filter((test) => (test.file ?? '').replaceAll('\\', '/').includes(MARK));
  if (!checks.length) return;
  const plans = new Map<string, { passed: number; failed: number; other: number }>();
  for (const test of checks) {
    const plan = plans.get(planOf(test)) ?? { passed: 0, failed: 0, other: 0 };
    if (test.state === 'passed') plan.passed += 1;
    else if (test.state === 'failed') plan.failed += 1;
    else plan.other += 1;
    plans.set(planOf(test), plan);
  }
  const total = { passed: 0, failed: 0, other: 0 };
  const lines: string[] = [];
  const width = Math.max(...[...plans.keys()].map((plan) => plan.length));
  for (const [plan, count] of plans) {
    total.passed += count.passed;
    total.failed += count.failed;
    total.other += count.other;
    const extra = count.failed || count.other ? ` (${count.failed} failed${count.other ? `, ${count.other} not run` : ''})` : '';
    lines.push(`    ${plan.padEnd(width)}  ${String(count.passed).padStart(3)} of ${count.passed + count.failed + count.other}${extra}`);
  }
  console.log(
    `\n  Conformance checks: ${total.passed} of ${checks.length} passed` +
      `${total.failed ? `, ${total.failed} FAILED` : ''}${total.other ? `, ${total.other} not run` : ''}\n${lines.join('\n')}\n`,
  );
}

export const mochaHooks = { afterAll: report };
