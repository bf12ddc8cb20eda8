// Clients that switch to TLS in place, really: curl (OpenSSL) speaking SMTP (STARTTLS), IMAP (STARTTLS), POP3 (STLS)
// and FTP (AUTH) with --ssl-reqd, and OpenLDAP's ldapsearch (GnuTLS) with StartTLS (-ZZ), against small servers
// that answer each protocol's upgrade and then refuse the client inside TLS; and curl's HTTPS through an HTTP proxy
// (CONNECT). Captured by `tapscope capture` in eBPF mode, each connection is its protocol's, with its TLS hello
// fields (equal to tshark's, which dissects these upgrades too, except FTP's), its client library and the plaintext
// the hooks read.
import { describe, it, expect } from 'vitest';
import { startHttpsServers, startPythonServer, tsharkHellos } from '../lib/lab.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, flowsJson } from './core-cli.js';


// Each protocol: its greeting, its upgrade command, the answer to that, the answer to any other command before
// it, and the refusal sent inside TLS.
const SERVER = `
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
P = {
  587: dict(tagged=False, greet='220 mail.tapscope.test ESMTP lab', up=('STARTTLS',), go='220 2.0.0 Ready to start TLS',
            other='250-mail.tapscope.test\\r\\n250 STARTTLS', no='554 5.7.0 tapscope lab says no'),
  143: dict(tagged=True, greet='* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] lab ready', up=('STARTTLS',), go='{tag} OK Begin TLS now',
            other='* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\\r\\n{tag} OK done', no='* BYE tapscope lab says no'),
  110: dict(tagged=False, greet='+OK lab ready', up=('STLS',), go='+OK Begin TLS', other='+OK\\r\\nSTLS\\r\\nUSER\\r\\n.', no='-ERR tapscope lab says no'),
  21: dict(tagged=False, greet='220 lab ftp', up=('AUTH',), go='234 Proceed with negotiation.', other='500 not before TLS', no='530 tapscope lab says no'),
}
def ber(c):
    head = c.recv(2, socket.MSG_WAITALL); n = head[1]
    if n & 0x80: ext = c.recv(n & 0x7f, socket.MSG_WAITALL); n = int.from_bytes(ext, 'big'); head += ext
    return head + c.recv(n, socket.MSG_WAITALL)
def ldap(c):
    m = ber(c)
    assert b'1.3.6.1.4.1.1466.20037' in m, m
    mid = m[m.index(2, 1) + 2]
    # ExtendedResponse, success, with the request's message id
    c.sendall(bytes([0x30, 0x0c, 0x02, 0x01, mid, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]))
    t = ctx.wrap_socket(c, server_side=True)
    print('tls LDAP', t.recv(4096), flush=True)
    t.close()
def line(c):
    b = b''
    while not b.endswith(b'\\n'):
        d = c.recv(1)
        if not d: raise EOFError
        b += d
    return b.decode().strip()
def handle(c, p):
    c.sendall((p['greet'] + '\\r\\n').encode())
    while True:
        words = line(c).split()
        tag, verb = (words[0], words[1].upper()) if p['tagged'] else ('', words[0].upper())
        if verb in p['up']:
            c.sendall((p['go'].format(tag=tag) + '\\r\\n').encode())
            break
        c.sendall((p['other'].format(tag=tag) + '\\r\\n').encode())
    t = ctx.wrap_socket(c, server_side=True)
    print('tls', verb, t.recv(4096), flush=True)
    t.sendall((p['no'] + '\\r\\n').encode()); t.close()
for port in P: serve(port, lambda c, p=P[port]: handle(c, p))
serve(389, ldap)
print('ready', flush=True)
sys.stdin.read()
`;

const t = useTlsLab('tsc-upg', '10.202.14');

