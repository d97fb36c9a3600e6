/**
 * `latchkey/resource-server` is importable by package name (package.json "exports"), from the
 * compiled dist/ (npm test builds it first), with type declarations beside it, and it imports
 * jose, node: built-ins and its own modules, nothing else: a resource server does not load the provider.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';

describe('package export: latchkey/resource-server', () => {
  it('resolves to dist/, with declarations, exports createResourceServer, TokenRejected, the DPoP stores, the RFC 9728 helper and MAX_CLOCK_TOLERANCE, and imports only jose and node:crypto', function () {
    this.timeout(20_000);
    const built = join(ROOT, 'dist', 'resource-server', 'index.js');
    assert.ok(existsSync(join(ROOT, 'dist', 'resource-server', 'index.d.ts')), 'declarations are built');
    const script = "const m = await import('latchkey/resource-server'); console.log(JSON.stringify({ exports: Object.keys(m).sort(), resolved: import.meta.resolve('latchkey/resource-server') }));";
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    const { exports, resolved } = JSON.parse(result.stdout) as { exports: string[]; resolved: string };
    assert.deepEqual(exports, ['MAX_CLOCK_TOLERANCE', 'MemoryReplayStore', 'ProtectedResource', 'ResourceServer', 'RotatingNonces', 'TokenRejected', 'createProtectedResource', 'createResourceServer']);
    assert.equal(new URL(resolved).pathname, built);
    const importsOf = (file: string) => [...readFileSync(file, 'utf8').matchAll(/^import .* from '([^']+)';$/gm)].map((match) => match[1]);
    assert.deepEqual(importsOf(built), ['jose', './challenge.js', './dpop.js']);
    assert.deepEqual(importsOf(join(ROOT, 'dist', 'resource-server', 'dpop.js')), ['node:crypto', 'jose']);
    // RFC 9728 (protected-resource.ts) comes along and imports only the shared challenge builder, which imports nothing at all.
    assert.deepEqual(importsOf(join(ROOT, 'dist', 'resource-server', 'protected-resource.js')), ['./challenge.js']);
    assert.doesNotMatch(readFileSync(join(ROOT, 'dist', 'resource-server', 'challenge.js'), 'utf8'), /^import /m);
  });
});
