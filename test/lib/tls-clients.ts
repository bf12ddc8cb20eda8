// Real TLS clients, one per TLS library, for integration tests and benchmarks. Each sends one HTTP/1.1
// GET with SNI `<name>.tapscope.test` from the lab's node namespace, so a test can count a client's
// ClientHellos (and decrypted requests) by that name. Compiled clients are built once into CACHE_DIR.
import { access, mkdir, rename, rm, writeFile, mkdtemp } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TlsLibrary } from '../../src/model/flow.js';
import { CACHE_DIR, run, type Lab } from './lab.js';

export interface TlsRequestOptions { ca: string; sni: string; serverIp: string }
export interface TlsClient {
  name: string;
  library: TlsLibrary;
  /** True when the helper's uprobes are expected to deliver this client's plaintext. */
  hookable: boolean;
  available(): Promise<boolean>;
  request(lab: Lab, url: string, opts: TlsRequestOptions): Promise<{ ok: boolean; stderr: string }>;
}

const TIMEOUT_MS = 30_000;

async function exists(path: string): Promise<boolean> {
  try { await access(path, constants.X_OK); return true; } catch { return false; }
}

function target(url: string, opts: TlsRequestOptions): { port: number; path: string; host: string } {
  const u = new URL(url);
  return { port: Number(u.port || 443), path: u.pathname + u.search, host: opts.sni };
}

function httpRequest(host: string, path: string, client: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: tapscope-lab-${client}\r\nConnection: close\r\n\r\n`;
}

const okBody = (out: string) => out.includes('hello from tapscope lab');

/** Builds an artifact once: `build(tmpDir)` must create `file` inside tmpDir; the dir is then renamed into place. */
async function buildOnce(dirName: string, file: string, build: (dir: string) => Promise<void>): Promise<string> {
  const final = join(CACHE_DIR, dirName);
  if (await access(join(final, file)).then(() => true, () => false)) return join(final, file);
  await mkdir(CACHE_DIR, { recursive: true });
  const tmp = await mkdtemp(join(CACHE_DIR, `${dirName}-tmp-`));
  await build(tmp);
  // why: several test files may build concurrently; the rename makes the first complete build win.
  await rename(tmp, final).catch(async () => rm(tmp, { recursive: true, force: true }));
  return join(final, file);
}

const GO_CLIENT = `package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"context"
	"strconv"
	"time"
)

// usage: go-client CA URL SERVER_IP   (SSLKEYLOGFILE: write the connection's TLS secrets there)
func main() {
	// A static Go binary can only be hooked once the helper sees its exec; wait like a service starting
	// up would, so the request is not racing the attach (a first request within ~50 ms of exec may be missed).
	// GO_CLIENT_DELAY_MS waits longer where the helper is slower (an emulated machine).
	delay := 500
	if d, err := strconv.Atoi(os.Getenv("GO_CLIENT_DELAY_MS")); err == nil { delay = d }
	time.Sleep(time.Duration(delay) * time.Millisecond)
	pem, err := os.ReadFile(os.Args[1])
	if err != nil { fmt.Fprintln(os.Stderr, err); os.Exit(2) }
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ip := os.Args[3]
	cfg := &tls.Config{RootCAs: pool}
	// (as curl, browsers and Python do, secrets go to the file SSLKEYLOGFILE names: Go has the writer, not the variable)
	if name := os.Getenv("SSLKEYLOGFILE"); name != "" {
		w, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0600)
		if err != nil { fmt.Fprintln(os.Stderr, err); os.Exit(2) }
		cfg.KeyLogWriter = w
	}
	tr := &http.Transport{
		TLSClientConfig: cfg,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(ip, port))
		},
	}
	req, _ := http.NewRequest("GET", os.Args[2], nil)
	req.Header.Set("User-Agent", "tapscope-lab-go")
	req.Close = true
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil { fmt.Fprintln(os.Stderr, err); os.Exit(1) }
	body, _ := io.ReadAll(resp.Body)
	os.Stdout.Write(body)
}
`;

const JAVA_CLIENT = `import java.io.FileInputStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

