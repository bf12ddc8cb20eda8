#!/usr/bin/env node
// Generates resources/fingerprints/ja4.json from the real TLS clients installed on this machine, and
// (with --fixtures) the ClientHello golden fixtures in test/fixtures/dissect/.
//
// How: inside a private network namespace (tsd-fp, whose /etc/hosts maps fp.tapscope.test to
// 127.0.0.1 so every client sends SNI the ordinary way), a raw TCP server on 127.0.0.1:8443 reads
// each client's ClientHello and hangs up, while tcpdump records loopback. Each client runs the way a
// user runs it (default ALPN, SNI from the URL). JA3/JA4 come from src/dissect/tls.ts and are
// cross-checked against tshark: JA3 against tshark's own ja3/ja3_full fields, JA4 against a JA4
// assembled here from tshark's dissected fields (this tshark has no ja4 field). Any disagreement
// fails the run. DTLS clients send their ClientHello to a UDP socket on 127.0.0.1:8444, which never answers.
//
// Usage (root): node scripts/gen-fingerprints.mjs [--fixtures] [--merge] [--out FILE] [--fixtures-dir DIR]
//   --merge keeps the entries already in FILE and adds this machine's fingerprints that FILE lacks (a fingerprint
//   and library pair not in it yet: another point release of a client that hellos differently), so the table
//   holds every distinct fingerprint of the machines it was generated on; without it, FILE is this machine's only.
//   Every entry records its origin (host, kernel, machine, run): the machine and run it was captured on; --merge keeps
//   the origin of the entries already in FILE (one that has none gets FILE's top-level host, the rest "unrecorded").
//   FP_ONLY=curl,wget runs a subset (debugging); since a subset would replace the whole table, it refuses the default
//   FILE unless --merge is given, and the default fixtures directory always. FP_KEEP=1 keeps the work directory (pcap).
// A client that sends no ClientHello, that tshark does not see, or whose JA3/JA4 tshark disagrees with fails the run:
// it exits 1 naming the failed clients and writes nothing (no table, no fixtures).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NETNS = 'tsd-fp';
const HOST = 'fp.tapscope.test';
const PORT = 8443;
/** where the DTLS clients send their hellos (UDP) */
const DTLS_PORT = 8444;
const URL_ = `https://${HOST}:${PORT}/`;
function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? path.resolve(process.argv[i + 1]) : fallback;
}
const DEFAULT_FIXTURES = path.join(ROOT, 'test/fixtures/dissect');
const DEFAULT_OUT = path.join(ROOT, 'resources/fingerprints/ja4.json');
const FIXTURES = option('--fixtures-dir', DEFAULT_FIXTURES);
const OUT = option('--out', DEFAULT_OUT);
const MERGE = process.argv.includes('--merge');
const writeFixtures = process.argv.includes('--fixtures') || process.argv.includes('--fixtures-dir');

// why: FP_ONLY is for debugging a few clients; its table would replace the committed one (and its fixtures the
// committed fixtures) with just those clients
if (process.env.FP_ONLY) {
  if (OUT === DEFAULT_OUT && !MERGE) {
    console.error(`gen-fingerprints: FP_ONLY runs only some clients and would replace ${path.relative(ROOT, DEFAULT_OUT)} with them: `
      + 'give --out FILE, or --merge to add to the table');
    process.exit(2);
  }
  if (writeFixtures && FIXTURES === DEFAULT_FIXTURES) {
    console.error(`gen-fingerprints: FP_ONLY runs only some clients and would replace the fixtures in ${path.relative(ROOT, DEFAULT_FIXTURES)} `
      + 'with them: give --fixtures-dir DIR');
    process.exit(2);
  }
}

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}
function firstLine(s) {
  return s.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
}
function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
function dpkgVersion(pkg) {
  const v = sh('dpkg-query', ['-W', '-f=${Version}', pkg]);
  return /no packages found/i.test(v) || v === '' ? null : v;
}

/** Path options resolved against the caller's cwd, since the inner run works in ROOT. */
function absoluteArgs(args) {
  return args.map((a, i) => (i > 0 && (args[i - 1] === '--out' || args[i - 1] === '--fixtures-dir') ? path.resolve(a) : a));
}

