// DTLS, really: OpenSSL's and GnuTLS's DTLS 1.2 clients talk to `openssl s_server -dtls` (a HelloVerifyRequest round
// first, then a certificate in fragments) while `tapscope capture` records them in AF_PACKET mode. Each connection is a
// dtls flow with the SNI, ALPN, version and cipher suite tshark reads, tshark's JA3, and the JA4 computed here from
// tshark's fields (the "d" prefix, DTLS versions), not from tapscope's parser; the client's library is its process's.
// Captured again in eBPF mode, both ends' plaintext comes from their hooks: the client's connected socket, and the
// server's socket, which `openssl s_server -dtls` never connects, by the peer address of its recvfrom.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import type { Flow } from '../../src/model/flow.js';
import { cipherName } from '../../src/dissect/tls.js';
import { run } from '../lib/lab.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, flowsJson } from './core-cli.js';
import { tsharkClientHellos, type TsharkClientHello } from '../lib/tshark-ja4.js';

const t = useTlsLab('tsc-dtls', '10.202.51');
const PORT = 4433;

let server: ChildProcess | null = null;
let out = '';
let flows: Flow[] = [];
/** both clients' flows again, captured in eBPF mode, by client */
const ebpfFlows = new Map<string, Flow | undefined>();
let ebpfOut = '';
const said: Record<string, string> = {};
/** tshark's first ClientHello of each client port, and the cipher suite of each ServerHello by client port */
const hellos = new Map<number, TsharkClientHello>();
const ciphers = new Map<number, number>();

const CLIENTS = {
  openssl: (sni: string) => `(printf 'hello\\n'; sleep 1) | timeout 8 openssl s_client -dtls -connect ${t.lab.serverIp}:${PORT} -servername ${sni} -alpn coap -CAfile ${t.ca.ca}`,
  gnutls: (sni: string) => `(printf 'hello\\n'; sleep 1) | timeout 8 gnutls-cli --udp --x509cafile=${t.ca.ca} --sni-hostname=${sni} --alpn=coap -p ${PORT} ${t.lab.serverIp}`,
};

beforeAll(async () => {
  server = t.lab.spawnIn(t.lab.serverNs, 'openssl', ['s_server', '-dtls', '-accept', String(PORT), '-cert', t.ca.cert, '-key', t.ca.key, '-alpn', 'coap', '-quiet']);
  await new Promise((r) => setTimeout(r, 700));
  const cap = await captureLab(t.lab, t.dir, 'dtls.pcapng', 'afpacket', 6);
  out = cap.out;
  for (const [name, cmd] of Object.entries(CLIENTS)) {
    const r = await t.lab.execIn(t.lab.nodeNs, 'sh', ['-c', cmd(`dtls-${name}.tapscope.test`)], { timeoutMs: 20_000 });
    said[name] = r.stdout + r.stderr;
  }
  expect(await cap.cap.exited, cap.cap.stderr()).toBe(0);
  flows = await flowsJson(out, cap.env);
  for (const h of tsharkClientHellos(out, 'dtls', { fields: ['dtls.handshake.ja3', 'dtls.handshake.extensions_server_name'] })) {
    if (!hellos.has(h.port)) hellos.set(h.port, h);
  }
  // (again in eBPF mode: the hooks read both ends' plaintext, the server's on a socket it never connects)
  const e = await captureLab(t.lab, t.dir, 'dtls-ebpf.pcapng', 'ebpf', 7);
  for (const [name, cmd] of Object.entries(CLIENTS)) await t.lab.execIn(t.lab.nodeNs, 'sh', ['-c', cmd(`dtls-ebpf-${name}.tapscope.test`)], { timeoutMs: 20_000 });
  expect(await e.cap.exited, e.cap.stderr()).toBe(0);
  ebpfOut = e.out;
  const again = await flowsJson(e.out, e.env);
  for (const name of Object.keys(CLIENTS)) ebpfFlows.set(name, again.find((x) => x.tls?.sni === `dtls-ebpf-${name}.tapscope.test`));
  const s = await run('tshark', ['-r', out, '-Y', 'dtls.handshake.type == 2', '-T', 'fields', '-e', 'udp.dstport', '-e', 'dtls.handshake.ciphersuite']);
  expect(s.code, s.stderr).toBe(0);
  for (const line of s.stdout.split('\n').filter(Boolean)) {
    const [port, suite] = line.split('\t');
    ciphers.set(Number(port), Number(suite));
  }
}, 90_000);

