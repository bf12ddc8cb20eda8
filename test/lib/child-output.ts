// A child process's output as it comes, for tests that wait for a line from a program they started.
import type { ChildProcess } from 'node:child_process';

export interface OutputWatch {
  /** all the output so far */
  text(): string;
  /**
   * Resolves once the output holds `want`; rejects, with the output, when the child exits first or after `ms`.
   */
  waitFor(want: string, ms: number): Promise<void>;
}

/** Collects the named streams of `child` (`what` names it in errors). */
export function watchOutput(child: ChildProcess, streams: ('stdout' | 'stderr')[], what: string): OutputWatch {
  let text = '';
  // (undefined while it runs; its exit code, or null for a signal, once its streams closed)
  let exit: number | null | undefined;
  const waiters = new Set<() => void>();
  const wake = (): void => { for (const w of [...waiters]) w(); };
  for (const s of streams) child[s]!.on('data', (d: Buffer) => { text += d.toString(); wake(); });
  child.on('close', (code) => { exit = code; wake(); });
  return {
    text: () => text,
    waitFor: (want, ms) => new Promise<void>((resolve, reject) => {
      const end = (f: () => void): void => { clearTimeout(timer); waiters.delete(check); f(); };
      const check = (): void => {
        if (text.includes(want)) end(resolve);
        else if (exit !== undefined) end(() => reject(new Error(`${what} exited (${exit}) before printing '${want}': ${text}`)));
      };
      const timer = setTimeout(() => end(() => reject(new Error(`${what} did not print '${want}' in ${ms} ms: ${text}`))), ms);
      waiters.add(check);
      check();
    }),
  };
}