// ---------- outer: set up the namespace, re-run inside it, clean up ----------
if (!process.argv.includes('--inside')) {
  if (process.getuid?.() !== 0) {
    console.error('gen-fingerprints: needs root (creates network namespace tsd-fp)');
    process.exit(1);
  }
  const etc = `/etc/netns/${NETNS}`;
  const cleanup = () => {
    spawnSync('ip', ['netns', 'del', NETNS]);
    fs.rmSync(etc, { recursive: true, force: true });
  };
  cleanup();
  let status = 1;
  try {
    execFileSync('ip', ['netns', 'add', NETNS]);
    execFileSync('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);
    fs.mkdirSync(etc, { recursive: true });
    // why: `ip netns exec` bind-mounts /etc/netns/NAME/hosts over /etc/hosts, so clients resolve a
    // dotted name (Java sends no SNI for dotless names like "localhost") without touching the host.
    fs.writeFileSync(path.join(etc, 'hosts'), `127.0.0.1 ${HOST} localhost\n::1 localhost\n`);
    const r = spawnSync('ip', ['netns', 'exec', NETNS, process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), '--inside', ...absoluteArgs(process.argv.slice(2))], {
      stdio: 'inherit', cwd: ROOT,
    });
    status = r.status ?? 1;
  } finally {
    cleanup();
  }
  process.exit(status);
}

// ---------- inner: inside the namespace ----------
const { parseClientHello, ja3, ja4, ja4Raw } = await import('../src/dissect/tls.ts');
const { QuicInitialParser } = await import('../src/dissect/quic.ts');
const { DtlsHandshake } = await import('../src/dissect/dtls.ts');
const { tsharkClientHellos } = await import('../test/lib/tshark-ja4.ts');
const dgram = await import('node:dgram');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsd-fp-'));

const opensslVersion = firstLine(sh('openssl', ['version'])).replace(/^OpenSSL\s+/, '').split(' ')[0];
const gnutlsVersion = (sh('gnutls-cli', ['--version']).match(/gnutls-cli ([\d.]+)/) ?? [])[1] ?? dpkgVersion('libgnutls30');

/** @type {{name: string, library: string, libraryVersion: string|null, client: string, run: () => string[]|null, env?: object, timeoutMs?: number}[]} */
const clients = [];

if (have('curl')) {
  clients.push({ name: 'curl', library: 'openssl', libraryVersion: opensslVersion, client: firstLine(sh('curl', ['--version'])).split(' ').slice(0, 2).join(' '),
    run: () => ['curl', '-s', '-m', '5', '-o', '/dev/null', URL_] });
}
if (have('openssl')) {
  clients.push({ name: 'openssl-s_client', library: 'openssl', libraryVersion: opensslVersion, client: `openssl s_client ${opensslVersion}`,
    run: () => ['sh', '-c', `openssl s_client -connect ${HOST}:${PORT} </dev/null`] });
}
if (have('python3')) {
  const pyssl = firstLine(sh('python3', ['-c', 'import ssl,sys;print(sys.version.split()[0], ssl.OPENSSL_VERSION)']));
  clients.push({ name: 'python-urllib', library: 'openssl', libraryVersion: (pyssl.match(/OpenSSL ([\w.]+)/) ?? [])[1] ?? opensslVersion,
    client: `python ${pyssl.split(' ')[0]} urllib`,
    run: () => ['python3', '-c', `import urllib.request\ntry: urllib.request.urlopen('${URL_}', timeout=5)\nexcept Exception: pass`] });
}
clients.push({ name: 'node-fetch', library: 'openssl', libraryVersion: process.versions.openssl.replace(/\+.*/, ''), client: `node ${process.version} fetch (undici)`,
  run: () => [process.execPath, '-e', `fetch('${URL_}').catch(() => {})`] });
clients.push({ name: 'node-https', library: 'openssl', libraryVersion: process.versions.openssl.replace(/\+.*/, ''), client: `node ${process.version} https`,
  run: () => [process.execPath, '-e', `require('https').get('${URL_}').on('error', () => {})`] });