afterAll(() => {
  server?.kill();
});

describe('DTLS handshakes (OpenSSL and GnuTLS clients, AF_PACKET capture)', () => {
  it('both clients completed their handshakes with the server', () => {
    expect(said.openssl).toMatch(/Protocol\s*: DTLSv1\.2/);
    expect(said.gnutls).toContain('Handshake was completed');
  });

  for (const name of Object.keys(CLIENTS)) {
    it(`${name}: a dtls flow with tshark's SNI, ALPN, version, cipher and JA3, and the JA4 of tshark's fields`, () => {
      const sni = `dtls-${name}.tapscope.test`;
      const f = flows.find((x) => x.tls?.sni === sni);
      expect(f, JSON.stringify(flows.map((x) => [x.app, x.dst.port, x.tls?.sni]))).toBeTruthy();
      expect(f!.transport).toBe('udp');
      expect(f!.app).toBe('dtls');
      const hello = hellos.get(f!.src.port);
      expect(hello, `tshark's ClientHello from port ${f!.src.port}`).toBeTruthy();
      const row = hello!.row;
      expect(row['dtls.handshake.extensions_server_name']).toBe(sni);
      expect(f!.tls!.alpn).toEqual(['coap']);
      expect(f!.tls!.version).toBe('DTLS 1.2');
      expect(f!.tls!.cipher).toBe(cipherName(ciphers.get(f!.src.port)!));
      expect(f!.tls!.ja3Hash).toBe(row['dtls.handshake.ja3']);
      expect(f!.tls!.ja4).toBe(hello!.ja4);
      expect(f!.tls!.ja4).toMatch(/^dd2d/);
      // (the client's process, from the helper's socket records, names its library: DTLS is TLS's library's)
      expect(f!.process?.comm).toBe(name === 'openssl' ? 'openssl' : 'gnutls-cli');
      expect(f!.tls!.client).toMatchObject({ library: name, via: 'process', plaintext: false, reason: expect.stringContaining('afpacket') });
    });
  }

  for (const name of Object.keys(CLIENTS)) {
    it(`${name}, in eBPF mode: both ends' plaintext captured by their hooks, the server's read on a socket it never connected`, () => {
      const f = ebpfFlows.get(name);
      expect(f, `the ${name} client's flow in the eBPF capture`).toBeTruthy();
      expect(f!).toMatchObject({ transport: 'udp', app: 'dtls', seenBy: 'packets' });
      expect(f!.tls!.client).toMatchObject({ library: name, via: 'hook', plaintext: true, reason: null });
      expect(f!.tls!.server).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true, reason: null });
      expect(f!.process?.comm).toBe(name === 'openssl' ? 'openssl' : 'gnutls-cli');
    });
  }

  it('in eBPF mode, tshark reads the records as UDP plaintext of each connection: the client\'s write and the server\'s read', async () => {
    const r = await run('tshark', ['-r', ebpfOut, '-Y', 'frame.interface_name == "tapscope-tls"', '-T', 'fields', '-e', 'exported_pdu.src_port', '-e', 'exported_pdu.dst_port',
      '-e', 'exported_pdu.port_type', '-e', 'frame.comment', '-e', 'data.data']);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter(Boolean).map((l) => l.split('\t'));
    for (const name of Object.keys(CLIENTS)) {
      const f = ebpfFlows.get(name)!;
      // (the client's "hello" line, written by the client and read by the server: src the client's port, dst 4433)
      const mine = rows.filter((c) => Number(c[0]) === f.src.port && Number(c[1]) === PORT);
      const who = mine.map((c) => /comm=(\S+)/.exec(c[3] ?? '')?.[1]).sort();
      expect(who, `${name}: ${JSON.stringify(rows)}`).toEqual([name === 'openssl' ? 'openssl' : 'gnutls-cli', 'openssl'].sort());
      for (const c of mine) {
        expect(c[2], 'port type UDP').toBe('3');
        expect(Buffer.from(c[4] ?? '', 'hex').toString('latin1')).toBe('hello\n');
      }
    }
  });

  it('the filter finds them by app and by JA4', async () => {
    const kept = await flowsJson(out, {}, 'app == "dtls" && tls.ja4 contains "dd2d"');
    expect(kept.map((x) => x.tls!.sni).sort()).toEqual(['dtls-gnutls.tapscope.test', 'dtls-openssl.tapscope.test']);
  });
});
