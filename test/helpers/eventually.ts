/** Retries an async check until it passes or `tries` run out (for state that propagates, e.g. file watches). */
export async function eventually<T>(check: () => Promise<T>, tries = 40, intervalMs = 100): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await check();
    } catch (error) {
      if (attempt >= tries) throw error;
      await new Promise((done) => setTimeout(done, intervalMs));
    }
  }
}
