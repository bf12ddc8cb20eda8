// Redaction of real captures: in a private namespace pair, a Python client writes requests in pieces (TCP_NODELAY,
// one send per piece) so the Authorization and Cookie headers straddle TCP segments (plain HTTP/1.1 and
// cleartext HTTP/2) and decrypted TLS records (HTTPS, HTTP/1.1 and HTTP/2), HTTP/2 with HEADERS + CONTINUATION
// in two writes and values under a dynamic-table name. `tapscope capture` records it with the real helper; `tapscope export --format pcapng`
// must leave no secret (tshark's fields, the file's bytes, and the HAR our own dissectors read back from the
// export), while tshark still dissects the requests; with --include-secrets the values are there.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TSHARK_TLS_PORTS, createLab, run, startHttpsServers, uniquePrefix, type Lab, type HttpsServers } from '../lib/lab.js';
import { runCli, startCli } from './core-cli.js';
import { CONTINUATION, END_HEADERS, END_STREAM, HEADERS, SETTINGS, addNew, frame, indexed, litIdx } from '../unit/export-h2-frames.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';

const PLAIN_PORT = 8080;
const TLS_PORT = 8443;
const PLAIN_HOST = 'a.tapscope.test';
const TLS_HOST = 'b.tapscope.test';
const H2_HOST = 'c.tapscope.test';
const H2C_HOST = 'd.tapscope.test';
const H2C_PORT = 8081;
const SECRETS = {
  plainAuth: 'Bearer plain-auth-0001',
  plainCookie: 'sid=plain-cookie-0002',
  setCookie: 'srv=plain-setcookie-0003',
  tlsAuth: 'Bearer tls-auth-0004',
  tlsCookie: 'sid=tls-cookie-0005',
  h2New: 'Bearer h2-new-0006',
  h2Split: 'Bearer h2-split-0009',
  h2Dynamic: 'Bearer h2-dynamic-0007',
  h2Huffman: 'sid=h2-huffman-0008',
  h2cNew: 'Bearer h2c-new-0010',
  h2cSplit: 'Bearer h2c-split-0011',
  h2cDynamic: 'Bearer h2c-dynamic-0012',
  h2cHuffman: 'sid=h2c-huffman-0013',
};
const ALL = Object.values(SECRETS);
/** Distinctive tails: a secret split across packets still shows its tail whole in one of them. */
const TAILS = ALL.map((s) => s.slice(-8));

// One TCP connection: writes each hex chunk with its own send (Nagle off) 150 ms apart, then reads the answer.
const CLIENT = `
import socket, ssl, sys, time
ip, port, mode, sni, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
raw = socket.create_connection((ip, port))
raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s = raw
if mode != 'plain':
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols([mode])
    s = ctx.wrap_socket(raw, server_hostname=sni)
    if s.selected_alpn_protocol() != mode:
        sys.exit('ALPN: ' + str(s.selected_alpn_protocol()))
for h in sys.argv[6:]:
    s.sendall(bytes.fromhex(h))
    time.sleep(0.15)
s.settimeout(1.5)
got = b''
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
except socket.timeout:
    pass
sys.stdout.write(got.decode('latin1'))
`;

// Plain HTTP/1.1 and cleartext HTTP/2 (prior knowledge) servers.
const PLAIN_SERVER = `
let ready = 0;
const up = () => { if (++ready === 2) process.stdout.write('listening\\n'); };
require('node:http').createServer((req, res) => {
  res.setHeader('Set-Cookie', process.env.SET_COOKIE);
  res.end('hello from tapscope lab ' + req.url);
}).listen(${PLAIN_PORT}, up);
require('node:http2').createServer((req, res) => res.end('hello from tapscope lab: ' + req.method + ' ' + req.url + ' \\n')).listen(${H2C_PORT}, up);
`;

