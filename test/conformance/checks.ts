/**
 * Counts the conformance checks and prints one total at the end of the run, with one line per test
 * plan, so CI shows how many checks ran and passed. A mocha plugin (.mocharc.json requires it):
 * the root hook runs where the tests ran (once after a serial run; once per file in each worker of
 * a parallel one, as npm test runs) and leaves its counts in a folder the main process made; the
 * global teardown, in the main process once every worker is done, adds them up and prints them.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context, Suite, Test } from 'mocha';

const MARK = `${'/'}test${'/'}conformance${'/'}`;
/** Set by the global setup; workers are forked after it, with the main process's environment. */
const DIR_VARIABLE = 'LATCHKEY_CONFORMANCE_COUNTS';

interface Count {
  passed: number;
  failed: number;
  other: number;
}

function testsOf(suite: Suite): Test[] {
  return [...suite.tests, ...suite.suites.flatMap(testsOf)];
}

/** The test plan a check belongs to: the title of its outermost describe. */
function planOf(test: Test): string {
  let suite = test.parent;
  while (suite?.parent && !suite.parent.root) suite = suite.parent;
  return suite?.title ?? '(root)';
}

function record(this: Context): void {
  const root = this.test?.parent;
  const dir = process.env[DIR_VARIABLE];
  if (!root || !dir) return;
  const plans: Record<string, Count> = {};
  for (const test of testsOf(root).filter((t) => (t.file ?? '').replaceAll('\\', '/').includes(MARK))) {
    const plan = (plans[planOf(test)] ??= { passed: 0, failed: 0, other: 0 });
    if (test.state === 'passed') plan.passed += 1;
    else if (test.state === 'failed') plan.failed += 1;
    else plan.other += 1;
  }
  if (Object.keys(plans).length) writeFileSync(join(dir, `${randomUUID()}.json`), JSON.stringify(plans));
}

export const mochaHooks = { afterAll: record };

export function mochaGlobalSetup(): void {
  process.env[DIR_VARIABLE] = mkdtempSync(join(tmpdir(), 'latchkey-conformance-'));
}

export function mochaGlobalTeardown(): void {
  const dir = process.env[DIR_VARIABLE];
  if (!dir) return;
  const plans = new Map<string, Count>();
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.json'))) {
    for (const [plan, count] of Object.entries(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, Count>)) {
      const sum = plans.get(plan) ?? { passed: 0, failed: 0, other: 0 };
      plans.set(plan, { passed: sum.passed + count.passed, failed: sum.failed + count.failed, other: sum.other + count.other });
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (!plans.size) return;
  const total = { passed: 0, failed: 0, other: 0 };
  const width = Math.max(...[...plans.keys()].map((plan) => plan.length));
  const lines = [...plans].sort(([a], [b]) => a.localeCompare(b)).map(([plan, count]) => {
    total.passed += count.passed;
    total.failed += count.failed;
    total.other += count.other;
    const extra = count.failed || count.other ? ` (${count.failed} failed${count.other ? `, ${count.other} not run` : ''})` : '';
    return `    ${plan.padEnd(width)}  ${String(count.passed).padStart(3)} of ${count.passed + count.failed + count.other}${extra}`;
  });
  const checks = total.passed + total.failed + total.other;
  console.log(
    `\n  Conformance checks: ${total.passed} of ${checks} passed` +
      `${total.failed ? `, ${total.failed} FAILED` : ''}${total.other ? `, ${total.other} not run` : ''}\n${lines.join('\n')}\n`,
  );
}
