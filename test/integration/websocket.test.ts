// A WebSocket, really: Node's WebSocket client (undici) opens ws://SERVER/chat on a small Node server that answers
// 101 Switching Protocols and echoes text messages, while `tapscope capture` records them in AF_PACKET mode. The
// connection is named websocket, as tshark names its frames, and its one HTTP exchange is the upgrade: the messages
// after it, one of which reads like a request, are not read as HTTP.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Flow } from '../../src/model/flow.js';
import { createLab, run, uniquePrefix, type Lab } from '../lib/lab.js';
import { captureLab, flowsJson } from './core-cli.js';

const PORT = 8090;

// the server: RFC 6455's handshake, then each text message (under 126 bytes) echoed back, a close answered
const SERVER = `
const http = require('node:http');
const crypto = require('node:crypto');
const srv = http.createServer((req, res) => { res.writeHead(404); res.end(); });
srv.on('upgrade', (req, sock) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const len = buf[1] & 0x7f;
      const masked = (buf[1] & 0x80) !== 0;
      const at = 2 + (masked ? 4 : 0);
      if (buf.length < at + len) break;
      const p = Buffer.from(buf.subarray(at, at + len));
      if (masked) for (let i = 0; i < p.length; i++) p[i] ^= buf[2 + (i & 3)];
      const op = buf[0] & 0x0f;
      buf = buf.subarray(at + len);
      if (op === 8) { sock.end(Buffer.from([0x88, 0])); return; }
      if (op === 1) { const out = Buffer.from('echo: ' + p.toString()); sock.write(Buffer.concat([Buffer.from([0x81, out.length]), out])); }
    }
  });
});
srv.listen(${PORT}, () => console.log('listening'));
`;

// the client: two messages, the first a request's text, then a close once both echoes came
const CLIENT = `
const ws = new WebSocket(process.argv[2]);
ws.onopen = () => { ws.send('GET /not-a-request HTTP/1.1\\r\\nHost: ws.test\\r\\n\\r\\n'); ws.send('hello'); };
let n = 0;
ws.onmessage = (e) => { console.log(e.data.split('\\r')[0]); if (++n === 2) ws.close(); };
ws.onclose = () => console.log('closed');
`;

let lab: Lab;
let dir = '';
let server: ChildProcess | null = null;
let out = '';
let env: NodeJS.ProcessEnv = {};
let said = '';
let flows: Flow[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsc-ws-'));
  lab = await createLab(uniquePrefix('tsc-ws-'), '10.202.49');
  writeFileSync(join(dir, 'server.cjs'), SERVER);
  writeFileSync(join(dir, 'client.mjs'), CLIENT);
  server = lab.spawnIn(lab.serverNs, 'node', [join(dir, 'server.cjs')]);
  let up = '';
  server.stdout!.on('data', (d: Buffer) => { up += d.toString(); });
  for (let i = 0; i < 100 && !up.includes('listening'); i++) await new Promise((r) => setTimeout(r, 100));
  expect(up).toContain('listening');
  const cap = await captureLab(lab, dir, 'ws.pcapng', 'afpacket', 4);
  out = cap.out;
  env = cap.env;
  const r = await lab.execIn(lab.nodeNs, 'node', ['--experimental-websocket', '--no-warnings', join(dir, 'client.mjs'), `ws://${lab.serverIp}:${PORT}/chat`], { timeoutMs: 20_000 });
  said = r.stdout + r.stderr;
  expect(await cap.cap.exited, cap.cap.stderr()).toBe(0);
  flows = await flowsJson(out, env);
}, 60_000);

afterAll(async () => {
  server?.kill();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a WebSocket (Node\'s client, AF_PACKET capture)', () => {
  it('the client had both its messages echoed, and closed', () => {
    expect(said).toContain('echo: GET /not-a-request HTTP/1.1');
    expect(said).toContain('echo: hello');
    expect(said).toContain('closed');
  });

  it('is named websocket, as tshark names its frames, with the upgrade its one HTTP exchange', async () => {
    const f = flows.find((x) => x.dst.port === PORT);
    expect(f, JSON.stringify(flows.map((x) => x.dst.port))).toBeTruthy();
    expect(f!.app).toBe('websocket');
    expect(f!.http).toEqual([{ method: 'GET', host: `${lab.serverIp}:${PORT}`, path: '/chat', status: 101 }]);
    const r = await run('tshark', ['-r', out, '-Y', `websocket && tcp.port == ${f!.src.port}`, '-T', 'fields', '-e', 'websocket.opcode']);
    expect(r.code, r.stderr).toBe(0);
    // (two text messages each way, and the two closes)
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['1', '1', '1', '1', '8', '8']);
    expect((await flowsJson(out, env, 'app == "websocket"')).map((x) => x.src.port)).toEqual([f!.src.port]);
  });
});
