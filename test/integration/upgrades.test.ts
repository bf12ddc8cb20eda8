// More clients that switch to TLS in place, really: OpenSSL's s_client and GnuTLS' gnutls-cli speaking XMPP (c2s
// STARTTLS), NNTP (STARTTLS) and ManageSieve (STARTTLS) to small servers that answer each protocol's upgrade and then
// complete the handshake; a Python (OpenSSL) NATS client against the real nats-server with TLS required (its INFO in
// plain text, then TLS); and FreeTDS' tsql (GnuTLS) with encryption required against a small SQL Server, whose TLS
// handshake travels inside TDS PRELOGIN packets and whose Login7 then goes in bare TLS records. Captured by
// `tapscope capture` in eBPF mode, each connection is its protocol's, with its TLS hello fields (equal to tshark's),
// its client library and the plaintext the hooks read.
import { describe, it, expect } from 'vitest';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, startPythonServer, tsharkHellos } from '../lib/lab.js';
import { until } from '../lib/until.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, flowsJson } from './core-cli.js';

// XMPP, NNTP and ManageSieve: each protocol's prelude up to its upgrade, then TLS; the server prints the SNI it got.
// SQL Server: the PRELOGIN exchange (ENCRYPT_ON), the TLS handshake inside TDS PRELOGIN packets (type 0x12), then the
// client's Login7 in bare TLS records. TLS 1.2 at most there, as SQL Server's TDS 7.x: FreeTDS (GnuTLS) sends its
// TLS 1.3 Finished into its TDS buffer and never flushes it (it reads nothing after it), so a 1.3 handshake never ends.
const SERVER = `
import socket, ssl, struct, sys
def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    ctx.sni_callback = lambda s, name, c: setattr(s, 'lab_sni', name)
    return ctx
ctx = context()
tds_ctx = context(); tds_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
def line(c):
    b = b''
    while not b.endswith(b'\\n'):
        d = c.recv(1)
        if not d: raise EOFError(b)
        b += d
    return b.decode().strip()
def until(c, text):
    b = b''
    while text not in b:
        d = c.recv(4096)
        if not d: raise EOFError(b)
        b += d
    return b
def exact(c, n):
    b = b''
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: raise EOFError(b)
        b += d
    return b
def tls(c, app, bye):
    t = ctx.wrap_socket(c, server_side=True)
    # the client's first word inside TLS (its command)
    first = t.recv(4096).split(b' ')[0].strip().decode()
    print('tls', app, getattr(t, 'lab_sni', None), t.version(), first, flush=True)
    try: t.sendall(bye); t.recv(4096)
    except (OSError, ssl.SSLError): pass
    t.close()
def xmpp(c):
    c.settimeout(10)
    until(c, b'<stream:stream')
    c.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='lab1' from='tapscope.test' version='1.0'>"
              b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>")
    until(c, b'<starttls')
    c.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    tls(c, 'xmpp', b'</stream:stream>')
def nntp(c):
    c.settimeout(10)
    c.sendall(b'200 news.tapscope.test lab ready\\r\\n')
    while True:
        verb = line(c).split()[0].upper()
        if verb == 'STARTTLS': break
        c.sendall(b'101 Capability list:\\r\\nVERSION 2\\r\\nSTARTTLS\\r\\n.\\r\\n' if verb == 'CAPABILITIES' else b'483 TLS first\\r\\n')
    c.sendall(b'382 Continue with TLS negotiation\\r\\n')
    tls(c, 'nntp', b'205 bye\\r\\n')
def sieve(c):
    c.settimeout(10)
    c.sendall(b'"IMPLEMENTATION" "lab"\\r\\n"SIEVE" "fileinto"\\r\\n"STARTTLS"\\r\\n"VERSION" "1.0"\\r\\nOK "lab ready"\\r\\n')
    while line(c).split()[0].upper() != 'STARTTLS':
        c.sendall(b'NO "TLS first"\\r\\n')
    c.sendall(b'OK "Begin TLS negotiation now"\\r\\n')
    tls(c, 'sieve', b'OK "bye"\\r\\n')
def tds_packet(c):
    head = exact(c, 8)
    return head[0], exact(c, struct.unpack('>H', head[2:4])[0] - 8)
def tds_send(c, kind, payload):
    # type, status (end of message), length, spid, packet id, window
    c.sendall(bytes([kind, 1]) + struct.pack('>H', len(payload) + 8) + bytes([0, 0, 1, 0]) + payload)
def mssql(c):
    c.settimeout(10)
    kind, _ = tds_packet(c)
    assert kind == 0x12, kind
    # PRELOGIN answer: VERSION 15.0.2000.0, ENCRYPTION = ENCRYPT_ON
    opts = [(0x00, bytes([15, 0, 0x07, 0xd0, 0, 0])), (0x01, b'\\x01')]
    at = 5 * len(opts) + 1; head = b''; data = b''
    for tok, val in opts:
        head += bytes([tok]) + struct.pack('>HH', at + len(data), len(val)); data += val
    tds_send(c, 0x04, head + b'\\xff' + data)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    t = tds_ctx.wrap_bio(inc, out, server_side=True)
    while True:
        try:
            t.do_handshake(); done = True
        except ssl.SSLWantReadError:
            done = False
        if out.pending: tds_send(c, 0x12, out.read())
        if done: break
        kind, payload = tds_packet(c)
        assert kind == 0x12, kind
        inc.write(payload)
    print('tls mssql handshake', t.version(), flush=True)
    login = b''
    while not login:
        d = c.recv(16384)
        if not d: raise EOFError('before the login')
        inc.write(d)
        try: login = t.read(65536)
        except ssl.SSLWantReadError: pass
    print('tls mssql login', len(login), 'bytes, TDS type', hex(login[0]), flush=True)
    c.close()
serve(5222, xmpp); serve(119, nntp); serve(4190, sieve); serve(1433, mssql)
print('ready', flush=True)
sys.stdin.read()
`;

