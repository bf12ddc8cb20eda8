// Redaction inside tunnels: an HTTP connection carried in VXLAN (4789, and 8472 when its header says VXLAN), VXLAN-GPE,
// Geneve (with options, Ethernet or IP in it), GRE (key and sequence number, IP or Ethernet in it, over IPv6, in UDP),
// ERSPAN, IP in IP, IPv6 in IP, Teredo, and a tunnel in a tunnel, as an overlay network's node or a mirror port sees
// it; what a tunnel carries that is not read here (GTP-U, MPLS in GRE, an inner fragment) is scanned conservatively.
// Packets are built byte by byte; tshark, which decodes these tunnels by default, reads the export.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PacketRedactor } from '../../src/export/index.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { CaptureBuilder, ethernet, ipCarrying, ipPacket, tcpConversation, type Seg } from './core-packet-builder.js';
import { exportBothWays } from './export-capture.js';
import { END_HEADERS, END_STREAM, HEADERS, SETTINGS, frame, indexed, litIdx } from './export-h2-frames.js';

const CLIENT = { ip: '10.244.1.5', port: 40111 };
const SERVER = { ip: '10.244.2.7', port: 8080 };
const NODE_A = '192.168.50.1';
const NODE_B = '192.168.50.2';

/** A UDP datagram between the two nodes to `port`, in Ethernet. */
const underlayUdp = (port: number, payload: Buffer, v6 = false): Buffer =>
  ethernet(ipPacket('udp', { src: v6 ? 'fd00::1' : NODE_A, dst: v6 ? 'fd00::2' : NODE_B, sport: 51000, dport: port, payload }));
const underlayIp = (proto: number, payload: Buffer, v6 = false): Buffer => ethernet(ipCarrying(proto, v6 ? 'fd00::1' : NODE_A, v6 ? 'fd00::2' : NODE_B, payload));

const vxlan = (vni: number): Buffer => Buffer.from([0x08, 0, 0, 0, vni >> 16, (vni >> 8) & 0xff, vni & 0xff, 0]);
const gre = (proto: number, opts: { key?: number; seq?: number } = {}): Buffer => {
  const h = Buffer.alloc(4);
  h[0] = (opts.key !== undefined ? 0x20 : 0) | (opts.seq !== undefined ? 0x10 : 0);
  h.writeUInt16BE(proto, 2);
  const extra = [opts.key, opts.seq].filter((x) => x !== undefined).map((x) => { const b = Buffer.alloc(4); b.writeUInt32BE(x!); return b; });
  return Buffer.concat([h, ...extra]);
};

/** Each way a tunnel carries an inner IP packet (`ip`): the whole frame on the underlay. */
const TUNNELS: [string, (inner: Buffer) => Buffer][] = [
  ['VXLAN', (p) => underlayUdp(4789, Buffer.concat([vxlan(42), ethernet(p)]))],
  ['VXLAN on 8472', (p) => underlayUdp(8472, Buffer.concat([vxlan(1), ethernet(p)]))],
  ['VXLAN-GPE', (p) => underlayUdp(4790, Buffer.concat([Buffer.from([0x0c, 0, 0, 1, 0, 0, 7, 0]), p]))],
  // (8 bytes of options)
  ['Geneve, Ethernet', (p) => underlayUdp(6081, Buffer.concat([Buffer.from([0x02, 0, 0x65, 0x58, 0, 0, 9, 0, 0x01, 0x02, 0x03, 0x01, 1, 2, 3, 4]), ethernet(p)]))],
  ['Geneve, IPv4', (p) => underlayUdp(6081, Buffer.concat([Buffer.from([0x00, 0, 0x08, 0x00, 0, 0, 9, 0]), p]))],
  ['GRE, key and sequence', (p) => underlayIp(47, Buffer.concat([gre(0x0800, { key: 77, seq: 1 }), p]))],
  ['GRE over IPv6, Ethernet', (p) => underlayIp(47, Buffer.concat([gre(0x6558), ethernet(p)]), true)],
  ['GRE in UDP', (p) => underlayUdp(4754, Buffer.concat([gre(0x0800), p]))],
  ['ERSPAN II', (p) => underlayIp(47, Buffer.concat([gre(0x88be, { seq: 5 }), Buffer.from([0x10, 0x01, 0, 0x05, 0, 0, 0, 0]), ethernet(p)]))],
  ['IP in IP', (p) => underlayIp(4, p)],
  ['IPv4 in IPv6', (p) => underlayIp(4, p, true)],
  ['GTP-U, an extension header', (p) => underlayUdp(2152, Buffer.concat([Buffer.from([0x34, 0xff, 0, p.length + 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0x10, 0x05, 0]), p]))],
  ['MPLS in GRE', (p) => underlayIp(47, Buffer.concat([gre(0x8847), Buffer.from([0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40]), p]))],
  ['VXLAN in GRE', (p) => underlayIp(47, Buffer.concat([gre(0x6558), ethernet(ipPacket('udp', { src: '10.9.0.1', dst: '10.9.0.2', sport: 40000, dport: 4789, payload: Buffer.concat([vxlan(5), ethernet(p)]) }))]))],
];
/** Tunnels of IPv6 packets. */
const TUNNELS6: [string, (inner: Buffer) => Buffer][] = [
  ['IPv6 in IP', (p) => underlayIp(41, p)],
  ['Teredo', (p) => underlayUdp(3544, p)],
];

