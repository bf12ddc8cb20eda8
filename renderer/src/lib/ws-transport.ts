// The web-mode carrier: the API contract over one WebSocket to the local server, with request ids,
// reconnects with backoff, and event fan-out. Used when no Electron preload provided window.tapscope.
import type { ApiTransport } from '../../../src/api/client.js';
import type { ApiCallName, ApiEventName } from '../../../src/api/contract.js';
import { TapscopeError } from '../../../src/errors.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

export interface WsTransport extends ApiTransport {
  readonly connected: boolean;
  onConnection(cb: (up: boolean) => void): () => void;
}

export function createWsTransport(url: string): WsTransport {
  let ws: WebSocket | null = null;
  let up = false;
  let nextId = 1;
  let backoff = 250;
  const pending = new Map<number, Pending>();
  const queue: string[] = [];
  const listeners = new Map<ApiEventName, Set<(p: unknown) => void>>();
  const connListeners = new Set<(up: boolean) => void>();

  function setUp(v: boolean): void {
    up = v;
    for (const cb of connListeners) cb(v);
  }

  function connect(): void {
    ws = new WebSocket(url);
    ws.onopen = () => {
      backoff = 250;
      setUp(true);
      for (const m of queue.splice(0)) ws?.send(m);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; ok?: boolean; result?: unknown; error?: unknown; event?: ApiEventName; payload?: unknown };
      if (msg.event) {
        for (const cb of listeners.get(msg.event) ?? []) cb(msg.payload);
        return;
      }
      if (typeof msg.id !== 'number') return;
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(msg.error);
    };
    ws.onclose = () => {
      setUp(false);
      // why: a call in flight when the socket dropped has an unknown outcome; fail it loudly rather
      // than replaying it (a replayed startCapture would start a second capture).
      for (const [, p] of pending) p.reject(new TapscopeError('E_TARGET_UNREACHABLE', 'Lost the connection to the Tapscope server; reconnecting.'));
      pending.clear();
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  }
  connect();

  return {
    get connected() {
      return up;
    },
    onConnection(cb) {
      connListeners.add(cb);
      return () => connListeners.delete(cb);
    },
    invoke(call: ApiCallName, req: unknown) {
      const id = nextId++;
      const text = JSON.stringify({ id, call, req });
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (up && ws?.readyState === WebSocket.OPEN) ws.send(text);
        else queue.push(text);
      });
    },
    subscribe(event, cb) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(cb);
      return () => {
        set.delete(cb);
      };
    },
  };
}