// usage: java Client CA URL [MORE]   (the URL's host must resolve to the server: the lab's hosts file does that)
// With MORE, the client keeps its connection: after the first answer it prints "ready", then asks MORE + n (n = 2, 3,
// ...) on the same connection for each line it reads, printing "done n" after each answer.
public class Client {
  public static void main(String[] args) throws Exception {
    KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
    ks.load(null, null);
    try (FileInputStream in = new FileInputStream(args[0])) {
      ks.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(ks);
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(null, tmf.getTrustManagers(), null);
    HttpClient client = HttpClient.newBuilder().sslContext(ctx).version(HttpClient.Version.HTTP_1_1).build();
    HttpRequest req = HttpRequest.newBuilder(URI.create(args[1])).header("User-Agent", "tapscope-lab-java").build();
    HttpResponse<String> resp = client.send(req, HttpResponse.BodyHandlers.ofString());
    System.out.print(resp.body());
    if (args.length < 3) return;
    System.out.println("ready");
    System.out.flush();
    java.io.BufferedReader lines = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
    for (int n = 2; lines.readLine() != null; n++) {
      HttpRequest more = HttpRequest.newBuilder(URI.create(args[2] + n)).header("User-Agent", "tapscope-lab-java").build();
      System.out.print(client.send(more, HttpResponse.BodyHandlers.ofString()).body());
      System.out.println("done " + n);
      System.out.flush();
    }
  }
}
`;

/**
 * Builds the Go client once; `stripped` drops .symtab (as release builds do), leaving only .gopclntab; `arch` 'arm64'
 * cross-compiles it for aarch64 (static, as every CGO_ENABLED=0 build).
 */
export async function buildGoClient(opts: { stripped?: boolean; arch?: 'amd64' | 'arm64' } = {}): Promise<string> {
  const arch = opts.arch ?? 'amd64';
  // why: the cache dir name carries a version so a changed client source is rebuilt
  return buildOnce(`go-client${opts.stripped ? '-stripped' : ''}${arch === 'amd64' ? '' : `-${arch}`}-v4`, 'go-client', async (dir) => {
    await writeFile(join(dir, 'main.go'), GO_CLIENT);
    await writeFile(join(dir, 'go.mod'), 'module tapscopelab\n\ngo 1.19\n');
    const env = { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off', GOCACHE: join(CACHE_DIR, 'go-build'), CGO_ENABLED: '0', GOARCH: arch };
    const r = await run('go', ['build', ...(opts.stripped ? ['-ldflags=-s -w'] : []), '-o', 'go-client', '.'], { env, cwd: dir, timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`go build failed: ${r.stderr}`);
  });
}

// usage: go-stack-writer ADDR SNI N [DELAY_MS]: after DELAY_MS (default 1500: a static binary is hooked once the helper
// sees its exec), N writes on one TLS connection ("write NNNN\n", no verification of the server),
// the d-th from a new goroutine d calls deep; stacks begin small and grow by doubling, so at some depths the stack must
// grow just as (*tls.Conn).Write begins (its prologue's check sends it to runtime.morestack, which runs it again from
// its first instruction). Prints "wrote N".
const GO_STACK_WRITER = `package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

//go:noinline
func deep(d int, f func()) int {
	var pad [4]int64
	pad[d&3] = int64(d)
	if d <= 0 {
		f()
		return int(pad[0])
	}
	return deep(d-1, f) + int(pad[1])
}

func main() {
	delay := 1500
	if len(os.Args) > 4 { delay, _ = strconv.Atoi(os.Args[4]) }
	time.Sleep(time.Duration(delay) * time.Millisecond)
	c, err := tls.Dial("tcp", os.Args[1], &tls.Config{InsecureSkipVerify: true, ServerName: os.Args[2]})
	if err != nil { fmt.Fprintln(os.Stderr, err); os.Exit(1) }
	n, _ := strconv.Atoi(os.Args[3])
	// (the lines made first: only the Write runs at the chosen depth)
	lines := make([][]byte, n)
	for d := range lines { lines[d] = []byte(fmt.Sprintf("write %04d\\n", d)) }
	for d := 0; d < n; d++ {
		var wg sync.WaitGroup
		wg.Add(1)
		go func(d int) {
			defer wg.Done()
			deep(d, func() {
				if _, err := c.Write(lines[d]); err != nil { fmt.Fprintln(os.Stderr, err); os.Exit(1) }
			})
		}(d)
		wg.Wait()
	}
	c.Close()
	fmt.Println("wrote", n)
}
`;

/** Builds the Go stack writer (GO_STACK_WRITER) once. */
export async function buildGoStackWriter(opts: { arch?: 'amd64' | 'arm64' } = {}): Promise<string> {
  const arch = opts.arch ?? 'amd64';
  return buildOnce(`go-stack-writer${arch === 'amd64' ? '' : `-${arch}`}-v2`, 'go-stack-writer', async (dir) => {
    await writeFile(join(dir, 'main.go'), GO_STACK_WRITER);
    await writeFile(join(dir, 'go.mod'), 'module tapscopelab\n\ngo 1.19\n');
    const env = { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off', GOCACHE: join(CACHE_DIR, 'go-build'), CGO_ENABLED: '0', GOARCH: arch };
    const r = await run('go', ['build', '-o', 'go-stack-writer', '.'], { env, cwd: dir, timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`go build failed: ${r.stderr}`);
  });
}

export async function buildJavaClient(): Promise<string> {
  const cls = await buildOnce('java-client-v2', 'Client.class', async (dir) => {
    await writeFile(join(dir, 'Client.java'), JAVA_CLIENT);
    const r = await run('javac', ['-d', dir, join(dir, 'Client.java')], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`javac failed: ${r.stderr}`);
  });
  return join(cls, '..');
}

const BORINGSSL_LIB = '/usr/lib/x86_64-linux-gnu/android';
const BORINGSSL_SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'boringssl', 'client.c');

/** Builds the C client linked against Debian's BoringSSL (android-libboringssl-dev) once. */
export async function buildBoringsslClient(): Promise<string> {
  return buildOnce('boringssl-client-v1', 'bssl-client', async (dir) => {
    const r = await run('clang', ['-O2', '-Wall', '-I/usr/include/android', '-o', join(dir, 'bssl-client'), BORINGSSL_SRC,
      `-L${BORINGSSL_LIB}`, `-Wl,-rpath,${BORINGSSL_LIB}`, '-lssl', '-lcrypto'], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`building the BoringSSL client failed: ${r.stderr}`);
  });
}

const PY_CLIENT = `
import socket, ssl, sys
ca, ip, port, sni, req = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
with socket.create_connection((ip, port)) as raw:
    with ctx.wrap_socket(raw, server_hostname=sni) as s:
        s.sendall(req.encode())
        out = b''
        while True:
            d = s.recv(65536)
            if not d: break
            out += d
sys.stdout.write(out.decode(errors='replace'))
`;

const NODE_CLIENT = `
const https = require('node:https');
const fs = require('node:fs');
const [ca, ip, port, sni, path] = process.argv.slice(1);
const req = https.request({ host: ip, port: Number(port), path, servername: sni, ca: fs.readFileSync(ca),
  headers: { host: sni, 'user-agent': 'tapscope-lab-node' }, agent: false,
  checkServerIdentity: (h, cert) => require('node:tls').checkServerIdentity(sni, cert) }, (res) => {
  let body = ''; res.on('data', (d) => { body += d; }); res.on('end', () => process.stdout.write(body));
});
req.on('error', (e) => { console.error(e.message); process.exit(1); });
req.end();
`;

export const TLS_CLIENTS: TlsClient[] = [
  {
    name: 'curl', library: 'openssl', hookable: true,
    available: () => exists('/usr/bin/curl'),
    request: async (lab, url, o) => {
      const t = target(url, o);
      const r = await lab.execIn(lab.nodeNs, 'curl', ['-sS', '--http1.1', '--cacert', o.ca, '--resolve', `${t.host}:${t.port}:${o.serverIp}`,
        '-A', 'tapscope-lab-curl', `https://${t.host}:${t.port}${t.path}`], { timeoutMs: TIMEOUT_MS });
      return { ok: r.code === 0 && okBody(r.stdout), stderr: r.stderr };
    },
  },
  {
    name: 'python', library: 'openssl', hookable: true,
    available: () => exists('/usr/bin/python3'),
    request: async (lab, url, o) => {
      const t = target(url, o);
      const r = await lab.execIn(lab.nodeNs, '/usr/bin/python3', ['-c', PY_CLIENT, o.ca, o.serverIp, String(t.port), t.host,
        httpRequest(t.host, t.path, 'python')], { timeoutMs: TIMEOUT_MS });
      return { ok: r.code === 0 && okBody(r.stdout), stderr: r.stderr };
    },
  },
  {
    name: 'node', library: 'openssl', hookable: true,
    available: () => exists(process.execPath),
    request: async (lab, url, o) => {
      const t = target(url, o);
      const r = await lab.execIn(lab.nodeNs, process.execPath, ['-e', NODE_CLIENT, o.ca, o.serverIp, String(t.port), t.host, t.path],
        { timeoutMs: TIMEOUT_MS });
      return { ok: r.code === 0 && okBody(r.stdout), stderr: r.stderr };
    },
  },
  {
    name: 'wget', library: 'gnutls', hookable: true,
    available: () => exists('/usr/bin/wget'),
    // why: wget has no --resolve; the lab's per-namespace hosts file maps *.tapscope.test to the server.
    request: async (lab, url, o) => {
      const t = target(url, o);
      const r = await lab.execIn(lab.nodeNs, 'wget', ['-q', '-O', '-', '--ca-certificate', o.ca, '-U', 'tapscope-lab-wget',
        `https://${t.host}:${t.port}${t.path}`], { timeoutMs: TIMEOUT_MS });
      return { ok: r.code === 0 && okBody(r.stdout), stderr: r.stderr };
    },
  },
  {
    name: 'nss', library: 'nss', hookable: true,
    available: () => exists('/usr/bin/tstclnt'),
    // why: tstclnt (NSS's own test client) with -D -o: no cert database, accept the lab certificate.
    request: async (lab, url, o) => {
      const t = target(url, o);
      const r = await lab.execIn(lab.nodeNs, 'tstclnt', ['-h', o.serverIp, '-p', String(t.port), '-a', t.host, '-D', '-o', '-4'],
        { timeoutMs: TIMEOUT_MS, input: httpRequest(t.host, t.path, 'nss') });
      return { ok: okBody(r.stdout), stderr: r.stderr };
    },
  },
  {
    name: 'go', library: 'go-crypto-tls', hookable: true,
    available: () => exists('/usr/bin/go'),
    request: async (lab, url, o) => {
      const t = target(url, o);
      const bin = await buildGoClient();
      const r = await lab.execIn(lab.nodeNs, bin, [o.ca, `https://${t.host}:${t.port}${t.path}`, o.serverIp], { timeoutMs: TIMEOUT_MS });
      return { ok: r.code === 0 && okBody(r.stdout), stderr: r.stderr };
    },
  },
  {
    name: 'boringssl', library: 'boringssl', hookable: true,
    available: async () => (await exists('/usr/bin/clang')) && (await access(`${BORINGSSL_LIB}/libssl.so`).then(() => true, () => false)),
    request: async (lab, url, o) => {
      const t = target(url, o);
      const bin = await buildBoringsslClient();
      const r = await lab.execIn(lab.nodeNs, bin, [o.ca, o.serverIp, String(t.port), t.host, t.path], { timeoutMs: TIMEOUT_MS });
      return { ok: r.code === 0 && okBody(r.stdout), stderr: r.stderr };
    },
  },
  {
    name: 'java', library: 'java-jsse', hookable: false,
    available: () => exists('/usr/bin/java'),
    request: async (lab, url, o) => {
      const t = target(url, o);
      const dir = await buildJavaClient();
      const r = await lab.execIn(lab.nodeNs, 'java', ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', dir, 'Client', o.ca,
        `https://${t.host}:${t.port}${t.path}`], { timeoutMs: 60_000 });
      return { ok: r.code === 0 && okBody(r.stdout), stderr: r.stderr };
    },
  },
];

export function tlsClient(name: string): TlsClient {
  const c = TLS_CLIENTS.find((x) => x.name === name);
  if (!c) throw new Error(`no TLS client named ${name}`);
  return c;
}
