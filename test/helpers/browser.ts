/**
 * Debian's Chromium driven by playwright-core, as the person in browser tests, with numbered
 * screenshots into test/artifacts/<name>/.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../../src/paths.js';

/** `extraArgs`: more command-line switches, e.g. --host-resolver-rules for a test's own host names. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`Chromium is not at ${executablePath}: apt-get install chromium, or set CHROMIUM_PATH`);
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', ...extraArgs] });
}

/**
 * Returns shot(page, name): saves NN-name.png of the whole page in test/artifacts/<folder>/, after
 * removing the screenshots a previous run left there (only its own: other suites keep theirs in
 * subfolders, e.g. browser/ and browser/passkeys/).
 */
export function screenshots(folder: string): (page: Page, name: string) => Promise<void> {
  const dir = join(ROOT, 'test', 'artifacts', folder);
  mkdirSync(dir, { recursive: true });
  for (const file of readdirSync(dir)) if (file.endsWith('.png')) rmSync(join(dir, file));
  let count = 0;
  return async (page, name) => {
    count += 1;
    const file = join(dir, `${String(count).padStart(2, '0')}-${name}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
    } catch (error) {
      // A screenshot is a record for people, not a check: Chromium once hung taking one while a
      // WebAuthn request was pending (CI rehearsal, passkeys suite). The test's assertions decide.
      console.warn(`screenshot ${name} not taken: ${(error as Error).message.split('\n')[0]}`);
    }
  };
}

/**
 * Records the Content-Security-Policy violations Chromium reports on `page` into `violations` (a test
 * asserts it stays empty), and its complaints about our Permissions-Policy header (a feature it does
 * not know is ignored with an error on every page).
 */
export function watchCsp(page: Page, violations: string[]): Page {
  page.on('console', (message) => {
    if (/Content Security Policy|Permissions-Policy/i.test(message.text())) violations.push(message.text());
  });
  return page;
}
