// HTTP still in flight when a capture ends, really: curl downloads a body the server trickles out (HTTP/1.1), follows
// an HTTP/2 (h2c) stream the server never ends, and uploads a body slowly, while `tapscope capture --duration` records
// them in AF_PACKET mode and stops in the middle of all three. The flows of the file list each exchange as far as it
// came, marked unfinished: the answers' statuses are the ones tshark reads from their heads, and the upload is listed
// though its body never ended.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Flow } from '../../src/model/flow.js';
import { run } from '../lib/lab.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, flowsJson } from './core-cli.js';

const H1 = 8080;
const H2C = 8081;

// the server: /slow answers 200 with a Content-Length of 1 MB and sends 1000 bytes every 200 ms; /upload reads its
// request's body slowly and never answers; HTTP/2 without TLS (prior knowledge) answers /events 200 and sends an
// event every 200 ms, never ending the stream
const SERVER = `
const http = require('node:http');
const http2 = require('node:http2');
http.createServer((req, res) => {
  if (req.url === '/upload') { req.on('data', () => { req.pause(); setTimeout(() => req.resume(), 300); }); return; }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(1000000) });
  const tick = () => { if (!res.destroyed) { res.write('x'.repeat(1000)); setTimeout(tick, 200); } };
  tick();
}).listen(${H1}, () => console.log('listening ${H1}'));
http2.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  let n = 0;
  const tick = () => { if (!res.destroyed && !res.writableEnded) { res.write('data: ' + n++ + '\\n\\n'); setTimeout(tick, 200); } };
  tick();
}).listen(${H2C}, () => console.log('listening ${H2C}'));
`;

const t = useTlsLab('tsc-inflight', '10.202.45');
let server: ChildProcess | null = null;
const clients: ChildProcess[] = [];
let out = '';
let flows: Flow[] = [];
let env: NodeJS.ProcessEnv = {};

const byPort = (port: number): Flow => {
  const f = flows.find((x) => x.dst.port === port && x.http.length > 0);
  if (!f) throw new Error(`no HTTP flow to port ${port} among ${flows.map((x) => `${x.dst.port}:${x.http.length}`).join(', ')}`);
  return f;
};

beforeAll(async () => {
  writeFileSync(join(t.dir, 'server.cjs'), SERVER);
  writeFileSync(join(t.dir, 'upload.bin'), Buffer.alloc(400_000, 0x75));
  server = t.lab.spawnIn(t.lab.serverNs, 'node', [join(t.dir, 'server.cjs')]);
  let said = '';
  server.stdout!.on('data', (d: Buffer) => { said += d.toString(); });
  for (let i = 0; i < 100 && !(said.includes(`listening ${H1}`) && said.includes(`listening ${H2C}`)); i++) await new Promise((r) => setTimeout(r, 100));
  expect(said).toContain(`listening ${H2C}`);
  const cap = await captureLab(t.lab, t.dir, 'inflight.pcapng', 'afpacket', 4);
  out = cap.out;
  const base = `http://${t.lab.serverIp}`;
  clients.push(t.lab.spawnIn(t.lab.nodeNs, 'curl', ['-sS', '-o', '/dev/null', '--max-time', '20', `${base}:${H1}/slow`]));
  clients.push(t.lab.spawnIn(t.lab.nodeNs, 'curl', ['-sS', '-o', '/dev/null', '--max-time', '20', '--http2-prior-knowledge', `${base}:${H2C}/events`]));
  clients.push(t.lab.spawnIn(t.lab.nodeNs, 'curl', ['-sS', '-o', '/dev/null', '--max-time', '20', '--limit-rate', '20k', '-T', join(t.dir, 'upload.bin'), `${base}:${H1}/upload`]));
  expect(await cap.cap.exited, cap.cap.stderr()).toBe(0);
  // (every client was still going when the capture stopped)
  expect(clients.map((c) => c.exitCode)).toEqual([null, null, null]);
  env = cap.env;
  flows = await flowsJson(out, env);
}, 90_000);

afterAll(() => {
  for (const c of clients) c.kill();
  server?.kill();
});

/** tshark's fields of the packets `filter` keeps, one line each, reading the HTTP heads without waiting for bodies. */
async function tshark(filter: string, fields: string[]): Promise<string[]> {
  const r = await run('tshark', ['-r', out, '-o', 'http.desegment_body:FALSE', '-d', `tcp.port==${H2C},http2`, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('HTTP in flight when the capture ended (curl, AF_PACKET capture)', () => {
  it('a download whose body was still coming: its status from the response head, unfinished', async () => {
    const f = flows.find((x) => x.dst.port === H1 && x.http.some((h) => h.path === '/slow'));
    expect(f, JSON.stringify(flows.map((x) => x.http))).toBeTruthy();
    expect(f!.http).toEqual([{ method: 'GET', host: `${t.lab.serverIp}:${H1}`, path: '/slow', status: 200, unfinished: true }]);
    // (tshark reads the same head from the same packets)
    expect(await tshark(`http.response && tcp.srcport == ${H1} && tcp.dstport == ${f!.src.port}`, ['http.response.code'])).toEqual(['200']);
  });

  it('an HTTP/2 stream the server had not ended: its status, unfinished', async () => {
    const f = byPort(H2C);
    expect(f.app).toBe('http2');
    expect(f.http).toEqual([{ method: 'GET', host: `${t.lab.serverIp}:${H2C}`, path: '/events', status: 200, unfinished: true }]);
    expect(await tshark(`http2.headers.status && tcp.srcport == ${H2C}`, ['http2.headers.status'])).toEqual(['200']);
  });

  it('an upload whose body was still going: listed, unfinished, with no answer', async () => {
    const f = flows.find((x) => x.dst.port === H1 && x.http.some((h) => h.path === '/upload'));
    expect(f, JSON.stringify(flows.map((x) => x.http))).toBeTruthy();
    expect(f!.http).toEqual([{ method: 'PUT', host: `${t.lab.serverIp}:${H1}`, path: '/upload', status: null, unfinished: true }]);
    expect(await tshark(`http.request.method == "PUT"`, ['http.request.uri'])).toEqual(['/upload']);
  });

  it('the filter finds the three', async () => {
    const kept = await flowsJson(out, env, 'http.unfinished');
    expect(kept.map((x) => x.http[0]!.path).sort()).toEqual(['/events', '/slow', '/upload']);
  });
});