/** A capture builder whose TCP segments go through a tunnel (`wrap`). */
class TunnelBuilder extends CaptureBuilder {
  constructor(public wrap: (inner: Buffer) => Buffer) {
    super();
  }

  override tcp(s: Seg): this {
    return this.packet(this.wrap(ipPacket('tcp', s)));
  }
}

/** An HTTP/1 exchange whose request is cut inside its Authorization value (two segments). */
function exchange(b: CaptureBuilder, client = CLIENT, server = SERVER): void {
  const req = 'GET /t HTTP/1.1\r\nHost: overlay.test\r\nAuthorization: Bearer AAAAAA';
  tcpConversation(b, client, server, [Buffer.from(req), Buffer.from('BBBBBB\r\nCookie: c=DDDDDD\r\n\r\n')],
    [null, Buffer.from('HTTP/1.1 200 OK\r\nSet-Cookie: s=CCCCCC\r\nContent-Length: 0\r\n\r\n')]);
}
const SECRET_PARTS = ['AAAAAA', 'BBBBBB', 'CCCCCC', 'DDDDDD'];

/** The capture's packets through one PacketRedactor: the frames in and out. */
function redact(b: CaptureBuilder): { before: Buffer[]; after: Buffer[] } {
  const r = new PacketRedactor();
  const before: Buffer[] = [];
  const after: Buffer[] = [];
  for (const block of parseBuffer(b.build())) {
    if (block.type !== 'epb') continue;
    before.push(Buffer.from(block.data));
    after.push(r.packet(block.iface.linkType, block.data, 's'));
  }
  return { before, after };
}

/** Checks that no secret byte is left and that only secret bytes changed (to 'x'), lengths kept. */
function expectMasked(what: string, { before, after }: { before: Buffer[]; after: Buffer[] }): void {
  const text = after.map((f) => f.toString('latin1')).join('\n');
  expect([what, SECRET_PARTS.filter((x) => text.includes(x))]).toEqual([what, []]);
  expect([what, text.includes('GET /t HTTP/1.1') && text.includes('HTTP/1.1 200 OK')]).toEqual([what, true]);
  before.forEach((f, i) => {
    const out = after[i]!;
    expect(out.length).toBe(f.length);
    for (let k = 0; k < f.length; k++) if (out[k] !== f[k]) expect([what, i, k, String.fromCharCode(out[k]!)]).toEqual([what, i, k, 'x']);
  });
}

