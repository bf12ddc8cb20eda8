// Database clients over TLS, really: psql (libpq, OpenSSL) and the MariaDB client (OpenSSL) against servers that
// speak each protocol's TLS upgrade (Postgres' SSLRequest answered 'S'; MySQL's greeting with CLIENT_SSL, then the
// client's SSL request packet) and then refuse the login inside TLS. Captured by `tapscope capture` in eBPF mode, each
// connection is its database's, with its TLS hello fields (equal to tshark's, which dissects both upgrades), its
// client library, the plaintext the hooks read, and who it logs in as (read from that plaintext).
import { describe, it, expect } from 'vitest';
import { startPythonServer, tsharkHellos } from '../lib/lab.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, flowsJson } from './core-cli.js';


const SERVER = `
import ssl, struct, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
def recv_exact(c, n):
    b = b''
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: raise EOFError
        b += d
    return b
def postgres(c):
    assert recv_exact(c, 8) == bytes.fromhex('0000000804d2162f')
    c.sendall(b'S')
    t = ctx.wrap_socket(c, server_side=True)
    n = struct.unpack('>I', recv_exact(t, 4))[0]; recv_exact(t, n - 4)
    msg = b'SFATAL\\0C28000\\0Mtapscope lab says no\\0\\0'
    t.sendall(b'E' + struct.pack('>I', len(msg) + 4) + msg); t.close()
def mysql(c):
    caps = 0x1 | 0x8 | 0x200 | 0x800 | 0x8000 | 0x80000
    p = (b'\\x0a' + b'8.0.36-tapscope\\0' + struct.pack('<I', 7) + b'abcdefgh' + b'\\0' + struct.pack('<H', caps & 0xffff)
         + bytes([33]) + struct.pack('<H', 2) + struct.pack('<H', caps >> 16) + bytes([21]) + bytes(10) + b'ijklmnopqrst\\0'
         + b'mysql_native_password\\0')
    c.sendall(struct.pack('<I', len(p))[:3] + b'\\0' + p)
    hdr = recv_exact(c, 4); body = recv_exact(c, hdr[0] | hdr[1] << 8 | hdr[2] << 16)
    assert hdr[3] == 1 and len(body) == 32 and struct.unpack('<I', body[:4])[0] & 0x800
    t = ctx.wrap_socket(c, server_side=True)
    hdr = recv_exact(t, 4); recv_exact(t, hdr[0] | hdr[1] << 8 | hdr[2] << 16)
    err = b'\\xff' + struct.pack('<H', 1045) + b'#28000' + b'tapscope lab says no'
    t.sendall(struct.pack('<I', len(err))[:3] + bytes([hdr[3] + 1]) + err); t.close()
serve(5432, postgres); serve(3306, mysql)
print('ready', flush=True)
sys.stdin.read()
`;

const t = useTlsLab('tsc-db', '10.202.13');

describe('database clients over TLS', () => {
  it('are their database\'s flows, with TLS hello fields as tshark reads them, the client library and the plaintext', async () => {
    const server = await startPythonServer(t.lab, t.dir, 'server', SERVER, [t.ca.cert, t.ca.key]);
    try {
      const { cap, out, env } = await captureLab(t.lab, t.dir, 'db.pcapng', 'ebpf', 8);
      const pg = await t.lab.execIn(t.lab.nodeNs, 'psql', ['host=api.tapscope.test port=5432 user=lab dbname=orders sslmode=require connect_timeout=5', '-c', 'select 1'],
        { timeoutMs: 20_000, env: { ...process.env, PGPASSWORD: 'x' } });
      expect(pg.stderr, server.output()).toContain('tapscope lab says no');
      const my = await t.lab.execIn(t.lab.nodeNs, 'mariadb', ['-h', 'www.tapscope.test', '-P', '3306', '-u', 'lab', '-D', 'shop', '--ssl', '--connect-timeout=5', '-e', 'select 1'], { timeoutMs: 20_000 });
      expect(my.stderr, server.output()).toContain('tapscope lab says no');
      expect(await cap.exited, cap.stderr()).toBe(0);

      const flows = await flowsJson(out, env);
      const byPort = new Map(flows.filter((f) => f.dst.ip === t.lab.serverIp).map((f) => [f.dst.port, f]));
      const ts = await tsharkHellos(out);
      const hellos = new Map(ts.map((h) => [h.port, h]));
      const logins = { 5432: { user: 'lab', database: 'orders', application: 'psql' }, 3306: { user: 'lab', database: 'shop', application: null } };
      for (const [port, app, sni] of [[5432, 'postgres', 'api.tapscope.test'], [3306, 'mysql', null]] as const) {
        const f = byPort.get(port);
        expect(f, `${app}: ${JSON.stringify(flows)}`).toBeDefined();
        expect(f!.app).toBe(app);
        const h = hellos.get(port);
        expect(h, `tshark's ClientHello on ${port}: ${JSON.stringify(ts)}`).toBeDefined();
        expect(f!.tls?.sni ?? '').toBe(h!.sni);
        if (sni) expect(f!.tls?.sni).toBe(sni);
        expect(f!.tls?.ja3Hash).toBe(h!.ja3);
        expect(f!.tls?.ja3).toBe(h!.full);
        expect(f!.tls?.client).toMatchObject({ library: 'openssl', plaintext: true });
        // who it logs in as, from the hooks' first decrypted message
        expect(f!.db).toEqual(logins[port]);
      }
      // the filter language sees them as the databases they are
      expect((await flowsJson(out, env, 'app == "postgres" && tls.client.plaintext')).map((f) => f.dst.port)).toEqual([5432]);
    } finally {
      server.stop();
    }
  }, 120_000);
});
