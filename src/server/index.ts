// Web mode: the same renderer the Electron app shows, served over HTTP on 127.0.0.1 only, talking to the
// core through a WebSocket that carries the API contract. A random token gates the page, the assets and
// the socket; Host and Origin are checked so other web pages (and DNS rebinding) cannot reach it.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { basename, extname, join, resolve, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { isApiCall, API_EVENTS } from '../api/channels.js';
import { errorToWire } from '../api/client.js';
import { TapscopeError } from '../errors.js';
import { isFile } from '../util/paths.js';
import { createApiHost, type ApiService } from './api-host.js';
import { rendererDir } from './paths.js';
import { storeUpload, UploadTooLarge } from './uploads.js';

export type { ApiService } from './api-host.js';

export interface WebServerOptions {
  port?: number;
  host?: '127.0.0.1';
  /**
   * the core; dropped files go into its store's uploads folder (absolute): a session owns the upload it was opened from
   * (deleted with it, kept by the start-up sweep) only there
   */
  service: ApiService & { readonly store: { readonly uploads: string } };
  /** Session the page opens first (e.g. `tapscope serve SESSION`). */
  openSessionId?: string;
  /** Max upload size for drag-and-drop of a .pcapng in web mode (bytes). */
  maxUploadBytes?: number;
}

export interface WebServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const TOKEN_COOKIE = 'tapscope_token';
const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
};

