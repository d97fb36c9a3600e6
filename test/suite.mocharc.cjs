/**
 * `npm test`'s mocha settings: .mocharc.json's (which a single file's `npx mocha FILE` keeps using),
 * five files at a time, every suite's files in the order mocha hands them to its workers.
 *
 * Five at a time: a file spends most of its time waiting (on the CLI processes, servers, browsers
 * and Redis it starts, and on lifetimes it lets pass), not computing: three at a time kept an idle
 * two-core runner's cores about 40% busy (docs/performance.md, "CI time").
 *
 * Order: a worker takes the next file of the list when it is done with one, so a long file near the
 * end of the list would run on alone after the others finished. LONGEST_FIRST names the files that
 * took longest (about 35 s or more in a full run), longest first; then every other file, as the
 * globs list them. A file named here that is gone fails the run: rename it here too.
 */
const { existsSync, globSync } = require('node:fs');
const base = require('../.mocharc.json');

const LONGEST_FIRST = [
  'test/e2e/blips-3.test.ts',
  'test/e2e/blips-thirteenth.test.ts',
  'test/integration/cli.test.ts',
  'test/integration/bench.test.ts',
  'test/integration/cli-embedded.test.ts',
  'test/e2e/person-cutoff-endings.test.ts',
  'test/e2e/upstreams.test.ts',
  'test/e2e/factors-fourteenth.test.ts',
  'test/e2e/factors-browser-eighteenth.test.ts',
  'test/e2e/store-growth.test.ts',
  'test/e2e/granting-attacks.test.ts',
  'test/e2e/redteam-endings-25.test.ts',
  'test/e2e/redteam-sessions.test.ts',
  'test/e2e/revocation.test.ts',
  'test/e2e/privileged-attacks.test.ts',
  'test/e2e/operator-endings.test.ts',
  'test/e2e/registration.test.ts',
  'test/e2e/redteam-web.test.ts',
  'test/e2e/cluster-endings.test.ts',
  'test/e2e/initial-access-token.test.ts',
  'test/e2e/registered-client-ids.test.ts',
  'test/e2e/blips-6.test.ts',
  'test/e2e/pending-endings.test.ts',
  'test/e2e/redteam-endings-17.test.ts',
  'test/e2e/redteam-granted-22.test.ts',
  'test/e2e/redteam-endings-15.test.ts',
  'test/e2e/redteam-endings-16.test.ts',
  'test/e2e/held-issuance-endings.test.ts',
  'test/e2e/redteam-endings-22.test.ts',
  'test/integration/operations.test.ts',
  'test/e2e/endings-fourteenth.test.ts',
  'test/e2e/granted-fourteenth.test.ts',
];

const SUITES = ['unit', 'integration', 'e2e', 'conformance', 'fuzz'].map((suite) => `test/${suite}/**/*.test.ts`);

const missing = LONGEST_FIRST.filter((file) => !existsSync(file));
if (missing.length) throw new Error(`test/suite.mocharc.cjs: LONGEST_FIRST names files that are not there: ${missing.join(', ')}`);

const rest = SUITES.flatMap((pattern) => globSync(pattern).sort()).filter((file) => !LONGEST_FIRST.includes(file));

module.exports = { ...base, parallel: true, jobs: 5, spec: [...LONGEST_FIRST, ...rest] };
