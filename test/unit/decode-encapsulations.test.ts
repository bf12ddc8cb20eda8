// Decoding of what can lie between a link header and IP: 802.1Q/QinQ tags after Linux cooked headers (SLL, SLL2), PPPoE
// sessions and MPLS label stacks. Frames are built byte by byte; a capture of them is checked against tshark's
// conversations through `tapscope flows`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePacket } from '../../src/flows/decode.js';
import { analyzeCapture, CaptureBuilder, ipPacket, type Seg } from './core-packet-builder.js';

const ROOT = join(import.meta.dirname, '../..');

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;

/** The ethertype of an IP packet, from its version nibble. */
function ipType(ip: Buffer): number {
  return (ip[0] ?? 0) >> 4 === 6 ? ETH_IPV6 : ETH_IPV4;
}

/** An Ethernet II header whose type field is `type`, then `rest`. */
function eth(type: number, rest: Buffer): Buffer {
  const h = Buffer.alloc(14);
  h.fill(0x02, 0, 12);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, rest]);
}

/** A LINUX_SLL header (incoming unicast, ARPHRD_ETHER, a 6-byte address) with protocol `type`, then `rest`. */
function sll(type: number, rest: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt16BE(0, 0);
  h.writeUInt16BE(1, 2);
  h.writeUInt16BE(6, 4);
  h.fill(0x02, 6, 12);
  h.writeUInt16BE(type, 14);
  return Buffer.concat([h, rest]);
}

/** A LINUX_SLL2 header (protocol `type`, ifindex 3, ARPHRD_ETHER, incoming unicast, a 6-byte address), then `rest`. */
function sll2(type: number, rest: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(type, 0);
  h.writeUInt32BE(3, 4);
  h.writeUInt16BE(1, 8);
  h[10] = 0;
  h[11] = 6;
  h.fill(0x02, 12, 18);
  return Buffer.concat([h, rest]);
}

/** One 802.1Q tag as it follows its TPID: the TCI (priority 0, VLAN `vid`), then the type of `rest`. */
function tag(vid: number, type: number, rest: Buffer): Buffer {
  const t = Buffer.alloc(4);
  t.writeUInt16BE(vid, 0);
  t.writeUInt16BE(type, 2);
  return Buffer.concat([t, rest]);
}

/** A PPPoE session header (session 0x1234) and the PPP protocol of `ip`; `compressed`: the one-byte protocol field. */
function pppoe(ip: Buffer, compressed = false): Buffer {
  const proto = ipType(ip) === ETH_IPV6 ? 0x0057 : 0x0021;
  const h = Buffer.alloc(compressed ? 7 : 8);
  h[0] = 0x11;
  h[1] = 0x00;
  h.writeUInt16BE(0x1234, 2);
  h.writeUInt16BE(h.length - 6 + ip.length, 4);
  if (compressed) h[6] = proto;
  else h.writeUInt16BE(proto, 6);
  return Buffer.concat([h, ip]);
}

/** An MPLS label stack (TTL 64, bottom-of-stack on the last), then `payload`. */
function mpls(labels: number[], payload: Buffer): Buffer {
  const h = Buffer.alloc(4 * labels.length);
  labels.forEach((label, i) => h.writeUInt32BE(((label << 12) | (i === labels.length - 1 ? 0x100 : 0) | 64) >>> 0, 4 * i));
  return Buffer.concat([h, payload]);
}

interface Case {
  name: string;
  linkType: number;
  frame: (ip: Buffer) => Buffer;
}