describe('clients that switch to TLS in place', () => {
  it('are their protocol\'s flows, with TLS hello fields as tshark reads them, the client library and the plaintext', async () => {
    const server = await startPythonServer(t.lab, t.dir, 'server', SERVER, [t.ca.cert, t.ca.key]);
    try {
      const { cap, out, env } = await captureLab(t.lab, t.dir, 'mail.pcapng', 'ebpf', 8);
      const clients: [number, string, string[]][] = [
        [587, 'smtp', ['smtp://api.tapscope.test:587', '--mail-rcpt', 'ops@tapscope.test', '-T', '/dev/null']],
        [143, 'imap', ['imap://www.tapscope.test:143/INBOX', '-u', 'lab:x']],
        [110, 'pop3', ['pop3://a.tapscope.test:110/', '-u', 'lab:x']],
        [21, 'ftp', ['ftp://b.tapscope.test:21/', '-u', 'lab:x']],
      ];
      for (const [, , args] of clients) {
        const r = await t.lab.execIn(t.lab.nodeNs, 'curl', ['-sS', '--ssl-reqd', '--cacert', t.ca.ca, '--connect-timeout', '5', ...args], { timeoutMs: 20_000 });
        // (curl fails: the server refuses it inside TLS)
        expect(r.code, `${args[0]}: ${r.stderr} ${server.output()}`).not.toBe(0);
      }
      const ld = await t.lab.execIn(t.lab.nodeNs, 'ldapsearch', ['-x', '-ZZ', '-H', 'ldap://c.tapscope.test:389', '-b', 'dc=tapscope,dc=test', '-o', 'nettimeout=5'],
        { timeoutMs: 20_000, env: { ...process.env, LDAPTLS_CACERT: t.ca.ca, LDAPTLS_REQCERT: 'demand' } });
      expect(ld.code, `ldapsearch: ${ld.stderr} ${server.output()}`).not.toBe(0);
      expect(server.output().match(/^tls /gm)?.length, server.output()).toBe(clients.length + 1);
      expect(await cap.exited, cap.stderr()).toBe(0);

      const flows = await flowsJson(out, env);
      const byPort = new Map(flows.filter((f) => f.dst.ip === t.lab.serverIp).map((f) => [f.dst.port, f]));
      const ts = await tsharkHellos(out);
      const hellos = new Map(ts.map((h) => [h.port, h]));
      const names = { 587: 'api', 143: 'www', 110: 'a', 21: 'b' } as const;
      for (const [port, app] of clients) {
        const f = byPort.get(port);
        expect(f, `${app}: ${JSON.stringify(flows)}`).toBeDefined();
        expect(f!.app).toBe(app);
        expect(f!.tls?.sni).toBe(`${names[port as keyof typeof names]}.tapscope.test`);
        expect(f!.tls?.client).toMatchObject({ library: 'openssl', plaintext: true });
        const h = hellos.get(port);
        if (port === 21 && !h) continue; // (tshark 4.0 reads no TLS after FTP's AUTH)
        expect(h, `tshark's ClientHello on ${port}: ${JSON.stringify(ts)}`).toBeDefined();
        expect(f!.tls!.sni).toBe(h!.sni);
        expect(f!.tls!.ja3Hash).toBe(h!.ja3);
        expect(f!.tls!.ja3).toBe(h!.full);
      }
      // LDAP's StartTLS, by OpenLDAP's client library on GnuTLS
      const l = byPort.get(389);
      expect(l, `ldap: ${JSON.stringify(flows)}`).toBeDefined();
      expect(l!.app).toBe('ldap');
      expect(l!.tls?.sni).toBe('c.tapscope.test');
      expect(l!.tls?.client).toMatchObject({ library: 'gnutls', plaintext: true });
      expect(hellos.get(389), `tshark's ClientHello on 389: ${JSON.stringify(ts)}`).toMatchObject({ sni: 'c.tapscope.test', ja3: l!.tls!.ja3Hash, full: l!.tls!.ja3 });
      expect((await flowsJson(out, env, '(app == "smtp" || app == "imap") && tls.client.plaintext')).map((f) => f.dst.port).sort()).toEqual([143, 587]);
    } finally {
      server.stop();
    }
  }, 120_000);

  it('HTTPS through an HTTP proxy: the CONNECT, the tunnel\'s TLS as tshark reads it, and the decrypted request inside', async () => {
    const PROXY = `
import socket, sys, threading
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    try: b.shutdown(socket.SHUT_WR)
    except OSError: pass
def handle(c):
    head = b''
    while b'\\r\\n\\r\\n' not in head:
        d = c.recv(4096)
        if not d: return
        head += d
    target = head.split(b' ')[1].decode()
    u = socket.create_connection(('127.0.0.1', int(target.rsplit(':', 1)[1])))
    c.sendall(b'HTTP/1.1 200 Connection established\\r\\n\\r\\n')
    print('tunnel', target, flush=True)
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    pipe(c, u)
serve(3128, handle)
print('ready', flush=True)
sys.stdin.read()
`;
    const servers = await startHttpsServers(t.lab, [9443]);
    const proxy = await startPythonServer(t.lab, t.dir, 'proxy', PROXY);
    try {
      const { cap, out, env } = await captureLab(t.lab, t.dir, 'proxy.pcapng', 'ebpf', 6);
      const r = await t.lab.execIn(t.lab.nodeNs, 'curl', ['-sS', '--http1.1', '--cacert', servers.ca, '-x', 'http://www.tapscope.test:3128', 'https://api.tapscope.test:9443/via-proxy'], { timeoutMs: 20_000 });
      expect(r.code, `${r.stderr} ${proxy.output()}`).toBe(0);
      expect(proxy.output()).toContain('tunnel api.tapscope.test:9443');
      expect(await cap.exited, cap.stderr()).toBe(0);

      const flows = await flowsJson(out, env);
      const f = flows.find((x) => x.dst.port === 3128);
      expect(f, JSON.stringify(flows)).toBeDefined();
      expect(f!.app).toBe('http');
      expect(f!.http.map((h) => [h.method, h.path, h.status])).toEqual([['CONNECT', 'api.tapscope.test:9443', 200], ['GET', '/via-proxy', 200]]);
      expect(f!.tls?.sni).toBe('api.tapscope.test');
      expect(f!.tls?.client).toMatchObject({ library: 'openssl', plaintext: true });
      const hellos = (await tsharkHellos(out)).filter((h) => h.port === 3128).map((h) => [h.sni, h.ja3, h.full]);
      expect(hellos, 'tshark reads the tunnel\'s ClientHello').toEqual([['api.tapscope.test', f!.tls!.ja3Hash, f!.tls!.ja3]]);
    } finally {
      proxy.stop();
      await servers.stop();
    }
  }, 120_000);
});