/** An HTTP/1.1 request cut inside the Authorization name, inside its value and inside the Cookie name. */
function http1Pieces(host: string, path: string, auth: string, cookie: string): Buffer[] {
  const req = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${auth}\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`;
  const cuts = [req.indexOf('Authorization') + 5, req.indexOf(auth) + 10, req.indexOf('Cookie') + 3, req.indexOf(cookie) + 6];
  return [0, ...cuts].map((a, i) => Buffer.from(req.slice(a, cuts[i] ?? req.length), 'latin1'));
}

/**
 * HTTP/2 on one connection, one write per piece: request 1 adds authorization to the dynamic table as a new
 * literal name; request 2 sends another value under that dynamic-table name (index 62) and a Huffman-coded
 * cookie; request 3's block is cut inside its dynamic-name value into HEADERS and CONTINUATION, sent in two
 * writes (two records, or two segments for h2c). tshark decodes requests 1 and 2 from records (it does not
 * join a header block across records) and all three on the wire.
 */
function h2Pieces(host: string, prefix: string, v: { fresh: string; dynamic: string; huffman: string; split: string }): Buffer[] {
  // (:method GET, :scheme https over TLS and http in cleartext, as clients send them: the HAR's URLs take the scheme)
  const common = (path: string) => [indexed(2), indexed(prefix === 'h2c' ? 6 : 7), litIdx(4, `/${prefix}-${path}`), litIdx(1, host)];
  const b1 = Buffer.concat([...common('one'), addNew('authorization', v.fresh)]);
  const b2 = Buffer.concat([...common('two'), litIdx(62, v.dynamic), litIdx(32, v.huffman, true)]);
  const b3 = Buffer.concat([...common('three'), litIdx(62, v.split)]);
  const cut = b3.length - 8;
  return [
    Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_STREAM | END_HEADERS, 1, b1)]),
    frame(HEADERS, END_STREAM | END_HEADERS, 3, b2),
    frame(HEADERS, END_STREAM, 5, b3.subarray(0, cut)),
    frame(CONTINUATION, END_HEADERS, 5, b3.subarray(cut)),
  ];
}

let lab: Lab;
let servers: HttpsServers;
let dir: string;
let env: NodeJS.ProcessEnv;
let capture: string;
const replies: string[] = [];

async function client(mode: 'plain' | 'http/1.1' | 'h2', host: string, port: number, pieces: Buffer[]): Promise<string> {
  const r = await lab.execIn(lab.nodeNs, '/usr/bin/python3', ['-c', CLIENT, lab.serverIp, String(port), mode, host, servers.ca,
    ...pieces.map((p) => p.toString('hex'))], { timeoutMs: 30_000 });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

async function tshark(file: string, args: string[]): Promise<string> {
  const r = await run('tshark', ['-r', file, ...TSHARK_TLS_PORTS, ...args], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  // no warnings: the rewritten packets read as cleanly as the captured ones
  expect(r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Running as user'))).toEqual([]);
  return r.stdout;
}

const HTTP_FIELDS = ['-Y', 'http', '-T', 'fields', '-e', 'http.request.method', '-e', 'http.host', '-e', 'http.authorization', '-e', 'http.cookie'];
// why: the h2c server speaks first (SETTINGS), which hides the client preface from tshark's heuristic
const H2_FIELDS = ['-d', `tcp.port==${H2C_PORT},http2`, '-Y', 'http2.type == 1 || http2.type == 9', '-T', 'fields', '-E', 'occurrence=a', '-e', 'http2.header.name', '-e', 'http2.header.value'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsr-export-'));
  lab = await createLab(uniquePrefix('tsr-'), '10.232.1');
  servers = await startHttpsServers(lab, [TLS_PORT]);
  // why: the value goes in the environment, not the command line the helper records for each process
  const plain = lab.spawnIn(lab.serverNs, process.execPath, ['-e', PLAIN_SERVER], { env: { ...process.env, SET_COOKIE: `${SECRETS.setCookie}; Path=/` } });
  await new Promise<void>((resolve, reject) => {
    plain.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('listening')) resolve(); });
    plain.on('exit', (code) => reject(new Error(`plain server exited (${code})`)));
  });
  env = { TAPSCOPE_HOME: join(dir, 'home'), TAPSCOPE_LOCAL_NETNS: lab.nodeNs };
  capture = join(dir, 'capture.pcapng');
  const cap = startCli(['capture', '--out', capture], env, { detached: true });
  await cap.waitFor(': capturing');
  replies.push(await client('plain', PLAIN_HOST, PLAIN_PORT, http1Pieces(PLAIN_HOST, '/plain', SECRETS.plainAuth, SECRETS.plainCookie)));
  replies.push(await client('http/1.1', TLS_HOST, TLS_PORT, http1Pieces(TLS_HOST, '/tls', SECRETS.tlsAuth, SECRETS.tlsCookie)));
  replies.push(await client('h2', H2_HOST, TLS_PORT, h2Pieces(H2_HOST, 'h2', { fresh: SECRETS.h2New, dynamic: SECRETS.h2Dynamic, huffman: SECRETS.h2Huffman, split: SECRETS.h2Split })));
  replies.push(await client('plain', H2C_HOST, H2C_PORT, h2Pieces(H2C_HOST, 'h2c', { fresh: SECRETS.h2cNew, dynamic: SECRETS.h2cDynamic, huffman: SECRETS.h2cHuffman, split: SECRETS.h2cSplit })));
  // why: the helper flushes hook events asynchronously; give the last ones a moment
  await new Promise((r) => setTimeout(r, 500));
  process.kill(-cap.child.pid!, 'SIGINT');
  expect(await cap.exited, cap.stderr()).toBe(0);
});

afterAll(async () => {
  await servers?.stop();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('redaction of a real capture with headers split across packets', () => {
  it('the servers answered, and the capture really holds the requests in pieces (segments and records)', async () => {
    expect(replies[0]).toContain('hello from tapscope lab /plain');
    expect(replies[1]).toContain('hello from tapscope lab: GET /tls');
    for (const [i, p] of [[2, 'h2'], [3, 'h2c']] as const) {
      for (const n of ['one', 'two', 'three']) expect(replies[i]).toContain(`hello from tapscope lab: GET /${p}-${n} `);
    }
    const segs = await tshark(capture, ['-Y', `tcp.dstport == ${PLAIN_PORT} && tcp.len > 0`, '-T', 'fields', '-e', 'tcp.len']);
    expect(segs.trim().split('\n').length).toBeGreaterThanOrEqual(5);
    const recs = await tshark(capture, ['-Y', `exported_pdu.dst_port == ${TLS_PORT}`, '-T', 'fields', '-e', 'frame.len']);
    expect(recs.trim().split('\n').length).toBeGreaterThanOrEqual(5 + 4);
    // the secrets are in the capture as it was recorded
    const bytes = readFileSync(capture).toString('latin1');
    expect(TAILS.filter((t) => !bytes.includes(t))).toEqual([SECRETS.h2Huffman.slice(-8), SECRETS.h2cHuffman.slice(-8)]);
  });

  it("each TLS connection's decrypted records name one protocol, the h2 server's first write (SETTINGS, before it read the preface) too", async () => {
    // why: a record that does not begin a message (a request's second piece, a server's SETTINGS before the client's
    // preface) was tagged "data", and Wireshark showed its bytes undissected
    const rows = await tshark(capture, ['-Y', `exported_pdu.src_port == ${TLS_PORT} || exported_pdu.dst_port == ${TLS_PORT}`, '-T', 'fields',
      '-e', 'exported_pdu.src_port', '-e', 'exported_pdu.dst_port', '-e', 'exported_pdu.prot_name']);
    const byConn = new Map<string, Set<string>>();
    for (const [src, dst, proto] of rows.trim().split('\n').map((l) => l.split('\t'))) {
      const conn = src === String(TLS_PORT) ? dst! : src!;
      byConn.set(conn, (byConn.get(conn) ?? new Set()).add(proto!));
    }
    // the HTTP/1.1 client's and the h2 client's connections, each end's records (both ends hooked)
    expect([...byConn.values()].map((s) => [...s].sort().join(',')).sort()).toEqual(['http', 'http2']);
    // the server's own SETTINGS (not an acknowledgment), as its hook wrote it, read by tshark as HTTP/2
    const settings = await tshark(capture, ['-Y', `exported_pdu.src_port == ${TLS_PORT} && frame.comment contains "dir=out" && http2.type == 4 && http2.flags.ack.settings == 0`, '-T', 'fields', '-e', 'frame.number']);
    expect(settings.trim()).not.toBe('');
  });

  it('export --format pcapng leaves no secret value, and tshark still dissects the requests', async () => {
    const out = join(dir, 'redacted.pcapng');
    const e = await runCli(['export', capture, '--format', 'pcapng', '--out', out], env);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stderr).toContain('secrets redacted');
    const http = await tshark(out, HTTP_FIELDS);
    const rows = http.split('\n').map((l) => l.trimEnd()).filter(Boolean);
    // plain HTTP: tshark reassembles the segments and sees the masked values
    expect(rows).toContain(`GET\t${PLAIN_HOST}\t${'x'.repeat(SECRETS.plainAuth.length)}\t${'x'.repeat(SECRETS.plainCookie.length)}`);
    // decrypted records: tshark does not join records, it shows the request from its first record
    expect(rows).toContain(`GET\t${TLS_HOST}`);
    const h2 = await tshark(out, H2_FIELDS);
    // requests 1 and 2 decode in tshark with their secret values masked to the same length
    const esc = (x: string) => x.replace(/\./g, '\\.');
    expect(h2).toMatch(new RegExp(`/h2-one,${esc(H2_HOST)},x{${SECRETS.h2New.length}}$`, 'm'));
    expect(h2).toMatch(new RegExp(`/h2-two,${esc(H2_HOST)},x{${SECRETS.h2Dynamic.length}},[x0*-]{${SECRETS.h2Huffman.length}}$`, 'm'));
    // h2c: tshark joins the segments, so the block cut into HEADERS + CONTINUATION decodes too
    expect(h2).toMatch(new RegExp(`/h2c-one,${esc(H2C_HOST)},x{${SECRETS.h2cNew.length}}$`, 'm'));
    expect(h2).toMatch(new RegExp(`/h2c-two,${esc(H2C_HOST)},x{${SECRETS.h2cDynamic.length}},[x0*-]{${SECRETS.h2cHuffman.length}}$`, 'm'));
    // (tshark lists the header that ends in the CONTINUATION frame on that frame's row)
    expect(h2).toMatch(new RegExp(`/h2c-three,${esc(H2C_HOST)}\n(.*\n)*authorization\tx{${SECRETS.h2cSplit.length}}$`, 'm'));
    const setCookie = await tshark(out, ['-Y', 'http.response', '-T', 'fields', '-e', 'http.set_cookie']);
    expect(setCookie.trim()).toBe('x'.repeat(`${SECRETS.setCookie}; Path=/`.length));
    const full = await tshark(out, ['-V', '-x']);
    const bytes = readFileSync(out).toString('latin1');
    expect(TAILS.filter((t) => http.includes(t) || h2.includes(t) || full.includes(t) || bytes.includes(t))).toEqual([]);
    // our own dissectors read the export back: every request is there, no secret value is
    const har = join(dir, 'redacted.har');
    expect((await runCli(['export', out, '--format', 'har', '--out', har, '--include-secrets'], env)).code).toBe(0);
    // why: hooks see every process on the machine; keep the exchanges with this lab's server
    const entries = (JSON.parse(readFileSync(har, 'utf8')) as { log: { entries: { serverIPAddress: string; request: { url: string; headers: { name: string; value: string }[] } }[] } })
      .log.entries.filter((x) => x.serverIPAddress === lab.serverIp);
    expect(entries.map((x) => x.request.url).sort()).toEqual([
      `http://${PLAIN_HOST}/plain`, `https://${TLS_HOST}/tls`, ...['one', 'two', 'three'].flatMap((n) => [`https://${H2_HOST}/h2-${n}`, `http://${H2C_HOST}/h2c-${n}`])].sort());
    const secretValues = entries.flatMap((x) => x.request.headers).filter((h) => /^(authorization|cookie)$/i.test(h.name)).map((h) => h.value);
    expect(secretValues).toHaveLength(12);
    for (const v of secretValues) expect(v).toMatch(/^[x0*-]+$/);
  });

  it('export --include-secrets keeps every value', async () => {
    const out = join(dir, 'secrets.pcapng');
    const e = await runCli(['export', capture, '--format', 'pcapng', '--out', out, '--include-secrets'], env);
    expect(e.code, e.stderr).toBe(0);
    const rows = (await tshark(out, HTTP_FIELDS)).split('\n').map((l) => l.trimEnd());
    expect(rows).toContain(`GET\t${PLAIN_HOST}\t${SECRETS.plainAuth}\t${SECRETS.plainCookie}`);
    const h2 = await tshark(out, H2_FIELDS);
    for (const v of [SECRETS.h2New, SECRETS.h2Dynamic, SECRETS.h2Huffman, SECRETS.h2cNew, SECRETS.h2cDynamic, SECRETS.h2cHuffman, SECRETS.h2cSplit]) expect(h2).toContain(v);
    const har = join(dir, 'secrets.har');
    expect((await runCli(['export', out, '--format', 'har', '--out', har, '--include-secrets'], env)).code).toBe(0);
    const text = readFileSync(har, 'utf8');
    expect(ALL.filter((s) => s !== SECRETS.setCookie && !text.includes(s))).toEqual([]);
  });
});