const CASES: Case[] = [
  { name: 'SLL + one VLAN tag', linkType: 113, frame: (ip) => sll(0x8100, tag(42, ipType(ip), ip)) },
  { name: 'SLL + QinQ (0x88a8, 0x8100)', linkType: 113, frame: (ip) => sll(0x88a8, tag(100, 0x8100, tag(42, ipType(ip), ip))) },
  { name: 'SLL2 + one VLAN tag', linkType: 276, frame: (ip) => sll2(0x8100, tag(42, ipType(ip), ip)) },
  { name: 'Ethernet PPPoE session', linkType: 1, frame: (ip) => eth(0x8864, pppoe(ip)) },
  { name: 'Ethernet VLAN + PPPoE session', linkType: 1, frame: (ip) => eth(0x8100, tag(7, 0x8864, pppoe(ip))) },
  { name: 'Ethernet PPPoE, compressed PPP protocol', linkType: 1, frame: (ip) => eth(0x8864, pppoe(ip, true)) },
  { name: 'MPLS, one label', linkType: 1, frame: (ip) => eth(0x8847, mpls([16], ip)) },
  { name: 'MPLS, two labels', linkType: 1, frame: (ip) => eth(0x8847, mpls([16, 17], ip)) },
  { name: 'MPLS multicast after a VLAN tag', linkType: 1, frame: (ip) => eth(0x8100, tag(9, 0x8848, mpls([20], ip))) },
  { name: 'SLL + VLAN + MPLS', linkType: 113, frame: (ip) => sll(0x8100, tag(42, 0x8847, mpls([16, 17], ip))) },
];

describe('decoding tagged and tunnelled frames', () => {
  const v4: Seg = { src: '10.9.0.1', dst: '10.9.0.2', sport: 40001, dport: 443, seq: 7, flags: 0x18, payload: Buffer.from('hello') };
  const v6: Seg = { ...v4, src: 'fd00:9::1', dst: 'fd00:9::2' };

  for (const c of CASES) {
    for (const [s, proto] of [[v4, 'tcp'], [v6, 'tcp'], [v4, 'udp'], [v6, 'udp']] as const) {
      it(`${c.name}: ${proto} over IPv${s === v4 ? 4 : 6}`, () => {
        const frame = c.frame(ipPacket(proto, s));
        const d = decodePacket(c.linkType, frame);
        expect(d).toMatchObject({ ipVersion: s === v4 ? 4 : 6, src: s.src, dst: s.dst, srcPort: 40001, dstPort: 443, proto: proto === 'tcp' ? 6 : 17, payloadLen: 5 });
        // The payload is the frame's last bytes: every layer before it was walked to its exact length.
        expect(d!.payloadStart).toBe(frame.length - 5);
        expect(d!.payload.toString()).toBe('hello');
      });
    }
  }

  it('decodes a frame in the middle of a larger buffer, as the flow table passes them', () => {
    const frame = CASES[1]!.frame(ipPacket('tcp', v4));
    const buf = Buffer.concat([Buffer.alloc(33, 0xee), frame, Buffer.alloc(12, 0xee)]);
    const d = decodePacket(113, buf, undefined, 33, 33 + frame.length);
    expect(d).toMatchObject({ src: v4.src, dst: v4.dst, srcPort: 40001, dstPort: 443, payloadStart: 33 + frame.length - 5 });
  });

  it('skips what it cannot reach IP through, as any other non-IP frame', () => {
    const ip = ipPacket('tcp', v4);
    const lcp = eth(0x8864, pppoe(ip));
    lcp.writeUInt16BE(0xc021, 20);
    const discovery = eth(0x8863, pppoe(ip));
    const pseudowire = eth(0x8847, mpls([16], Buffer.concat([Buffer.alloc(4), eth(ETH_IPV4, ip)])));
    const noBottom = eth(0x8847, Buffer.from([0x00, 0x10, 0x00, 0x40, 0x00, 0x11, 0x00, 0x40]));
    const cutTag = sll(0x8100, Buffer.from([0x00, 0x2a, 0x08]));
    const cutPppoe = eth(0x8864, pppoe(ip).subarray(0, 6));
    const arpInVlan = sll(0x8100, tag(42, 0x0806, Buffer.alloc(28)));
    const frames: [string, number, Buffer][] = [['PPP LCP', 1, lcp], ['PPPoE discovery', 1, discovery], ['Ethernet pseudowire', 1, pseudowire],
      ['labels without bottom of stack', 1, noBottom], ['cut VLAN tag', 113, cutTag], ['cut PPPoE header', 1, cutPppoe], ['ARP in a VLAN', 113, arpInVlan]];
    for (const [name, lt, frame] of frames) expect(decodePacket(lt, frame), name).toBeNull();
    const b = new CaptureBuilder();
    for (const [, lt, frame] of frames) b.packet(frame, { linkType: lt, iface: `if${lt}` });
    const a = analyzeCapture(b.build());
    expect(a.counters).toMatchObject({ packets: frames.length, nonIp: frames.length });
    expect(a.flows()).toHaveLength(0);
  });
});

