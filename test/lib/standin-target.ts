// A capture target whose node streams are the test's: it hands the service what the test writes, so the order of
// arrival, the end and the pace are the test's. For CoreService tests that need a live capture without a helper.
import type { CaptureHandlers, CaptureTarget } from '../../src/targets/target.js';

export interface StandInTarget {
  target: CaptureTarget;
  /** the service's handlers, once the capture has started: onStream(node, stream) begins a node's stream */
  handlers(): CaptureHandlers;
  /** ends the capture, as a helper that stopped would */
  finish(): void;
}

export function standInTarget(): StandInTarget {
  let handlers: CaptureHandlers | null = null;
  let finish = (): void => undefined;
  const target: CaptureTarget = {
    kind: 'local',
    uri: 'local',
    listNodes: async () => [],
    preflight: async () => [],
    openShell: async () => { throw new Error('no shells here'); },
    close: async () => undefined,
    start: async (_opts, h) => {
      handlers = h;
      const done = new Promise<void>((r) => { finish = r; });
      return { stop: async () => finish(), done, notes: [] };
    },
  };
  return {
    target,
    handlers: () => {
      if (!handlers) throw new Error('the capture has not started');
      return handlers;
    },
    finish: () => finish(),
  };
}