// A NATS client: the server's INFO in plain text, then TLS (the lab CA, the name's SNI), CONNECT and PING; prints PONG.
const NATS_CLIENT = `
import socket, ssl, sys
host, ca = sys.argv[1], sys.argv[2]
s = socket.create_connection((host, 4222), timeout=10)
info = b''
while not info.endswith(b'\\r\\n'):
    d = s.recv(1)
    if not d: raise EOFError(info)
    info += d
assert info.startswith(b'INFO ') and b'"tls_required":true' in info, info
t = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=host)
t.sendall(b'CONNECT {"verbose":false}\\r\\nPING\\r\\n')
b = b''
while b'PONG' not in b:
    d = t.recv(4096)
    if not d: raise EOFError(b)
    b += d
print('nats', t.version(), 'PONG', flush=True)
t.close()
`;

// tshark's "Decode As" for two of the ports: 4222 is registered to GSM's IPA (A-bis over IP, read as RSL), and 4190
// to nothing (its ClientHello was found by TLS's heuristic, which a client port registered to another protocol
// would beat). 5222 (XMPP), 119 (NNTP) and 1433 (TDS: the TLS inside PRELOGIN) are dissected with their upgrades.
const TSHARK_DECODE_AS = ['-d', 'tcp.port==4190,tls', '-d', 'tcp.port==4222,tls'];

const t = useTlsLab('tsc-upg2', '10.202.27');

