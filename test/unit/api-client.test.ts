// The API contract's transport parts: zod request schemas, the typed client over the renderer's real
// WebSocket carrier against the real web server, error codes surviving the trip, and on() unsubscribe.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { API_CALLS, API_EVENTS, callChannel, eventChannel, isApiCall } from '../../src/api/channels.js';
import { createApiClient, errorFromWire, type ApiClient } from '../../src/api/client.js';
import { parseRequest, requestSchemas } from '../../src/api/schemas.js';
import { isTapscopeError, TapscopeError } from '../../src/errors.js';
import { startWebServer, type WebServer } from '../../src/server/index.js';
import { createWsTransport } from '../../renderer/src/lib/ws-transport.js';
import { openSyntheticSession, type CoreSession } from '../ui/core-session.js';

describe('request schemas', () => {
  it('cover every call of the contract', () => {
    expect(Object.keys(requestSchemas).sort()).toEqual([...API_CALLS].sort());
    expect(API_EVENTS).toContain('counters');
    expect(callChannel('queryFlows')).toBe('tapscope:call:queryFlows');
    expect(eventChannel('shellData')).toBe('tapscope:event:shellData');
    expect(isApiCall('queryFlows')).toBe(true);
    expect(isApiCall('__proto__')).toBe(false);
  });

  const good: [string, unknown][] = [
    ['listTargets', undefined],
    ['startCapture', { target: 'ssh://root@h:22', mode: 'auto', ifaces: ['eth0'], nodes: ['a'], name: 'x' }],
    ['queryFlows', { sessionId: 's', offset: 0, limit: 200, filter: 'tls', sort: { field: 'bytes', dir: 'desc' } }],
    ['answerPrompt', { promptId: 'p', answer: null }],
    ['exportSession', { sessionId: 's', format: 'har', includeSecrets: true }],
  ];
  for (const [call, req] of good) {
    it(`accepts a valid ${call}`, () => {
      expect(parseRequest(call as never, req)).toEqual(req);
    });
  }

  const bad: [string, unknown, string][] = [
    ['listNodes', {}, 'target'],
    ['startCapture', { target: 'local', mode: 'kprobe', ifaces: [] }, 'mode'],
    ['queryFlows', { sessionId: 's', offset: 0, limit: 1e9 }, 'limit'],
    ['queryFlows', { sessionId: 's', offset: 1.5, limit: 1 }, 'offset'],
    ['openFile', { path: '' }, 'path'],
    ['openShell', { target: 'local-pty', cols: 0, rows: 10 }, 'cols'],
    ['renameSession', { sessionId: 's', name: 'n', extra: 1 }, 'Invalid request for renameSession'],
    ['exportSession', { sessionId: 's', format: 'xml' }, 'format'],
  ];
  for (const [call, req, mentions] of bad) {
    it(`rejects a bad ${call} naming ${mentions}`, () => {
      let err: unknown;
      try {
        parseRequest(call as never, req);
      } catch (e) {
        err = e;
      }
      expect(isTapscopeError(err, 'E_USAGE')).toBe(true);
      expect((err as Error).message).toContain(mentions);
    });
  }

  it('restores codes from every wire shape', () => {
    expect(errorFromWire({ code: 'E_AUTH_FAILED', message: 'no' }).code).toBe('E_AUTH_FAILED');
    const ipc = new Error("Error invoking remote method 'tapscope:call:openFile': Error: E_FILE_NOT_FOUND: /x does not exist");
    const e = errorFromWire(ipc);
    expect(e.code).toBe('E_FILE_NOT_FOUND');
    expect(e.message).toBe('/x does not exist');
    expect(errorFromWire('boom').code).toBe('E_INTERNAL');
  });
});

describe('createApiClient over the web-mode WebSocket', () => {
  let server: WebServer;
  let dir: string;
  let client: ApiClient;
  let core: CoreSession;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsu-client-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    process.env.TAPSCOPE_RENDERER_DIR = dir;
    core = await openSyntheticSession(1000);
    server = await startWebServer({ service: core.service });
    const origin = `http://127.0.0.1:${server.port}`;
    // why: the renderer's carrier uses the browser WebSocket API; `ws` implements it, plus an Origin as a browser sends.
    (globalThis as Record<string, unknown>).WebSocket = class extends WebSocket {
      constructor(url: string) {
        super(url, { origin });
      }
    };
    client = createApiClient(createWsTransport(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`));
  });

  afterAll(async () => {
    await server?.close();
    await core?.close();
    delete (globalThis as Record<string, unknown>).WebSocket;
    delete process.env.TAPSCOPE_RENDERER_DIR;
    rmSync(dir, { recursive: true, force: true });
  });

  it('pages flows and applies filters through the core', async () => {
    const sessionId = core.session.id;
    const all = await client.queryFlows({ sessionId, offset: 0, limit: 10 });
    expect(all.total).toBe(1000);
    expect(all.rows).toHaveLength(10);
    const https = await client.queryFlows({ sessionId, offset: 0, limit: 1000, filter: 'dst.port == 443' });
    expect(https.total).toBe(250);
    expect(https.rows.every((r) => r.dst.port === 443)).toBe(true);
  });

  it('reports a bad filter with its position instead of throwing', async () => {
    const r = await client.checkFilter({ filter: 'dst.port ==' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.position).toBeGreaterThan(0);
  });

  it('rejects an invalid request before it leaves, and core errors keep their code', async () => {
    await expect(client.queryFlows({ sessionId: '', offset: 0, limit: 1 })).rejects.toMatchObject({ code: 'E_USAGE' });
    const e = await client.exportSession({ sessionId: 'no-such-session', format: 'pcapng' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TapscopeError);
    expect((e as TapscopeError).code).toBe('E_SESSION_NOT_FOUND');
  });

  it('delivers events until unsubscribed', async () => {
    const { shellId } = await client.openShell({ target: 'local-pty', cols: 80, rows: 24 });
    let seen = '';
    const got = new Promise<void>((resolve) => {
      const off = client.on('shellData', (d) => {
        if (d.shellId !== shellId) return;
        seen += d.data;
        if (seen.includes('marker-7')) {
          off();
          resolve();
        }
      });
    });
    await client.shellInput({ shellId, data: 'echo marker-$((3+4))\n' });
    await got;
    const after = seen.length;
    await client.shellInput({ shellId, data: 'echo more\n' });
    const exited = new Promise<number | null>((resolve) => client.on('shellExit', (x) => x.shellId === shellId && resolve(x.code)));
    await client.shellInput({ shellId, data: 'exit 3\n' });
    expect(await exited).toBe(3);
    expect(seen.length).toBe(after);
  });
});
