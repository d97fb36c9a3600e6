/**
 * Retries an async check until it passes or `tries` run out (for state that propagates, e.g. file
 * watches): `check` again every `intervalMs` until it passes, `tries` times at most. By default 10 s: what a
 * server does in the background (a sweep, a poll of the feed, a delivery) may wait that long on a
 * loaded CI runner (4 s was too little for a resource server's poll after a failed one). A check
 * that passes at once costs nothing more.
 */
export async function eventually<T>(check: () => Promise<T>, tries = 100, intervalMs = 100): Promise<T> {
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
