// Web mode's gatekeeping and carrier, end to end over real HTTP and WebSocket: the token, Host and
// Origin checks, the call/response/event protocol, request validation, local pty shells, upload/download, a dropped
// file stored once (in its service's store, at an absolute path, under a name the disk takes, within the size limit
// however it is sent) and deleted with its session.
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startWebServer, type WebServer } from '../../src/server/index.js';
import { loadCoreService } from '../../src/server/load-service.js';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { openSyntheticSession, type CoreSession } from '../ui/core-session.js';

let server: WebServer;
let dir: string;
let core: CoreSession;
let tapscopeHome: string | undefined;

function get(path: string, headers: Record<string, string> = {}, method = 'GET', body?: Buffer): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method, headers: { host: `127.0.0.1:${server.port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A POST of `chunks` sent as they are, without a Content-Length (chunked, as a streamed browser upload is). */
function postChunked(port: number, path: string, chunks: Buffer[], headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const got: Buffer[] = [];
      res.on('data', (c: Buffer) => got.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(got).toString() }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

function openWs(query: string, origin: string | undefined): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws${query}`, origin ? { origin } : {});
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function rpc(ws: WebSocket, id: number, call: string, req?: unknown): Promise<{ id: number; ok: boolean; result?: unknown; error?: { code: string; message: string } }> {
  return new Promise((resolve) => {
    const onMsg = (raw: WebSocket.RawData) => {
      const m = JSON.parse(String(raw)) as { id?: number };
      if (m.id === id) {
        ws.off('message', onMsg);
        resolve(m as never);
      }
    };
    ws.on('message', onMsg);
    ws.send(JSON.stringify({ id, call, req }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsu-web-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)');
  process.env.TAPSCOPE_RENDERER_DIR = dir;
  // (Tapscope's own data folder, which no upload here is to reach: a private one)
  tapscopeHome = process.env.TAPSCOPE_HOME;
  process.env.TAPSCOPE_HOME = join(dir, 'default-home');
  core = await openSyntheticSession(300);
  server = await startWebServer({ service: core.service });
});

afterAll(async () => {
  await server?.close();
  await core?.close();
  delete process.env.TAPSCOPE_RENDERER_DIR;
  if (tapscopeHome === undefined) delete process.env.TAPSCOPE_HOME;
  else process.env.TAPSCOPE_HOME = tapscopeHome;
  rmSync(dir, { recursive: true, force: true });
});

describe('web server gatekeeping', () => {
  it('binds to 127.0.0.1 and prints a URL with a long random token', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token.length).toBeGreaterThanOrEqual(32);
  });

  it('refuses the page without the token, or with a wrong one', async () => {
    expect((await get('/')).status).toBe(403);
    expect((await get('/?token=nope')).status).toBe(403);
    const last = server.token.endsWith('A') ? 'B' : 'A';
    expect((await get(`/?token=${server.token.slice(0, -1)}${last}`)).status).toBe(403);
    expect((await get('/assets/app.js')).status).toBe(403);
  });

  it('serves the page with the token, a strict CSP and a cookie that then unlocks assets', async () => {
    const page = await get(`/?token=${server.token}`);
    expect(page.status).toBe(200);
    expect(String(page.headers['content-security-policy'])).toContain("script-src 'self'");
    expect(String(page.headers['content-security-policy'])).not.toMatch(/script-src[^;]*unsafe/);
    const cookie = String((page.headers['set-cookie'] as string[])[0]).split(';')[0] as string;
    expect(cookie).toContain(server.token);
    const asset = await get('/assets/app.js', { cookie });
    expect(asset.status).toBe(200);
    expect(asset.body).toBe('console.log(1)');
  });

  it('refuses a foreign Host header (DNS rebinding) even with the token', async () => {
    expect((await get(`/?token=${server.token}`, { host: `evil.example:${server.port}` })).status).toBe(403);
  });

  it('does not serve files outside the renderer directory', async () => {
    const r = await get(`/..%2f..%2fetc%2fpasswd?token=${server.token}`);
    expect([403, 404]).toContain(r.status);
    expect(r.body).not.toContain('root:');
  });

  it('refuses WebSockets without the token, from another origin, or with no origin', async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    await expect(openWs('', origin)).rejects.toThrow('HTTP 403');
    await expect(openWs('?token=wrong', origin)).rejects.toThrow('HTTP 403');
    await expect(openWs(`?token=${server.token}`, 'http://evil.example')).rejects.toThrow('HTTP 403');
    await expect(openWs(`?token=${server.token}`, undefined)).rejects.toThrow('HTTP 403');
  });
});

