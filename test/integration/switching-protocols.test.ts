// 101 Switching Protocols, really, under `tapscope capture` in AF_PACKET mode. A WebSocket: Node's WebSocket client
// (undici) opens ws://SERVER/chat on a small Node server that answers 101 and echoes text messages; the connection is
// named websocket, as tshark names its frames, and its one HTTP exchange is the upgrade: the messages after it, one of
// which reads like a request, are not read as HTTP. HTTP/2 by upgrade (h2c): curl --http2 asks Apache (mod_http2,
// `Protocols h2c http/1.1`) for two files, each by an upgrade request answered in HTTP/2 on stream 1; both are read,
// with the statuses tshark reads (a second request over the HTTP/2 after an upgrade: core-flows-upgrade.test.ts).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Flow } from '../../src/model/flow.js';
import { run } from '../lib/lab.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, flowsJson } from './core-cli.js';

const PORT = 8090;
const H2C = 8091;

// Apache with only what h2c needs: HTTP/2 over cleartext by upgrade, files from a folder
const apacheConf = (dir: string, ip: string): string => `ServerRoot ${dir}
Listen ${ip}:${H2C}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule http2_module /usr/lib/apache2/modules/mod_http2.so
User www-data
Group www-data
PidFile ${dir}/httpd.pid
ErrorLog ${dir}/error.log
DocumentRoot ${dir}/docs
Protocols h2c http/1.1
ServerName h2c.tapscope.test
`;

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

const t = useTlsLab('tsc-ws', '10.202.49');
let server: ChildProcess | null = null;
let apache: ChildProcess | null = null;
let curlSaid = '';
let out = '';
let env: NodeJS.ProcessEnv = {};
let said = '';
let flows: Flow[] = [];

beforeAll(async () => {
  writeFileSync(join(t.dir, 'server.cjs'), SERVER);
  writeFileSync(join(t.dir, 'client.mjs'), CLIENT);
  server = t.lab.spawnIn(t.lab.serverNs, 'node', [join(t.dir, 'server.cjs')]);
  let up = '';
  server.stdout!.on('data', (d: Buffer) => { up += d.toString(); });
  for (let i = 0; i < 100 && !up.includes('listening'); i++) await new Promise((r) => setTimeout(r, 100));
  expect(up).toContain('listening');
  // (Apache's worker user reads the files: the folder is open to it)
  const ap = join(t.dir, 'apache');
  mkdirSync(join(ap, 'docs'), { recursive: true });
  writeFileSync(join(ap, 'docs', 'first'), 'hello over h2c\n');
  chmodSync(t.dir, 0o755);
  chmodSync(ap, 0o755);
  chmodSync(join(ap, 'docs'), 0o755);
  writeFileSync(join(ap, 'httpd.conf'), apacheConf(ap, t.lab.serverIp));
  apache = t.lab.spawnIn(t.lab.serverNs, 'apache2', ['-f', join(ap, 'httpd.conf'), '-DFOREGROUND']);
  await new Promise((r) => setTimeout(r, 1000));
  const cap = await captureLab(t.lab, t.dir, 'ws.pcapng', 'afpacket', 5);
  out = cap.out;
  env = cap.env;
  const r = await t.lab.execIn(t.lab.nodeNs, 'node', ['--experimental-websocket', '--no-warnings', join(t.dir, 'client.mjs'), `ws://${t.lab.serverIp}:${PORT}/chat`], { timeoutMs: 20_000 });
  said = r.stdout + r.stderr;
  // (one connection each: curl 7.88's second request on an upgraded connection fails at times)
  for (const path of ['/first', '/missing']) {
    const c = await t.lab.execIn(t.lab.nodeNs, 'curl', ['-sv', '--http2', '-w', 'got HTTP/%{http_version} %{http_code}\\n', `http://${t.lab.serverIp}:${H2C}${path}`], { timeoutMs: 20_000 });
    curlSaid += c.stdout + c.stderr;
  }
  expect(await cap.cap.exited, cap.cap.stderr()).toBe(0);
  flows = await flowsJson(out, env);
}, 60_000);

afterAll(() => {
  server?.kill();
  apache?.kill();
});

describe('HTTP/2 by upgrade, h2c (curl and Apache, AF_PACKET capture)', () => {
  it('curl switched to HTTP/2 on the 101 and had both answers', () => {
    expect(curlSaid).toContain('Received 101, Switching to HTTP/2');
    expect(curlSaid).toContain('hello over h2c');
    expect([...curlSaid.matchAll(/got HTTP\/(\S+) (\d+)/g)].map((m) => `${m[1]} ${m[2]}`)).toEqual(['2 200', '2 404']);
  });

  it('reads each upgrade request with its HTTP/2 answer on stream 1, the statuses tshark reads', async () => {
    const mine = flows.filter((x) => x.dst.port === H2C);
    expect(mine.length, JSON.stringify(flows.map((x) => x.dst.port))).toBe(2);
    expect(mine.map((x) => x.app)).toEqual(mine.map(() => 'http2'));
    expect(mine.flatMap((x) => x.http)).toEqual([
      { method: 'GET', host: `${t.lab.serverIp}:${H2C}`, path: '/first', status: 200 },
      { method: 'GET', host: `${t.lab.serverIp}:${H2C}`, path: '/missing', status: 404 },
    ]);
    const r = await run('tshark', ['-r', out, '-d', `tcp.port==${H2C},http`, '-Y', `tcp.srcport == ${H2C} && (http.response || http2.headers.status)`, '-T', 'fields',
      '-e', 'http.response.code', '-e', 'http2.headers.status']);
    expect(r.code, r.stderr).toBe(0);
    const codes = r.stdout.split(/[\n\t,]/).filter(Boolean);
    expect(codes.filter((x) => x !== '101')).toEqual(['200', '404']);
    expect(codes.filter((x) => x === '101').length).toBe(2);
  });
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
    expect(f!.http).toEqual([{ method: 'GET', host: `${t.lab.serverIp}:${PORT}`, path: '/chat', status: 101 }]);
    const r = await run('tshark', ['-r', out, '-Y', `websocket && tcp.port == ${f!.src.port}`, '-T', 'fields', '-e', 'websocket.opcode']);
    expect(r.code, r.stderr).toBe(0);
    // (two text messages each way, and the two closes)
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['1', '1', '1', '1', '8', '8']);
    expect((await flowsJson(out, env, 'app == "websocket"')).map((x) => x.src.port)).toEqual([f!.src.port]);
  });
});
