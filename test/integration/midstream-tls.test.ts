// TLS connections open before the capture began, really: a Python client (OpenSSL, hooked) and a Java client (JSSE,
// no hook) each connect to a small HTTPS server (Python, OpenSSL), ask once, and keep their connection; then
// `tapscope capture` starts in eBPF mode and they ask twice more on it. Neither handshake is in the capture (tshark
// reads application data on both connections and no ClientHello), yet each is a TLS flow taken up in the middle
// (`tls.midstream`), not "unknown": the Python client's side is its hook's plaintext with its later requests, the
// Java client's says JSSE has no hook, and the server's hook gives the Java connection's requests. And a Node server's
// first request after the hooks attached (memory BIOs: tied by its thread's socket read) is on its connection.
import { describe, it, expect } from 'vitest';
import { run, startHttpsServers, startPythonServer } from '../lib/lab.js';
import { buildJavaClient } from '../lib/tls-clients.js';
import { useTlsLab } from './tls-lab.js';
import { watchOutput } from '../lib/child-output.js';
import { captureLab, flowsJson } from './core-cli.js';

// HTTP/1.1 keep-alive for as long as the client likes: one answer per request head, naming its path.
const SERVER = `
import ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
def handle(c):
    t = ctx.wrap_socket(c, server_side=True)
    buf = b''
    while True:
        while b'\\r\\n\\r\\n' not in buf:
            d = t.recv(4096)
            if not d: return
            buf += d
        head, buf = buf.split(b'\\r\\n\\r\\n', 1)
        path = head.split(b' ')[1]
        body = b'kept: ' + path + b'\\n'
        t.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body) + body)
# (a thread per connection: both clients keep theirs)
serve(8443, lambda c: threading.Thread(target=handle, args=(c,), daemon=True).start())
print('ready', flush=True)
sys.stdin.read()
`;

// One connection: a request, "ready", then one more request per line read (paths /mid/python/2, /3, ...).
const PYTHON_CLIENT = `
import http.client, ssl, sys
c = http.client.HTTPSConnection(sys.argv[1], 8443, context=ssl.create_default_context(cafile=sys.argv[2]))
c.request('GET', '/mid/python/1'); c.getresponse().read()
print('ready', flush=True)
n = 2
for line in sys.stdin:
    c.request('GET', '/mid/python/%d' % n); print(c.getresponse().read().decode().strip(), flush=True)
    print('done', n, flush=True); n += 1
`;

const t = useTlsLab('tsc-mid', '10.202.28');

describe('TLS connections open before the capture began', () => {
  it('are TLS flows taken up in the middle, judged by their processes and hooks (Python/OpenSSL hooked, Java/JSSE not)', async () => {
    const server = await startPythonServer(t.lab, t.dir, 'server', SERVER, [t.ca.cert, t.ca.key]);
    const javaDir = await buildJavaClient();
    const host = 'api.tapscope.test';
    const py = t.lab.spawnIn(t.lab.nodeNs, 'python3', ['-c', PYTHON_CLIENT, host, t.ca.ca]);
    const java = t.lab.spawnIn(t.lab.nodeNs, 'java', ['-Xshare:auto', '-XX:TieredStopAtLevel=1', '-cp', javaDir, 'Client', t.ca.ca,
      `https://${host}:8443/mid/java/1`, `https://${host}:8443/mid/java/`]);
    try {
      const pyOut = watchOutput(py, ['stdout', 'stderr'], 'the Python client');
      const javaOut = watchOutput(java, ['stdout', 'stderr'], 'the Java client');
      await Promise.all([pyOut.waitFor('ready', 60_000), javaOut.waitFor('ready', 60_000)]);
      // (the handshakes and first requests are over: the capture starts after them)
      const { cap, out, env } = await captureLab(t.lab, t.dir, 'mid.pcapng', 'ebpf', 6);
      const asked = Promise.all([pyOut.waitFor('done 3', 60_000), javaOut.waitFor('done 3', 60_000)]);
      for (const c of [py, java]) c.stdin!.write('\n\n');
      await asked;
      for (const c of [py, java]) c.stdin!.end();
      expect(await cap.exited, cap.stderr()).toBe(0);

      // tshark: both connections carry TLS application data in the capture, and no ClientHello
      const ts = await run('tshark', ['-r', out, '-d', 'tcp.port==8443,tls', '-Y', 'tcp.port == 8443 && tls.record.content_type == 23', '-T', 'fields', '-e', 'tcp.stream']);
      expect(new Set(ts.stdout.split('\n').filter(Boolean)).size, ts.stderr).toBe(2);
      const hellos = await run('tshark', ['-r', out, '-d', 'tcp.port==8443,tls', '-Y', 'tcp.port == 8443 && tls.handshake.type == 1']);
      expect(hellos.stdout.trim(), 'no handshake in the capture').toBe('');

      const flows = (await flowsJson(out, env)).filter((f) => f.dst.port === 8443);
      const byComm = new Map(flows.map((f) => [f.process?.comm, f]));
      const what = JSON.stringify(flows, null, 1);
      expect(flows.length, what).toBe(2);
      const p = byComm.get('python3');
      const j = byComm.get('java');
      expect(p && j, what).toBeTruthy();
      for (const f of [p!, j!]) {
        expect(f.app, what).toBe('tls');
        expect(f.tls, what).toMatchObject({ midstream: true, sni: null, ja3: null, ja4: null, version: null });
        expect(f.tls!.server, what).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
      }
      expect(p!.tls!.client, what).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
      expect(j!.tls!.client, what).toMatchObject({ library: 'java-jsse', via: 'process', plaintext: false, reason: expect.stringMatching(/^java-jsse has no hook/) });
      // the requests made while capturing, from the hooks (the first, before the capture, is not there)
      expect(p!.http.map((h) => h.path), what).toEqual(['/mid/python/2', '/mid/python/3']);
      // (the server's side: its read of /mid/java/2 was already waiting in SSL_read when the hook attached, and a call in
      // flight then is not seen; its answer, written after, is: an answer whose request was not read)
      expect(j!.http.map((h) => h.status), what).toEqual([200, 200]);
      expect(j!.http.map((h) => h.path).sort(), what).toEqual(['/mid/java/3', null]);
      expect((await flowsJson(out, env, 'tls.midstream && tls.client.library == "java-jsse"')).map((f) => f.id)).toEqual([j!.id]);
    } finally {
      py.kill();
      java.kill();
      server.stop();
    }
  }, 180_000);

  it('a Node HTTPS server started before the capture (memory BIOs): the first request after the hooks attached is tied to its connection', async () => {
    const servers = await startHttpsServers(t.lab, [9443]);
    try {
      const { cap, out, env } = await captureLab(t.lab, t.dir, 'node-first.pcapng', 'ebpf', 3);
      const r = await t.lab.execIn(t.lab.nodeNs, 'curl', ['-sS', '--http1.1', '--cacert', servers.ca, 'https://api.tapscope.test:9443/first-after-attach'], { timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(await cap.exited, cap.stderr()).toBe(0);
      const f = (await flowsJson(out, env)).find((x) => x.dst.port === 9443);
      // (node reads its socket through libuv, then the request out of a memory BIO: the read is tied to the socket its
      // thread read just before)
      expect(f?.tls?.server, JSON.stringify(f)).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
      expect(f?.process?.comm).toBe('curl');
      expect(f?.peerProcess?.comm).toBe('node');
      expect(f?.http.map((h) => [h.path, h.status])).toEqual([['/first-after-attach', 200]]);
    } finally {
      await servers.stop();
    }
  }, 120_000);
});
