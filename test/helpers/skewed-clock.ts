import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../../src/paths.js';

/** The env that runs a Latchkey process (the CLI, `latchkey serve`) on a clock `ms` milliseconds off (ahead when positive). */
export function skewedClock(ms: number): Record<string, string> {
  return {
    NODE_OPTIONS: `--import=${pathToFileURL(join(ROOT, 'test', 'helpers', 'skewed-clock.mjs')).href}`,
    LATCHKEY_TEST_CLOCK_SKEW_MS: String(ms),
  };
}