describe('web server API carrier', () => {
  it('answers calls, validates requests and reports errors with their codes', async () => {
    const ws = await openWs(`?token=${server.token}`, `http://localhost:${server.port}`);
    try {
      const sessions = await rpc(ws, 1, 'listSessions');
      expect(sessions.ok).toBe(true);
      const sid = core.session.id;
      expect((sessions.result as { id: string }[]).map((x) => x.id)).toEqual([sid]);

      const page = await rpc(ws, 2, 'queryFlows', { sessionId: sid, offset: 10, limit: 5 });
      expect(page.ok).toBe(true);
      const direct = await core.service.queryFlows({ sessionId: sid, offset: 0, limit: 300 });
      expect((page.result as { total: number; rows: { id: string }[] }).total).toBe(300);
      expect((page.result as { total: number; rows: { id: string }[] }).rows.map((r) => r.id)).toEqual(direct.rows.slice(10, 15).map((r) => r.id));

      const bad = await rpc(ws, 3, 'queryFlows', { sessionId: sid, offset: -1, limit: 5 });
      expect(bad.ok).toBe(false);
      expect(bad.error?.code).toBe('E_USAGE');
      expect(bad.error?.message).toContain('offset');

      const extra = await rpc(ws, 4, 'openFile', { path: '/x.pcapng', evil: true });
      expect(extra.error?.code).toBe('E_USAGE');

      const unknown = await rpc(ws, 5, 'rm -rf', {});
      expect(unknown.error?.code).toBe('E_USAGE');

      const fromCore = await rpc(ws, 6, 'startCapture', { target: 'bogus://nowhere', mode: 'auto', ifaces: [] });
      expect(fromCore.ok).toBe(false);
      expect(fromCore.error?.code).toBe('E_TARGET_INVALID');
    } finally {
      ws.close();
    }
  });

  it('runs a local pty shell and streams its output as events', async () => {
    const ws = await openWs(`?token=${server.token}`, `http://127.0.0.1:${server.port}`);
    try {
      let out = '';
      const seen = new Promise<void>((resolve) => {
        ws.on('message', (raw) => {
          const m = JSON.parse(String(raw)) as { event?: string; payload?: { data: string } };
          if (m.event === 'shellData') out += m.payload?.data ?? '';
          if (out.includes('tapscope-ok-42')) resolve();
        });
      });
      const opened = await rpc(ws, 1, 'openShell', { target: 'local-pty', cols: 80, rows: 24 });
      expect(opened.ok).toBe(true);
      const shellId = (opened.result as { shellId: string }).shellId;
      await rpc(ws, 2, 'shellInput', { shellId, data: 'echo tapscope-ok-$((40+2))\n' });
      await seen;
      expect(out).toContain('tapscope-ok-42');
      expect((await rpc(ws, 3, 'shellResize', { shellId, cols: 100, rows: 30 })).ok).toBe(true);
      expect((await rpc(ws, 4, 'shellClose', { shellId })).ok).toBe(true);
    } finally {
      ws.close();
    }
  });

  it('accepts an upload only with token and same origin, and never downloads unexported paths', async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    const noOrigin = await get(`/api/upload?token=${server.token}&name=a.pcapng`, {}, 'POST', Buffer.from('abc'));
    expect(noOrigin.status).toBe(403);
    const up = await get(`/api/upload?token=${server.token}&name=../../a.pcapng`, { origin }, 'POST', Buffer.from('pcapng-bytes'));
    expect(up.status).toBe(200);
    const path = (JSON.parse(up.body) as { path: string }).path;
    expect(path).toMatch(/a\.pcapng$/);
    expect(path.startsWith(core.service.store.uploads + '/')).toBe(true);
    expect(path).not.toContain('..');
    expect(readFileSync(path, 'utf8')).toBe('pcapng-bytes');
    const dl = await get(`/api/download?token=${server.token}&path=${encodeURIComponent(path)}`);
    expect(dl.status).toBe(404);
    rmSync(dirname(path), { recursive: true });
  });

  it('stores a dropped file once, by its own name: dropped again it opens the same session, whose deletion takes it', async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    const capture = readFileSync(core.session.file);
    const drop = async (): Promise<string> => {
      const up = await get(`/api/upload?token=${server.token}&name=${encodeURIComponent('my capture.pcapng')}`, { origin }, 'POST', capture);
      return (JSON.parse(up.body) as { path: string }).path;
    };
    const first = await drop();
    expect(await drop()).toBe(first);
    expect(basename(first)).toBe('my capture.pcapng');
    const ws = await openWs(`?token=${server.token}`, origin);
    try {
      const opened = await rpc(ws, 1, 'openFile', { path: first });
      const again = await rpc(ws, 2, 'openFile', { path: await drop() });
      const s = opened.result as { id: string; name: string; flows: number };
      expect([s.name, s.flows, (again.result as { id: string }).id]).toEqual(['my capture.pcapng', 300, s.id]);
      expect((await rpc(ws, 3, 'deleteSession', { sessionId: s.id })).ok).toBe(true);
      expect(readdirSync(core.service.store.uploads)).toEqual([]);
    } finally {
      ws.close();
    }
  });

  it('stores a name longer than a file name can be cut to 255 bytes, keeping its extension', async () => {
    const origin = `http://127.0.0.1:${server.port}`;
    const long = `${'é'.repeat(150)}.pcapng.gz`;
    const up = await get(`/api/upload?token=${server.token}&name=${encodeURIComponent(long)}`, { origin }, 'POST', Buffer.from('bytes'));
    expect(up.status, up.body).toBe(200);
    const path = (JSON.parse(up.body) as { path: string }).path;
    const name = basename(path);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
    // (245 bytes before the extension: 122 whole two-byte characters, none split)
    expect(name).toBe(`${'é'.repeat(122)}.pcapng.gz`);
    expect(readFileSync(path, 'utf8')).toBe('bytes');
    rmSync(dirname(path), { recursive: true });
  });

  it('refuses an upload past the size limit however it is sent (a chunked one has no Content-Length), keeping nothing', async () => {
    const small = await startWebServer({ service: core.service, maxUploadBytes: 1000 });
    try {
      const origin = `http://127.0.0.1:${small.port}`;
      const path = `/api/upload?token=${small.token}&name=big.pcapng`;
      const chunked = await postChunked(small.port, path, [Buffer.alloc(600, 1), Buffer.alloc(600, 2), Buffer.alloc(600, 3)], { origin });
      expect(chunked.status).toBe(413);
      expect(chunked.body).toMatch(/too large/);
      const told = await postChunked(small.port, path, [Buffer.alloc(1001)], { origin, 'content-length': '1001' });
      expect(told.status).toBe(413);
      // (nothing of them is left, not even a part file); one within the limit is taken
      expect(existsSync(core.service.store.uploads) ? readdirSync(core.service.store.uploads) : []).toEqual([]);
      const fits = await postChunked(small.port, path, [Buffer.alloc(500, 1), Buffer.alloc(500, 2)], { origin });
      expect(fits.status).toBe(200);
      rmSync(dirname((JSON.parse(fits.body) as { path: string }).path), { recursive: true });
    } finally {
      await small.close();
    }
  });

  it('with a relative data folder, answers an absolute path that the start-up sweep knows as its session\'s', async () => {
    const home = join(dir, 'relative-home');
    const store = new SessionStore(join(relative(process.cwd(), home), 'sessions'));
    const service = new CoreService({ store });
    const web = await startWebServer({ service });
    try {
      const origin = `http://127.0.0.1:${web.port}`;
      const res = await postChunked(web.port, `/api/upload?token=${web.token}&name=x.pcapng`, [readFileSync(core.session.file)], { origin });
      const path = (JSON.parse(res.body) as { path: string }).path;
      expect(isAbsolute(path)).toBe(true);
      expect(path.startsWith(join(home, 'uploads') + '/')).toBe(true);
      const s = await service.openFile({ path });
      expect(store.get(s.id).file).toBe(path);
      const hourAgo = (Date.now() - 61 * 60_000) / 1000;
      utimesSync(path, hourAgo, hourAgo);
      await (await loadCoreService({ store })).close();
      expect(existsSync(path)).toBe(true);
    } finally {
      await web.close();
      await service.close();
    }
  });
});
