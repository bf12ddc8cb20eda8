// VLAN tags the kernel took out of the frame (skb_vlan_untag on receive, or VLAN offload) reach the helper only in
// the ring's header (tp_vlan_tci, tp_vlan_tpid); the helper must put them back after the MAC addresses, as libpcap
// does, or two VLANs carrying the same addresses and ports cannot be told apart. Tagged frames are written raw onto a
// veth from one private namespace (no 8021q module needed) and captured at its other end with --snaplen 64:
//   VLAN 10 and VLAN 20 (802.1Q): the same UDP 5555 -> 9999 datagram, short;
//   VLAN 30 (802.1ad, TPID 0x88a8): 64 bytes without its tag, so the kernel does not cut it and the tag makes it 68;
//   VLAN 40 (802.1Q, priority 5): 246 bytes, cut by the kernel.
// Every frame must read in tshark as tcpdump writes it: tag and TPID in place, lengths counting it, cut to the snap
// length after the tag went back in (and then counted as cut).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, uniquePrefix } from '../lib/lab.js';
import { startHelper } from '../lib/helper-process.js';
import { readCapture, type Capture } from '../lib/pcapng-walk.js';
import { decodePacket } from '../../src/flows/decode.js';

const PREFIX = uniquePrefix('tsh-vlan-');
const A = `${PREFIX}a`;
const B = `${PREFIX}b`;

const SEND = `
import socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("vx-a", 0))
def csum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16; return (~t) & 0xffff
for tpid, tci, size in ((0x8100, 10, 6), (0x8100, 20, 6), (0x88a8, 30, 22), (0x8100, (5 << 13) | 40, 204)):
    payload = (b"vlan%d" % (tci & 0xfff)).ljust(size, b".")
    udp = struct.pack("!HHHH", 5555, 9999, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton("10.88.0.1"), socket.inet_aton("10.88.0.2"))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(b"\\xff" * 6 + b"\\x02\\x00\\x00\\x00\\x00\\x01" + struct.pack("!HHH", tpid, tci, 0x0800) + ip + udp)
`;

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

let dir: string;
let pcap: string;
let cap: Capture;
let exitCode: number | null;
/** tshark's reading of the datagrams to port 9999, in order */
let rows: string[][];

async function cleanup(): Promise<void> {
  for (const n of [A, B]) await run('ip', ['netns', 'delete', n]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsh-vlan-'));
  await cleanup();
  for (const n of [A, B]) {
    await must('ip', ['netns', 'add', n]);
    await must('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
  }
  await must('ip', ['-n', A, 'link', 'add', 'vx-a', 'type', 'veth', 'peer', 'name', 'vx-b', 'netns', B]);
  await must('ip', ['-n', A, 'link', 'set', 'vx-a', 'up']);
  await must('ip', ['-n', B, 'link', 'set', 'vx-b', 'up']);
  pcap = join(dir, 'vlan.pcapng');
  const helper = await startHelper(B, ['--mode', 'afpacket', '--iface', 'vx-b', '--snaplen', '64'], pcap);
  try {
    await must('ip', ['netns', 'exec', A, 'python3', '-c', SEND]);
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    exitCode = await helper.stop();
  }
  cap = readCapture(pcap);
  const t = await run('tshark', ['-r', pcap, '-Y', 'udp.dstport == 9999', '-T', 'fields', '-e', 'eth.type', '-e', 'vlan.id', '-e', 'ieee8021ad.id',
    '-e', 'vlan.priority', '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'ip.src', '-e', 'ip.dst'], { timeoutMs: 60_000 });
  expect(t.code, t.stderr).toBe(0);
  rows = t.stdout.split('\n').filter(Boolean).map((l) => l.split('\t'));
}, 120_000);

afterAll(async () => {
  await cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('helper: VLAN tags the kernel took out of the frame', () => {
  it('puts each tag back after the MAC addresses, with its TPID, in the lengths', () => {
    expect(exitCode).toBe(0);
    expect(rows).toEqual([
      ['0x8100', '10', '', '0', '52', '52', '10.88.0.1', '10.88.0.2'],
      ['0x8100', '20', '', '0', '52', '52', '10.88.0.1', '10.88.0.2'],
      ['0x88a8', '', '30', '', '68', '64', '10.88.0.1', '10.88.0.2'],
      ['0x8100', '40', '', '5', '250', '64', '10.88.0.1', '10.88.0.2'],
    ]);
  });

  it('cuts to the snap length after the tag went back in, and counts those cuts', () => {
    for (const e of cap.epbs) expect(e.caplen).toBeLessThanOrEqual(64);
    const cut = cap.epbs.filter((e) => e.caplen < e.origlen).length;
    // VLAN 30's frame (64 bytes as the kernel saw it, 68 with its tag) and VLAN 40's
    const cutDatagrams = cap.epbs.filter((e) => e.caplen < e.origlen && decodePacket(1, e.data)?.dstPort === 9999);
    expect(cutDatagrams.map((e) => [e.caplen, e.origlen])).toEqual([[64, 68], [64, 250]]);
    const last = cap.records.filter((r) => r.t === 'stats').at(-1) as { final?: boolean; snaplenCuts?: number } | undefined;
    expect(last?.final).toBe(true);
    expect(last?.snaplenCuts).toBe(cut);
  });

  it('gives the core frames it decodes through the tag', () => {
    const tagged = cap.epbs.filter((e) => [0x8100, 0x88a8].includes(e.data.readUInt16BE(12)));
    expect(tagged).toHaveLength(4);
    for (const e of tagged) expect(decodePacket(1, e.data)).toMatchObject({ proto: 17, srcPort: 5555, dstPort: 9999 });
  });
});
