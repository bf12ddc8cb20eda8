// Capped exponential backoff shared by the targets that resume a lost stream (SSH connection, Kubernetes
// exec): wait, try, double the wait up to a cap, until the attempt succeeds, the capture is stopped, an
// error says retrying is pointless, or the time budget is spent.
export interface Backoff {
  /** First delay in ms. */
  first: number;
  /** Largest delay in ms. */
  max: number;
  /** Give up when the next try would start later than this many ms after the first wait began; none: retry until stopped. */
  giveUpMs?: number;
}

export interface RetryOptions {
  backoff: Backoff;
  /** Aborting it (stop) ends a wait at once; a try already running is awaited. */
  signal: AbortSignal;
  /** Before each wait: the delay and the last try's error (null before the first try). */
  onWait?(delayMs: number, lastError: unknown): void;
  /** True for errors no retry can fix (rejected credentials...): returned at once. */
  fatal?(e: unknown): boolean;
}

export type RetryResult<T> =
  | { outcome: 'done'; value: T }
  | { outcome: 'stopped' }
  | { outcome: 'failed'; error: unknown; gaveUp: boolean };

export async function retryWithBackoff<T>(attempt: () => Promise<T>, o: RetryOptions): Promise<RetryResult<T>> {
  const began = Date.now();
  let delay = o.backoff.first;
  let lastError: unknown = null;
  for (;;) {
    if (o.signal.aborted) return { outcome: 'stopped' };
    o.onWait?.(delay, lastError);
    await abortableSleep(delay, o.signal);
    if (o.signal.aborted) return { outcome: 'stopped' };
    try {
      return { outcome: 'done', value: await attempt() };
    } catch (e) {
      lastError = e;
      if (o.fatal?.(e)) return { outcome: 'failed', error: e, gaveUp: false };
      delay = Math.min(delay * 2, o.backoff.max);
      const budget = o.backoff.giveUpMs;
      if (budget !== undefined && Date.now() + delay - began > budget) return { outcome: 'failed', error: e, gaveUp: true };
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