describe('redaction inside tunnels', () => {
  it('masks the secrets of HTTP carried in each tunnel, split across its packets, and nothing else', () => {
    for (const [what, wrap] of TUNNELS) {
      const b = new TunnelBuilder(wrap);
      exchange(b);
      expectMasked(what, redact(b));
    }
    for (const [what, wrap] of TUNNELS6) {
      const b = new TunnelBuilder(wrap);
      exchange(b, { ip: 'fd10::5', port: 40111 }, { ip: 'fd10::7', port: 8080 });
      expectMasked(what, redact(b));
    }
  });

  it('follows cleartext HTTP/2 inside a tunnel as on the wire', () => {
    const b = new TunnelBuilder(TUNNELS[0]![1]);
    const block = Buffer.concat([indexed(2), indexed(6), indexed(4), litIdx(1, 'overlay.test'), litIdx(23, 'Bearer AAAAAA-h2c')]);
    tcpConversation(b, CLIENT, SERVER, [Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_HEADERS | END_STREAM, 1, block)])], [SETTINGS]);
    const { after } = redact(b);
    expect(after.some((f) => f.includes('overlay.test'))).toBe(true);
    expect(after.some((f) => f.includes('AAAAAA'))).toBe(false);
  });

  it('what a tunnel carries that is not read here (L2TP, PPTP, an inner fragment after the first) has its secrets masked all the same', () => {
    const unread: [string, (inner: Buffer) => Buffer][] = [
      ['L2TP', (p) => underlayUdp(1701, Buffer.concat([Buffer.from([0x00, 0x02, 0, 1, 0, 1, 0xff, 0x03, 0x00, 0x21]), p]))],
      ['PPTP (GRE version 1)', (p) => underlayIp(47, Buffer.concat([Buffer.from([0x30, 0x01, 0x88, 0x0b, 0, p.length + 4, 0, 9, 0, 0, 0, 1, 0xff, 0x03, 0x00, 0x21]), p]))],
      // (the inner packet's header says it is a fragment after the first: no TCP header to place its bytes)
      ['inner fragment', (p) => { const f = Buffer.from(p); f.writeUInt16BE(0x0010, 6); return underlayUdp(4789, Buffer.concat([vxlan(42), ethernet(f)])); }],
    ];
    for (const [what, wrap] of unread) {
      const b = new TunnelBuilder(wrap);
      exchange(b);
      const { after } = redact(b);
      const text = after.map((f) => f.toString('latin1')).join('\n');
      expect([what, SECRET_PARTS.filter((x) => text.includes(x))]).toEqual([what, []]);
    }
  });

  it('UDP on 8472 whose header is no VXLAN\'s is left as it is', () => {
    const datagram = underlayUdp(8472, Buffer.from('hello\r\nCookie: not-a-tunnel\r\n'));
    expect(new PacketRedactor().packet(1, datagram, 's').equals(datagram)).toBe(true);
  });
});

describe('tunnels checked with tshark', () => {
  let tmp: string;
  beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsr-tunnels-')); });
  afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('tshark, which decodes these tunnels by default, finds every request and answer of the export with its secrets masked', async () => {
    const shown = TUNNELS.filter(([what]) => what !== 'VXLAN on 8472');
    const b = new TunnelBuilder(shown[0]![1]);
    shown.forEach(([, wrap], i) => {
      b.wrap = wrap;
      exchange(b, { ...CLIENT, port: 41000 + i });
    });
    const { redacted, all } = await exportBothWays(b, tmp, 'tunnels');
    const fields = (file: string): string[] => {
      const t = spawnSync('tshark', ['-r', file, '-Y', 'http', '-T', 'fields', '-e', 'http.authorization', '-e', 'http.cookie', '-e', 'http.set_cookie'], { encoding: 'utf8' });
      expect(t.status, t.stderr).toBe(0);
      return t.stdout.trim().split('\n');
    };
    expect(fields(redacted)).toEqual(shown.flatMap(() => [`${'x'.repeat(19)}\t${'x'.repeat(8)}\t`, '\t\txxxxxxxx']));
    expect(fields(all)).toEqual(shown.flatMap(() => ['Bearer AAAAAABBBBBB\tc=DDDDDD\t', '\t\ts=CCCCCC']));
    expect(SECRET_PARTS.filter((x) => readFileSync(redacted).includes(x))).toEqual([]);
  });
});
