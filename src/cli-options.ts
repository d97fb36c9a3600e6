/**
 * What the CLI's options take more than once. Commander keeps the last value of an option given
 * twice: `grants revoke --user alice --user bob` revoked bob's grants alone and said nothing of
 * alice, `clients update demo --require-mfa --no-require-mfa` left the second factor off, and
 * `clients add --scope openid --scope email` made a client that may not ask for `openid`
 * (newcomer, eleventh pass). An option that gathers its values says so with `collect`; any other,
 * given again with another value (or with its `--no-` form), is a usage error.
 */
import type { EventEmitter } from 'node:events';
import type { Command } from 'commander';

/** Gathers a repeatable option's values: `--redirect-uri a --redirect-uri b`. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** A value not to repeat on the terminal: a client secret. */
const SECRET = /secret/;

/** Installs the refusal on `command` and every command under it. */
export function oneValueEach(command: Command): void {
  const seen = new Map<string, { flag: string; value: string | boolean }>();
  // Commander's Command is an EventEmitter at runtime; its typings leave that out.
  for (const option of command.options) {
    // A hidden option (`--password`) is taken only to be refused with its own reason.
    if (option.variadic || option.parseArg === collect || option.hidden || !option.long) continue;
    // Before commander's own listener, which would overwrite the first value.
    (command as unknown as EventEmitter).prependListener(`option:${option.name()}`, (raw: string | undefined) => {
      const flag = option.long!;
      const value = raw ?? !option.negate;
      const before = seen.get(option.attributeName());
      seen.set(option.attributeName(), { flag, value });
      if (!before || (before.flag === flag && before.value === value)) return;
      if (before.flag !== flag) command.error(`${before.flag} and ${flag} both given: choose one`);
      const values = SECRET.test(flag) ? '' : ` (${JSON.stringify(before.value)}, then ${JSON.stringify(value)})`;
      const scopes = flag === '--scope' ? `; several scopes go space-separated in one: --scope "${String(before.value)} ${String(value)}"` : '';
      command.error(`${flag} given twice${values}: it takes one value${scopes}`);
    });
  }
  for (const sub of command.commands) oneValueEach(sub);
}
