// The API as hosted next to the core: validates each request, routes 'local-pty' shells to node-pty
// and everything else to the CoreService, and fans events out. Shared by web mode and Electron main.
import { EventEmitter } from 'node:events';
import { API_EVENTS } from '../api/channels.js';
import { dispatchCall, type ApiEventSource } from '../api/client.js';
import type { ApiCallName, ApiCalls, ApiEventName, ApiEvents } from '../api/contract.js';
import { parseRequest } from '../api/schemas.js';
import { LOCAL_PTY_TARGET, LocalShells } from './local-shells.js';

export type ApiService = ApiCalls & ApiEventSource;

export interface ApiHost extends ApiEventSource {
  call(call: ApiCallName, req: unknown): Promise<unknown>;
  close(): void;
}

export function createApiHost(service: ApiService): ApiHost {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const emit = <E extends ApiEventName>(event: E, payload: ApiEvents[E]) => {
    events.emit(event, payload);
  };
  const shells = new LocalShells(emit);
  const unsubs = API_EVENTS.map((event) => service.on(event, (payload) => events.emit(event, payload)));

  async function call(name: ApiCallName, req: unknown): Promise<unknown> {
    switch (name) {
      case 'openShell': {
        const r = parseRequest('openShell', req);
        if (r.target === LOCAL_PTY_TARGET) return shells.open(r.cols, r.rows);
        break;
      }
      case 'shellInput': {
        const r = parseRequest('shellInput', req);
        if (shells.owns(r.shellId)) return shells.input(r.shellId, r.data);
        break;
      }
      case 'shellResize': {
        const r = parseRequest('shellResize', req);
        if (shells.owns(r.shellId)) return shells.resize(r.shellId, r.cols, r.rows);
        break;
      }
      case 'shellClose': {
        const r = parseRequest('shellClose', req);
        if (shells.owns(r.shellId)) return shells.close(r.shellId);
        break;
      }
      default:
        break;
    }
    return dispatchCall(service, name, req);
  }

  return {
    call,
    on(event, cb) {
      const l = cb as (p: unknown) => void;
      events.on(event, l);
      return () => {
        events.off(event, l);
      };
    },
    close() {
      for (const u of unsubs) u();
      shells.closeAll();
      events.removeAllListeners();
    },
  };
}