if (have('wget') && /\+ssl\/gnutls/.test(sh('wget', ['--version']))) {
  clients.push({ name: 'wget', library: 'gnutls', libraryVersion: gnutlsVersion, client: firstLine(sh('wget', ['--version'])).split(' ').slice(0, 3).join(' '),
    run: () => ['wget', '-q', '-T', '5', '-t', '1', '-O', '/dev/null', URL_] });
}
if (have('git') && fs.existsSync('/usr/lib/git-core/git-remote-https')) {
  clients.push({ name: 'git', library: 'gnutls', libraryVersion: gnutlsVersion, client: `${firstLine(sh('git', ['--version']))} (libcurl-gnutls)`,
    run: () => ['git', 'ls-remote', `${URL_}repo.git`], env: { GIT_TERMINAL_PROMPT: '0', GIT_SSL_NO_VERIFY: '1' } });
}
if (have('gnutls-cli')) {
  clients.push({ name: 'gnutls-cli', library: 'gnutls', libraryVersion: gnutlsVersion, client: `gnutls-cli ${gnutlsVersion}`,
    run: () => ['sh', '-c', `gnutls-cli -p ${PORT} ${HOST} </dev/null`] });
}
// DTLS: the same libraries' datagram TLS, as their own test clients use it (JA4 starts with d)
if (have('openssl')) {
  clients.push({ name: 'openssl-s_client-dtls', library: 'openssl', libraryVersion: opensslVersion, client: `openssl s_client -dtls ${opensslVersion}`,
    run: () => ['sh', '-c', `openssl s_client -dtls -connect 127.0.0.1:${DTLS_PORT} -servername ${HOST} </dev/null`] });
}
if (have('gnutls-cli')) {
  clients.push({ name: 'gnutls-cli-dtls', library: 'gnutls', libraryVersion: gnutlsVersion, client: `gnutls-cli --udp ${gnutlsVersion}`,
    run: () => ['sh', '-c', `gnutls-cli --udp --insecure --sni-hostname=${HOST} -p ${DTLS_PORT} 127.0.0.1 </dev/null`] });
}
if (have('java')) {
  const jv = sh('java', ['-version']);
  const javaVersion = (jv.match(/version "([^"]+)"/) ?? [])[1] ?? null;
  const src = path.join(work, 'Fp.java');
  fs.writeFileSync(src, `import java.net.URI;
import java.net.http.*;
public class Fp {
  public static void main(String[] a) throws Exception {
    try {
      if (a[0].equals("urlconnection")) {
        javax.net.ssl.HttpsURLConnection c = (javax.net.ssl.HttpsURLConnection) new java.net.URL(a[1]).openConnection();
        c.setConnectTimeout(5000); c.setReadTimeout(5000); c.getResponseCode();
      } else {
        HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(a[1])).build(), HttpResponse.BodyHandlers.discarding());
      }
    } catch (Exception e) { }
  }
}
`);
  clients.push({ name: 'java-httpclient', library: 'java-jsse', libraryVersion: javaVersion, client: `java ${javaVersion} HttpClient`, timeoutMs: 30_000,
    run: () => ['java', src, 'httpclient', URL_] });
  clients.push({ name: 'java-urlconnection', library: 'java-jsse', libraryVersion: javaVersion, client: `java ${javaVersion} HttpsURLConnection`, timeoutMs: 30_000,
    run: () => ['java', src, 'urlconnection', URL_] });
}
if (have('go')) {
  const dir = path.join(work, 'gofp');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'main.go'), `package main

import (
	"net/http"
	"os"
	"time"
)

func main() {
	c := &http.Client{Timeout: 5 * time.Second}
	if r, err := c.Get(os.Args[1]); err == nil {
		r.Body.Close()
	}
}
`);
  fs.writeFileSync(path.join(dir, 'go.mod'), 'module gofp\n\ngo 1.19\n');
  const goVersion = (sh('go', ['version']).match(/go version go([\d.]+)/) ?? [])[1] ?? null;
  const built = spawnSync('go', ['build', '-o', path.join(dir, 'gofp'), '.'], {
    cwd: dir, encoding: 'utf8', timeout: 300_000, env: { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off', GOCACHE: path.join(work, 'gocache') },
  });
  if (built.status === 0) {
    clients.push({ name: 'go-net-http', library: 'go-crypto-tls', libraryVersion: goVersion, client: `go ${goVersion} net/http`,
      run: () => [path.join(dir, 'gofp'), URL_] });
  } else {
    console.error(`gen-fingerprints: go build failed, skipping Go: ${built.stderr}`);
  }
}
if (have('tstclnt')) {
  const nss = dpkgVersion('libnss3');
  clients.push({ name: 'nss-tstclnt', library: 'nss', libraryVersion: nss ? nss.replace(/-.*/, '') : null, client: `NSS tstclnt ${nss ?? ''}`.trim(),
    run: () => ['sh', '-c', `tstclnt -h ${HOST} -p ${PORT} -D -o </dev/null`] });
}
if (have('chromium')) {
  const cv = (sh('chromium', ['--version']).match(/Chromium ([\d.]+)/) ?? [])[1] ?? null;
  clients.push({ name: 'chromium', library: 'boringssl', libraryVersion: null, client: `chromium ${cv}`, timeoutMs: 30_000,
    run: () => ['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${path.join(work, 'chromium')}`, '--dump-dom', URL_] });
  // HTTP/3: the same browser's ClientHello inside QUIC Initial packets (JA4 starts with q)
  clients.push({ name: 'chromium-quic', quic: true, library: 'boringssl', libraryVersion: null, client: `chromium ${cv} (QUIC)`, timeoutMs: 30_000,
    run: () => ['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${path.join(work, 'chromium-quic')}`,
      '--enable-quic', `--origin-to-force-quic-on=${HOST}:${PORT}`, '--dump-dom', URL_] });
}

/** clients that failed, with why: any of them and the run writes nothing */
const failed = [];
// why: FP_ONLY=name[,name] runs a subset, for debugging one client
if (process.env.FP_ONLY) {
  const only = new Set(process.env.FP_ONLY.split(',').map((n) => n.trim()).filter((n) => n !== ''));
  clients.splice(0, clients.length, ...clients.filter((c) => only.has(c.name)));
  for (const n of only) if (!clients.some((c) => c.name === n)) failed.push({ name: n, why: 'named in FP_ONLY but not available here' });
}

// Raw server: read one ClientHello per connection, remember it under the client currently running.
let current = null;
/** @type {Map<string, {transport: 'tcp'|'quic'|'dtls', port: number, hello?: Buffer, datagrams?: Buffer[], ch: object}>} */
const hellos = new Map();
const server = net.createServer((sock) => {
  const name = current;
  let buf = Buffer.alloc(0);
  sock.on('error', () => {});
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    const ch = parseClientHello(buf);
    if (ch === 'incomplete') return;
    if (ch && name && !hellos.has(name)) hellos.set(name, { transport: 'tcp', port: sock.remotePort, hello: buf, ch });
    sock.destroy();
  });
});
await new Promise((res) => server.listen(PORT, '127.0.0.1', res));
// QUIC: collect each client port's Initial datagrams until the ClientHello is complete; never answer.
const quic = new Map();
const udp = dgram.createSocket('udp4');
udp.on('message', (msg, rinfo) => {
  const name = current;
  if (!name || hellos.has(name)) return;
  const st = quic.get(rinfo.port) ?? { parser: new QuicInitialParser(), datagrams: [] };
  quic.set(rinfo.port, st);
  st.datagrams.push(msg);
  const ch = st.parser.push(msg);
  if (ch && ch !== 'incomplete') hellos.set(name, { transport: 'quic', port: rinfo.port, datagrams: st.datagrams, ch });
});
await new Promise((res) => udp.bind(PORT, '127.0.0.1', res));
// DTLS: the same for each client port's datagrams until its ClientHello is whole (a client that gets no answer sends it again)
const dtls = new Map();
const dtlsUdp = dgram.createSocket('udp4');
dtlsUdp.on('message', (msg, rinfo) => {
  const name = current;
  if (!name || hellos.has(name)) return;
  // (a port's datagrams are the client's that was running when its first came: a client retransmits its hello while it
  // waits, until it is stopped, and the next client may have started by then)
  const st = dtls.get(rinfo.port) ?? { name, handshake: new DtlsHandshake(), datagrams: [] };
  dtls.set(rinfo.port, st);
  if (st.name !== name) return;
  st.datagrams.push(msg);
  st.handshake.push(msg);
  const ch = st.handshake.clientHello();
  if (ch) hellos.set(name, { transport: 'dtls', port: rinfo.port, datagrams: st.datagrams, ch });
});
await new Promise((res) => dtlsUdp.bind(DTLS_PORT, '127.0.0.1', res));

const pcap = path.join(work, 'clienthellos.pcap');
const dump = spawn('tcpdump', ['-i', 'lo', '-U', '-s', '0', '-w', pcap, `dst port ${PORT} or dst port ${DTLS_PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] });
await new Promise((res, rej) => {
  let err = '';
  dump.stderr.on('data', (d) => {
    err += d;
    if (/listening on/.test(err)) res();
  });
  dump.on('exit', () => rej(new Error(`tcpdump exited: ${err}`)));
});

for (const c of clients) {
  current = c.name;
  const [cmd, ...args] = c.run();
  const t0 = Date.now();
  await new Promise((res) => {
    const p = spawn(cmd, args, { stdio: 'ignore', env: { ...process.env, ...(c.env ?? {}) } });
    const timer = setTimeout(() => p.kill('SIGKILL'), c.timeoutMs ?? 15_000);
    // why: some clients (chromium) keep running after the server hangs up; once we have the hello
    // there is no reason to wait for them
    const poll = setInterval(() => {
      if (hellos.has(c.name) && Date.now() - t0 > 500) p.kill('SIGKILL');
    }, 200);
    p.on('exit', () => { clearTimeout(timer); clearInterval(poll); res(); });
    p.on('error', () => { clearTimeout(timer); clearInterval(poll); res(); });
  });
  console.error(`gen-fingerprints: ${c.name}: ${hellos.has(c.name) ? 'hello captured' : 'NO HELLO'} (${Date.now() - t0} ms)`);
}
current = null;
await new Promise((r) => setTimeout(r, 1000));
dump.kill('SIGINT');
await new Promise((r) => dump.on('exit', r));
server.close();
udp.close();
dtlsUdp.close();

// tshark's view of the same hellos, keyed by "TRANSPORT:CLIENT_PORT", with the JA4 of tshark's own fields.
const tshark = new Map();
const hellosOf = (p, decode) => tsharkClientHellos(pcap, p, { decode, fields: [`${p}.handshake.ja3`, `${p}.handshake.ja3_full`] });
for (const h of [...hellosOf('tls', ['-d', `tcp.port==${PORT},tls`, '-d', `udp.port==${PORT},quic`]), ...hellosOf('dtls', ['-d', `udp.port==${DTLS_PORT},dtls`])]) {
  const key = `${h.transport}:${h.port}`;
  // why: a client that gets no answer retransmits its hello; the first hello per port is the one
  if (!tshark.has(key)) tshark.set(key, h);
}

const entries = [];
const fixtures = [];
for (const c of clients) {
  const got = hellos.get(c.name);
  if (!got) {
    failed.push({ name: c.name, why: 'no ClientHello' });
    continue;
  }
  const ch = got.ch;
  const mine = { ja4: ja4(ch, got.transport), ja3: ja3(ch) };
  const hello = tshark.get(`${got.transport}:${got.port}`);
  if (!hello) {
    console.error(`gen-fingerprints: ${c.name}: tshark saw no ClientHello from port ${got.port}`);
    failed.push({ name: c.name, why: 'tshark saw no ClientHello' });
    continue;
  }
  const p = got.transport === 'dtls' ? 'dtls' : 'tls';
  const theirs = { ja4: hello.ja4, ja3: hello.row[`${p}.handshake.ja3`], ja3Full: hello.row[`${p}.handshake.ja3_full`] };
  if (theirs.ja4 !== mine.ja4 || theirs.ja3 !== mine.ja3.hash || theirs.ja3Full !== mine.ja3.string) {
    console.error(`gen-fingerprints: ${c.name}: MISMATCH ours ${mine.ja4} ${mine.ja3.hash} vs tshark ${theirs.ja4} ${theirs.ja3}`);
    failed.push({ name: c.name, why: 'JA3/JA4 disagrees with tshark' });
    continue;
  }
  entries.push({ ja4: mine.ja4, ja3: mine.ja3.hash, library: c.library, libraryVersion: c.libraryVersion, client: c.client, source: 'captured' });
  fixtures.push({
    name: c.name, client: c.client, library: c.library, transport: got.transport, clientPort: got.port,
    ...(got.hello ? { helloHex: got.hello.toString('hex') } : { datagramsHex: got.datagrams.map((d) => d.toString('hex')) }),
    sni: ch.sni, alpn: ch.alpn, ja4Raw: ja4Raw(ch, got.transport),
    expected: { ja4: theirs.ja4, ja3: theirs.ja3, ja3Full: theirs.ja3Full },
  });
  console.error(`gen-fingerprints: ${c.name.padEnd(20)} ${mine.ja4}  ja3=${mine.ja3.hash}`);
}

// why: a table written without a failed client silently drops its library (and, without --merge, the entries
// another run had for it), and one written with a client tshark disagrees with records a wrong fingerprint
if (failed.length > 0) {
  for (const f of failed) console.error(`gen-fingerprints: FAILED ${f.name}: ${f.why}`);
  console.error(`gen-fingerprints: ${failed.length} client(s) failed (${failed.map((f) => f.name).join(', ')}): wrote nothing to ${OUT}`
    + `${writeFixtures ? ` nor ${FIXTURES}` : ''}`);
  if (!process.env.FP_KEEP) fs.rmSync(work, { recursive: true, force: true });
  else console.error(`gen-fingerprints: kept ${work}`);
  process.exit(1);
}

const osRelease = fs.readFileSync('/etc/os-release', 'utf8');
const pretty = (osRelease.match(/^PRETTY_NAME="?([^"\n]+)"?/m) ?? [])[1] ?? os.type();
const host = `${pretty}, ${os.arch()}, tshark ${(sh('tshark', ['--version']).match(/TShark \(Wireshark\) ([\d.]+)/) ?? [])[1] ?? '?'}`;
/** Tells machines apart whose host strings are equal: an app-specific hash of the machine id (the id itself stays private). */
function machineId() {
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = fs.readFileSync(f, 'utf8').trim();
      if (id) return crypto.createHash('sha256').update(`tapscope-gen-fingerprints:${id}`).digest('hex').slice(0, 12);
    } catch { /* next */ }
  }
  return 'unrecorded';
}
const generatedAt = new Date().toISOString();
/** where and when this run's entries were captured */
const origin = { host, kernel: os.release(), machine: machineId(), run: generatedAt };
/** An entry from an earlier table: its own origin, or (made before entries had one) the table's top-level host. */
const withOrigin = (e, table) => (e.origin ? e : { ...e, origin: { host: table.host ?? 'unrecorded', kernel: 'unrecorded', machine: 'unrecorded', run: 'unrecorded' } });
const captured = entries.map((e) => ({ ...e, origin }));
const before = MERGE && fs.existsSync(OUT) ? JSON.parse(fs.readFileSync(OUT, 'utf8')) : null;
const kept = (before?.entries ?? []).map((e) => withOrigin(e, before));
const known = new Set(kept.map((e) => `${e.ja4} ${e.library}`));
const added = captured.filter((e) => !known.has(`${e.ja4} ${e.library}`));
// (the hosts whose entries the table keeps from earlier runs: equal strings may be different machines, so this host's
// string is not filtered out; each entry's origin says which machine and run it came from)
const mergedFrom = before ? [...new Set([...(before.mergedFrom ?? []), before.host, ...kept.map((e) => e.origin.host)])].filter((h) => h && h !== 'unrecorded') : [];
const doc = {
  generatedBy: 'scripts/gen-fingerprints.mjs',
  generatedAt,
  host: before && added.length === 0 ? before.host : host,
  ...(mergedFrom.length > 0 ? { mergedFrom } : {}),
  entries: before ? [...kept, ...added] : captured,
};
if (before) console.error(`gen-fingerprints: --merge: ${added.length} of ${entries.length} fingerprints new to ${path.relative(ROOT, OUT)}`);
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, `${JSON.stringify(doc, null, 2)}\n`);
console.error(`gen-fingerprints: wrote ${doc.entries.length} entries to ${path.relative(ROOT, OUT)}`);
if (writeFixtures) {
  fs.mkdirSync(FIXTURES, { recursive: true });
  fs.copyFileSync(pcap, path.join(FIXTURES, 'clienthellos.pcap'));
  fs.writeFileSync(path.join(FIXTURES, 'clienthellos.json'), `${JSON.stringify({ generatedBy: doc.generatedBy, host, origin, port: PORT, hellos: fixtures }, null, 2)}\n`);
  console.error(`gen-fingerprints: wrote fixtures for ${fixtures.length} clients to ${path.relative(ROOT, FIXTURES)}`);
}
if (!process.env.FP_KEEP) fs.rmSync(work, { recursive: true, force: true });
else console.error(`gen-fingerprints: kept ${work}`);
process.exit(0);
