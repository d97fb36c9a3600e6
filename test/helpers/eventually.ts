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

/**
 * `request` again while it is answered 503, the first other answer: for a step a test did not mean
 * to blip, on a server whose store commands time out quickly (REDIS_COMMAND_TIMEOUT 500 ms), which a
 * loaded runner makes happen now and then. The answer that counts is the first that is not an outage.
 */
export async function pastOutages<T extends { readonly status: number }>(request: () => Promise<T>, tries = 20, intervalMs = 250): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    const answer = await request();
    if (answer.status !== 503 || attempt >= tries) return answer;
    await new Promise((done) => setTimeout(done, intervalMs));
  }
}