describe('more clients that switch to TLS in place', () => {
  it('XMPP, NNTP, ManageSieve, NATS and SQL Server (TDS): their protocol\'s flows, with TLS hello fields as tshark reads them, the client library and the plaintext', async () => {
    // (names of their own for these clients, beyond the lab's)
    const names = ['x', 'chat', 'news', 'usenet', 'sieve', 'filters', 'n', 'sql'];
    appendFileSync(`/etc/netns/${t.lab.nodeNs}/hosts`, names.map((n) => `${t.lab.serverIp} ${n}.tapscope.test\n`).join(''));
    const ca = t.ca.ca;
    const freetds = join(t.dir, 'freetds.conf');
    writeFileSync(freetds, `[global]\n\ttds version = 7.4\n[labsql]\n\thost = sql.tapscope.test\n\tport = 1433\n\tencryption = require\n\tca file = ${ca}\n`);
    const natsConf = join(t.dir, 'nats.conf');
    writeFileSync(natsConf, `listen: "${t.lab.serverIp}:4222"\ntls {\n  cert_file: "${t.ca.cert}"\n  key_file: "${t.ca.key}"\n  timeout: 10\n}\n`);

    const server = await startPythonServer(t.lab, t.dir, 'server', SERVER, [t.ca.cert, t.ca.key]);
    const nats = t.lab.spawnIn(t.lab.serverNs, '/usr/sbin/nats-server', ['-c', natsConf, '-D']);
    let natsLog = '';
    nats.stdout!.on('data', (d: Buffer) => { natsLog += d.toString(); });
    nats.stderr!.on('data', (d: Buffer) => { natsLog += d.toString(); });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`nats-server did not start: ${natsLog}`)), 15_000);
        nats.stderr!.on('data', () => { if (natsLog.includes('Server is ready')) { clearTimeout(timer); resolve(); } });
        nats.once('exit', (code) => { clearTimeout(timer); reject(new Error(`nats-server exited ${code}: ${natsLog}`)); });
      });

      const { cap, out, env } = await captureLab(t.lab, t.dir, 'upgrades.pcapng', 'ebpf', 8);
      // (-nocommands: else s_client reads a line of its stdin that begins with Q as its own quit command, and NNTP's QUIT
      // never goes out)
      const openssl = (proto: string, name: string, port: number) => ['openssl', 's_client', '-nocommands', '-starttls', proto,
        ...(proto === 'xmpp' ? ['-xmpphost', name] : []), '-connect', `${name}:${port}`, '-servername', name, '-CAfile', ca, '-verify_return_error'];
      const gnutls = (proto: string, name: string, port: number) => ['gnutls-cli', `--starttls-proto=${proto}`, '--x509cafile', ca, '-p', String(port), name];
      // What each client says inside TLS (its stdin: sent once the handshake is done, then the client closes), and the
      // first word of it the server prints.
      const says = (app: string, name: string | null) => ({
        xmpp: [`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${name}' version='1.0'>\n`, '<stream:stream'],
        nntp: ['QUIT\r\n', 'QUIT'],
        sieve: ['LOGOUT\r\n', 'LOGOUT'],
      } as Record<string, [string, string]>)[app] ?? ['', ''];
      // In this order, one after the other: the flows to a port are its clients' in this order.
      const clients: { port: number; app: string; sni: string | null; library: 'openssl' | 'gnutls'; argv: string[]; env?: NodeJS.ProcessEnv }[] = [
        { port: 5222, app: 'xmpp', sni: 'x.tapscope.test', library: 'openssl', argv: openssl('xmpp', 'x.tapscope.test', 5222) },
        { port: 5222, app: 'xmpp', sni: 'chat.tapscope.test', library: 'gnutls', argv: gnutls('xmpp', 'chat.tapscope.test', 5222) },
        { port: 119, app: 'nntp', sni: 'news.tapscope.test', library: 'openssl', argv: openssl('nntp', 'news.tapscope.test', 119) },
        { port: 119, app: 'nntp', sni: 'usenet.tapscope.test', library: 'gnutls', argv: gnutls('nntp', 'usenet.tapscope.test', 119) },
        { port: 4190, app: 'sieve', sni: 'sieve.tapscope.test', library: 'openssl', argv: openssl('sieve', 'sieve.tapscope.test', 4190) },
        { port: 4190, app: 'sieve', sni: 'filters.tapscope.test', library: 'gnutls', argv: gnutls('sieve', 'filters.tapscope.test', 4190) },
        { port: 4222, app: 'nats', sni: 'n.tapscope.test', library: 'openssl', argv: ['python3', '-c', NATS_CLIENT, 'n.tapscope.test', ca] },
        // (FreeTDS sends no SNI)
        { port: 1433, app: 'mssql', sni: null, library: 'gnutls', argv: ['tsql', '-S', 'labsql', '-U', 'orders_rw', '-P', 'lab-secret', '-D', 'orders'], env: { ...process.env, FREETDSCONF: freetds } },
      ];
      // (the server prints from its own thread, maybe after the client is gone)
      const printed = (line: RegExp) => until(`the server's ${line}`, () => line.test(server.output()), 50).catch(() => false);
      for (const c of clients) {
        const [input, first] = says(c.app, c.sni);
        const r = await t.lab.execIn(t.lab.nodeNs, c.argv[0]!, c.argv.slice(1), { timeoutMs: 20_000, input, env: c.env });
        if (c.app === 'mssql') await printed(/^tls mssql login /m);
        else if (c.app !== 'nats') await printed(new RegExp(`^tls ${c.app} ${c.sni!.replace(/\./g, '\\.')} `, 'm'));
        const what = `${c.argv[0]} ${c.app} ${c.sni}: ${r.code} ${r.stdout.slice(-500)} ${r.stderr} ${server.output()}`;
        if (c.app === 'nats') {
          expect(r.code, what).toBe(0);
          expect(r.stdout, what).toMatch(/^nats TLSv1\.3 PONG$/m);
        } else if (c.app === 'mssql') {
          // (tsql fails: the server closes after reading its login)
          expect(r.code, what).not.toBe(0);
          expect(server.output(), what).toMatch(/^tls mssql handshake TLSv1\.2\ntls mssql login \d+ bytes, TDS type 0x10$/m);
        } else {
          expect(r.code, what).toBe(0);
          expect(server.output(), what).toContain(`tls ${c.app} ${c.sni} TLSv1.3 ${first}\n`);
        }
      }
      expect(natsLog).toContain('TLS handshake complete');
      expect(server.output()).not.toContain('server error');
      expect(await cap.exited, cap.stderr()).toBe(0);

      const flows = await flowsJson(out, env);
      const ts = await tsharkHellos(out, TSHARK_DECODE_AS);
      const hellos = new Map(ts.map((h) => [`${h.port} ${h.sni}`, h]));
      for (const port of new Set(clients.map((c) => c.port))) {
        const mine = clients.filter((c) => c.port === port);
        const toPort = flows.filter((f) => f.dst.ip === t.lab.serverIp && f.dst.port === port).sort((a, b) => a.firstSeen - b.firstSeen);
        expect(toPort.length, `flows to ${port}: ${JSON.stringify(flows)}`).toBe(mine.length);
        for (const [i, c] of mine.entries()) {
          const h = hellos.get(`${port} ${c.sni ?? ''}`);
          expect(h, `tshark's ClientHello on ${port} (${c.sni}): ${JSON.stringify(ts)}`).toBeDefined();
          expect(h!.ja3, `tshark's JA3 on ${port}`).toMatch(/^[0-9a-f]{32}$/);
          const f = toPort[i]!;
          const what = `${c.app} ${c.sni} (${c.argv[0]}): ${JSON.stringify(f)}`;
          expect(f.app, what).toBe(c.app);
          expect(f.tls?.sni ?? null, what).toBe(c.sni);
          expect(f.tls?.sni ?? '', what).toBe(h!.sni);
          expect(f.tls?.ja3Hash, what).toBe(h!.ja3);
          expect(f.tls?.ja3, what).toBe(h!.full);
          expect(f.tls?.client, what).toMatchObject({ library: c.library, plaintext: true });
        }
      }
      // the filter language sees them as the protocols they are
      const upgraded = await flowsJson(out, env, '(app == "xmpp" || app == "nntp" || app == "sieve" || app == "nats" || app == "mssql") && tls.client.plaintext');
      expect(upgraded.map((f) => f.dst.port).sort((a, b) => a - b)).toEqual(clients.map((c) => c.port).sort((a, b) => a - b));
      // the NATS client's decrypted records ("CONNECT {...}", then PING) are NATS's, not HTTP's: tagged data (they were
      // http, a CONNECT request's start as far as their first word went, and Wireshark read them as broken HTTP)
      const tags = await run('tshark', ['-r', out, '-Y', 'exported_pdu.src_port == 4222 || exported_pdu.dst_port == 4222', '-T', 'fields', '-e', 'exported_pdu.prot_name']);
      expect(tags.code, tags.stderr).toBe(0);
      expect([...new Set(tags.stdout.trim().split('\n'))]).toEqual(['data']);
      // who logs in to SQL Server, from the Login7 its hook read (the password never)
      const sql = flows.find((f) => f.dst.port === 1433)!;
      expect(sql.db).toEqual({ user: 'orders_rw', database: 'orders', application: 'TSQL' });
      expect(JSON.stringify(sql)).not.toContain('lab-secret');
      // the test server does its TLS through memory BIOs, and its thread's first TLS call read the login: tied to the
      // connection by the socket read just before it, which the helper followed since the process maps libssl (not
      // only from the thread's first TLS call on, when that read was already over)
      expect(sql.tls?.server).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    } finally {
      nats.kill();
      server.stop();
    }
  }, 120_000);
});
