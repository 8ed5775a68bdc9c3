/** Waiting between attempts, shared by everything that retries (sinks, source supervisors). */

/** Full-jitter exponential backoff: a random delay up to min * 2^attempt, capped at max. */
export function backoff(attempt: number, min: number, max: number): number {
  const ceiling = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return min / 2 + Math.random() * (ceiling - min / 2);
}

/** Resolves after `ms`, or at once when `signal` aborts (stop must not wait out a backoff). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** `p`, or a rejection with `message` after `ms` (a peer that does not answer must not hang a caller). */
export function withTimeout<T>(p: Promise<T>, ms: number, message = `no answer within ${ms} ms`): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_r, reject) => (t = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(t));
}
