// createApiClient: turns a carrier (Electron IPC from the preload, or the web-mode WebSocket) into the
// typed ApiCalls plus `on(event, cb)` returning an unsubscribe. Requests are validated before they leave.
import { TapscopeError, type TapscopeErrorCode } from '../errors.js';
import { API_CALLS } from './channels.js';
import type { ApiCallName, ApiCalls, ApiEventName, ApiEvents } from './contract.js';
import { parseRequest } from './schemas.js';

/** What a carrier must provide: one request/response primitive and one event subscription. */
export interface ApiTransport {
  invoke(call: ApiCallName, req: unknown): Promise<unknown>;
  subscribe(event: ApiEventName, cb: (payload: unknown) => void): () => void;
}

export interface ApiEventSource {
  on<E extends ApiEventName>(event: E, cb: (payload: ApiEvents[E]) => void): () => void;
}

export type ApiClient = ApiCalls & ApiEventSource;

/** The wire shape of an error: carriers send `{code, message}`; this restores a TapscopeError. */
export function errorFromWire(e: unknown): TapscopeError {
  if (e instanceof TapscopeError) return e;
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    const { code, message } = e as { code: unknown; message: unknown };
    if (typeof code === 'string' && typeof message === 'string') {
      return new TapscopeError(code as TapscopeErrorCode, message);
    }
  }
  // why: Electron IPC wraps errors thrown in main as "Error invoking remote method 'x': Error: CODE: msg";
  // the main process encodes TapscopeErrors as `CODE: message` so the code survives that wrapping.
  const text = e instanceof Error ? e.message : String(e);
  const m = /(E_[A-Z0-9_]+): ([\s\S]*)$/.exec(text);
  if (m) return new TapscopeError(m[1] as TapscopeErrorCode, m[2] ?? '');
  return new TapscopeError('E_INTERNAL', text);
}

/** The wire shape of an error going out of a carrier. */
export function errorToWire(e: unknown): { code: TapscopeErrorCode; message: string } {
  if (e instanceof TapscopeError) return { code: e.code, message: e.message };
  return { code: 'E_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

export function createApiClient(transport: ApiTransport): ApiClient {
  const client: Record<string, unknown> = {};
  for (const call of API_CALLS) {
    client[call] = async (req?: unknown) => {
      const valid = parseRequest(call, req);
      try {
        return await transport.invoke(call, valid);
      } catch (e) {
        throw errorFromWire(e);
      }
    };
  }
  client.on = (event: ApiEventName, cb: (payload: unknown) => void) => transport.subscribe(event, cb);
  return client as unknown as ApiClient;
}

/** Calls the core for one validated request: shared by the Electron main process and the web server. */
export async function dispatchCall(service: ApiCalls, call: ApiCallName, req: unknown): Promise<unknown> {
  const valid = parseRequest(call, req);
  const fn = service[call] as (r: unknown) => Promise<unknown>;
  return fn.call(service, valid);
}
