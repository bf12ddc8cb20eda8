// A Kubernetes watch kept open for as long as a session needs it: opened again when the API server ends it, and
// closed for good by the function it returns, even when that is called while a re-open is under way.
import { Watch, type KubeConfig } from '@kubernetes/client-node';

/**
 * Watches `path` until the returned function is called, opening the watch again when the server ends it. `from`: the
 * resourceVersion the first watch starts at; a re-opened one takes the current state (an old version may have been
 * compacted away).
 */
export async function keepWatching<T>(kc: KubeConfig, path: string, query: Record<string, string>, from: string | undefined, on: (type: string, obj: T) => void): Promise<() => void> {
  let stopped = false;
  let current: AbortController | null = null;
  const start = async (rv: string | undefined) => {
    if (stopped) return;
    const ac = await new Watch(kc).watch(path, { ...query, ...(rv ? { resourceVersion: rv } : {}) }, (type: string, obj: T) => {
      if (!stopped) on(type, obj);
    }, (e: unknown) => {
      // (a refused watch stays refused: asking again every half second would only add to the API server's load)
      if (!stopped && (e as { statusCode?: number } | null)?.statusCode !== 403) setTimeout(() => void start(undefined).catch(() => undefined), 500).unref();
    });
    // why: the stop may have come while this watch was opening; it aborted the one before, so this one is closed here
    if (stopped) ac.abort();
    else current = ac;
  };
  await start(from);
  return () => {
    stopped = true;
    current?.abort();
  };
}
