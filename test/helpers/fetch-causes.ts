/**
 * Loaded before every test file (.mocharc.json): a fetch that fails says why in its message. Node's
 * fetch throws a bare "fetch failed" and keeps the reason (ECONNREFUSED, a reset, a connect timeout)
 * in its causes, which mocha does not print: a flake in a CI run said nothing more (2026-12-06, a
 * "before all" hook's first token request). The message keeps its start; only the causes are added.
 */
const original = globalThis.fetch;

function causes(error: unknown): string[] {
  const found: string[] = [];
  for (let cause = (error as { cause?: unknown }).cause; cause instanceof Error && found.length < 5; cause = (cause as { cause?: unknown }).cause) {
    const code = (cause as { code?: unknown }).code;
    found.push(typeof code === 'string' && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message);
  }
  return found;
}

globalThis.fetch = async function fetchSayingWhy(input, init) {
  try {
    return await original(input, init);
  } catch (error) {
    const why = error instanceof TypeError && !error.message.includes(' (cause: ') ? causes(error) : [];
    if (error instanceof TypeError && why.length) {
      const target = input instanceof Request ? input.url : String(input);
      error.message += ` (cause: ${why.join(' ← ')}; ${init?.method ?? (input instanceof Request ? input.method : 'GET')} ${target.slice(0, 120)})`;
    }
    throw error;
  }
};
