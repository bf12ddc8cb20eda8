// Polls a condition every 100 ms until it holds (the value it returns), for tests that wait on another process.

/** The first truthy value of f, tried `tries` times 100 ms apart; throws "timed out waiting for <what>" after. */
export async function until<T>(what: string, f: () => T | Promise<T>, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await f();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
