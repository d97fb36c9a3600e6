/**
 * V8's young generation for `latchkey serve`. Node 24 lets it grow to 64 MiB per semi-space on a
 * machine with memory to spare, and a scavenge of one that size held the event loop for tens of
 * milliseconds under load: at 80% of peak, the requests queued behind those pauses made the p99
 * (issue #18). At 16 MiB the pauses are 4-8 times shorter and about four times as frequent, with
 * no more GC time per request (README, Performance).
 *
 * Node reads the size only as the process starts, so `serve` starts itself again with it, in the
 * same process (execve: the same pid, signals and file descriptors), unless a size was given on
 * node's command line or in NODE_OPTIONS (`--max-semi-space-size=0` leaves it to V8). Workers of
 * `serve --workers N` inherit the flag from their primary.
 */
export const SEMI_SPACE_FLAG = '--max-semi-space-size';
/** MiB per semi-space (the young generation is two). */
export const SEMI_SPACE_MIB = 16;

/** V8 spells its flags with - or _. */
const normalized = (arg: string) => arg.replace(/^--([^=]*)/, (_, name: string) => `--${name.replaceAll('_', '-')}`);

/** The node flags `serve` adds: none when the young generation's size was given. */
export function heapFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)]
    .map(normalized)
    .some((arg) => arg === SEMI_SPACE_FLAG || arg.startsWith(`${SEMI_SPACE_FLAG}=`));
  return given ? [] : [`${SEMI_SPACE_FLAG}=${SEMI_SPACE_MIB}`];
}

/**
 * Replaces this process with itself started with heapFlags, when there are any; returns when there
 * are none, or where Node cannot replace a process (Windows: it then serves with V8's default).
 */
export function restartWithHeapFlags(): void {
  const flags = heapFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (!flags.length || typeof process.execve !== 'function') return;
  process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