export function contentSecurityPolicy(port: number): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    // why: Svelte style: directives and xterm.js set inline style attributes; scripts stay strict.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src 'self' ws://127.0.0.1:${port} ws://localhost:${port}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function sameToken(a: string | null | undefined, token: string): boolean {
  if (!a) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(token);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieToken(req: IncomingMessage): string | null {
  const header = req.headers.cookie ?? '';
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === TOKEN_COOKIE) return v.join('=');
  }
  return null;
}

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const token = randomBytes(24).toString('base64url');
  const host = opts.host ?? '127.0.0.1';
  const root = resolve(rendererDir());
  const api = createApiHost(opts.service);
  const exported = new Set<string>();
  // (absolute: the path an upload is answered with is the one its session records, see SessionStore.removeOrphanUploads)
  const uploadDir = opts.service.store.uploads;
  const maxUpload = opts.maxUploadBytes ?? 4 * 1024 * 1024 * 1024;
  let port = 0;

  const allowedHosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  const allowedOrigins = () => new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);
  const hostOk = (req: IncomingMessage) => allowedHosts().has(req.headers.host ?? '');
  // why: browsers send Origin on WebSocket upgrades and cross-origin POSTs; a page from any other
  // origin must not drive the API even if it learned the port.
  const originOk = (req: IncomingMessage) => req.headers.origin === undefined ? false : allowedOrigins().has(req.headers.origin);

  function deny(res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...extra });
    res.end(message + '\n');
  }

  function serveFile(res: ServerResponse, file: string, extra: Record<string, string> = {}): void {
    const type = MIME[extname(file)] ?? 'application/octet-stream';
    res.writeHead(200, {
      'content-type': type,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
      ...extra,
    });
    createReadStream(file).pipe(res);
  }

  async function handleUpload(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!originOk(req)) return deny(res, 403, 'Forbidden: wrong origin');
    const tooLarge = (): void => deny(res, 413, 'File too large for web-mode upload; open it by path instead.', { connection: 'close' });
    // (a body sent in chunks says no length: storeUpload counts what comes, and stops past the limit)
    if (Number(req.headers['content-length'] ?? '0') > maxUpload) return tooLarge();
    let path;
    try {
      // why not destroyed when the upload stops: the socket is the one the 413 goes back on (closed once it is sent)
      path = await storeUpload(req.iterator({ destroyOnReturn: false }), uploadDir, url.searchParams.get('name'), maxUpload);
    } catch (e) {
      if (e instanceof UploadTooLarge) return tooLarge();
      throw e;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ path }));
  }

  function handleDownload(res: ServerResponse, url: URL): void {
    const path = url.searchParams.get('path') ?? '';
    // why: only files this server itself exported may be downloaded; never an arbitrary path.
    if (!exported.has(path) || !existsSync(path)) return deny(res, 404, 'No such export');
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(statSync(path).size),
      'content-disposition': `attachment; filename="${basename(path).replace(/"/g, '')}"`,
      'cache-control': 'no-store',
    });
    createReadStream(path).pipe(res);
  }

  const server = createServer((req, res) => {
    void (async () => {
      if (!hostOk(req)) return deny(res, 403, 'Forbidden: unexpected Host header');
      const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
      const queryToken = url.searchParams.get('token');
      const authed = sameToken(queryToken, token) || sameToken(cookieToken(req), token);
      if (!authed) return deny(res, 403, 'Forbidden: open the URL with its ?token= printed by `tapscope serve`');
      if (url.pathname === '/api/upload' && req.method === 'POST') return handleUpload(req, res, url);
      if (url.pathname === '/api/download' && req.method === 'GET') return handleDownload(res, url);
      if (req.method !== 'GET' && req.method !== 'HEAD') return deny(res, 405, 'Method not allowed');
      const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname.slice(1));
      const file = resolve(root, rel);
      if (file !== root && !file.startsWith(root + sep)) return deny(res, 403, 'Forbidden');
      if (!existsSync(join(root, 'index.html'))) {
        return deny(res, 503, `The renderer is not built (${root} is missing); run \`npm run build:renderer\`.`);
      }
      if (!isFile(file)) return deny(res, 404, 'Not found');
      const extra: Record<string, string> = {};
      if (file.endsWith('.html')) {
        extra['content-security-policy'] = contentSecurityPolicy(port);
        extra['x-frame-options'] = 'DENY';
        extra['set-cookie'] = `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
      }
      serveFile(res, file, extra);
    })().catch((e: unknown) => {
      if (!res.headersSent) deny(res, 500, (e as Error).message);
      else res.destroy();
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 8 * 1024 * 1024 });
  const clients = new Set<WebSocket>();

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const reject = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (url.pathname !== '/ws') return reject('404 Not Found');
    if (!hostOk(req) || !originOk(req)) return reject('403 Forbidden');
    if (!sameToken(url.searchParams.get('token'), token)) return reject('403 Forbidden');
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  wss.on('connection', (ws: WebSocket) => {
    clients.add(ws);
    ws.on('close', () => clients.delete(ws));
    ws.on('message', (raw) => {
      void (async () => {
        let msg: { id?: unknown; call?: unknown; req?: unknown };
        try {
          msg = JSON.parse(String(raw)) as typeof msg;
        } catch {
          return ws.send(JSON.stringify({ id: null, ok: false, error: { code: 'E_USAGE', message: 'Message is not JSON' } }));
        }
        const id = typeof msg.id === 'number' || typeof msg.id === 'string' ? msg.id : null;
        try {
          if (!isApiCall(msg.call)) throw new TapscopeError('E_USAGE', `Unknown call ${String(msg.call)}`);
          const result = await api.call(msg.call, msg.req);
          if (msg.call === 'exportSession' && result && typeof result === 'object' && 'path' in result) {
            exported.add(String((result as { path: unknown }).path));
          }
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id, ok: true, result: result ?? null }));
        } catch (e) {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id, ok: false, error: errorToWire(e) }));
        }
      })();
    });
  });

  const unsubs = API_EVENTS.map((event) =>
    api.on(event, (payload) => {
      const text = JSON.stringify({ event, payload });
      for (const ws of clients) if (ws.readyState === ws.OPEN) ws.send(text);
    }),
  );

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
  const session = opts.openSessionId ? `&session=${encodeURIComponent(opts.openSessionId)}` : '';
  const url = `http://127.0.0.1:${port}/?token=${token}${session}`;

  return {
    url,
    port,
    token,
    async close() {
      for (const u of unsubs) u();
      api.close();
      for (const ws of clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
