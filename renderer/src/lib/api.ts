// The renderer's one handle on the core: Electron's preload client when present, else the web-mode
// WebSocket client. State classes call getApi() lazily so they can be unit-tested without a carrier.
import { createApiClient, type ApiClient } from '../../../src/api/client.js';
import { createWsTransport, type WsTransport } from './ws-transport.js';

/** What the Electron menu asks the renderer to do. */
export interface MenuMessage {
  action: 'open-session' | 'export' | 'view' | 'focus-filter' | 'theme';
  arg?: string;
}

declare global {
  interface Window {
    tapscope?: ApiClient;
    tapscopeHost?: { kind: 'electron'; pathForFile(file: File): string; onMenu(cb: (msg: MenuMessage) => void): () => void };
  }
}

let client: ApiClient | null = null;
let transport: WsTransport | null = null;
let token = '';

export function webToken(): string {
  return token;
}

export function isElectron(): boolean {
  return typeof window !== 'undefined' && window.tapscopeHost?.kind === 'electron';
}

export function getApi(): ApiClient {
  if (client) return client;
  const bridged = typeof window !== 'undefined' ? window.tapscope : undefined;
  if (bridged) {
    // why: errors crossing Electron's contextBridge keep only their message ("E_CODE: text"); wrapping
    // the preload's client restores TapscopeError codes on this side.
    client = createApiClient({
      invoke: (call, req) => (bridged[call] as (r: unknown) => Promise<unknown>)(req),
      subscribe: (event, cb) => bridged.on(event, cb as never),
    });
    return client;
  }
  const params = new URLSearchParams(location.search);
  token = params.get('token') ?? sessionStorage.getItem('tapscope-token') ?? '';
  sessionStorage.setItem('tapscope-token', token);
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?token=${encodeURIComponent(token)}`;
  transport = createWsTransport(wsUrl);
  client = createApiClient(transport);
  return client;
}

/** Web mode: told when the WebSocket to the server drops and comes back (Electron's IPC never drops). */
export function onConnection(cb: (up: boolean) => void): () => void {
  getApi();
  return transport ? transport.onConnection(cb) : () => undefined;
}

/** Web mode only: sends a dropped file to the server, which stores it and returns its path there. */
export async function uploadFile(file: File): Promise<string> {
  const res = await fetch(`/api/upload?token=${encodeURIComponent(token)}&name=${encodeURIComponent(file.name)}`, {
    method: 'POST',
    body: file,
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (!res.ok) throw new Error(await res.text());
  return ((await res.json()) as { path: string }).path;
}

/** A file the user chose or dropped, as a path where the core runs: its own path in the app, an upload's in web mode. */
export async function corePathOf(file: File): Promise<string> {
  return isElectron() && window.tapscopeHost ? window.tapscopeHost.pathForFile(file) : uploadFile(file);
}

export function downloadUrl(path: string): string {
  return `/api/download?token=${encodeURIComponent(token)}&path=${encodeURIComponent(path)}`;
}