describe('tapscope flows agrees with tshark on tagged and tunnelled captures', () => {
  let dir = '';
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'tsc-encap-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A TCP connection (handshake, a request, a response, both FINs) from client port `port`, every segment framed by `frame`. */
  function conversation(b: CaptureBuilder, c: Case, port: number, v6: boolean): void {
    const client = v6 ? 'fd00:9::1' : '10.9.0.1';
    const server = v6 ? 'fd00:9::2' : '10.9.0.2';
    const C = { src: client, dst: server, sport: port, dport: 80 };
    const S = { src: server, dst: client, sport: 80, dport: port };
    const req = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const res = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    const segs: Seg[] = [
      { ...C, seq: 100, flags: 0x02 },
      { ...S, seq: 500, ack: 101, flags: 0x12 },
      { ...C, seq: 101, ack: 501, flags: 0x10 },
      { ...C, seq: 101, ack: 501, flags: 0x18, payload: req },
      { ...S, seq: 501, ack: 101 + req.length, flags: 0x18, payload: res },
      { ...C, seq: 101 + req.length, ack: 501 + res.length, flags: 0x11 },
      { ...S, seq: 501 + res.length, ack: 102 + req.length, flags: 0x11 },
    ];
    for (const s of segs) b.packet(c.frame(ipPacket('tcp', s)), { linkType: c.linkType, iface: `if${c.linkType}` });
  }

  it('finds every conversation tshark finds, with its frames and bytes', () => {
    const b = new CaptureBuilder();
    const ports = new Map<number, string>();
    CASES.forEach((c, i) => {
      for (const v6 of [false, true]) {
        const port = 41000 + 2 * i + (v6 ? 1 : 0);
        ports.set(port, `${c.name} IPv${v6 ? 6 : 4}`);
        conversation(b, c, port, v6);
      }
    });
    const path = join(dir, 'encapsulations.pcapng');
    writeFileSync(path, b.build());

    const conv = spawnSync('tshark', ['-r', path, '-q', '-z', 'conv,tcp'], { encoding: 'utf8' });
    expect(conv.status, conv.stderr).toBe(0);
    // Rows: "A:port <-> B:port  frames bytes frames bytes frames bytes start duration" (bytes may carry a unit word).
    const tshark = new Map<number, { frames: number; bytes: number }>();
    for (const line of conv.stdout.split('\n')) {
      const m = /^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+(.*)$/.exec(line.trim());
      if (!m) continue;
      const nums = m[5]!.split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number);
      tshark.set(Number(m[2]), { frames: nums[4]!, bytes: nums[5]! });
    }

    const cli = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'flows', path, '--json'],
      { encoding: 'utf8', cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(dir, 'home') } });
    expect(cli.status, cli.stderr).toBe(0);
    const ours = new Map<number, { frames: number; bytes: number }>();
    for (const line of cli.stdout.trim().split('\n')) {
      const f = JSON.parse(line) as { src: { port: number }; dst: { port: number }; packets: number; bytes: number };
      expect(f.dst.port).toBe(80);
      ours.set(f.src.port, { frames: f.packets, bytes: f.bytes });
    }

    expect(tshark.size).toBe(ports.size);
    for (const [port, name] of ports) {
      expect(tshark.get(port), `tshark, ${name}`).toMatchObject({ frames: 7 });
      expect(ours.get(port), name).toEqual(tshark.get(port));
    }
  });
});
