// The helper's interface table has no size limit: on a Kubernetes node every pod adds a veth with a new ifindex, and
// a fixed table (256 entries, once) left every packet of a further interface out, with no count, no IDB and no note.
// A private namespace gets 150 veth pairs (300 interfaces); one UDP datagram leaves by each pair's first end (no ARP)
// and arrives on its second, so each of the 300 interfaces carries one datagram to port 9999, in the order the pairs
// were made. Every one must be in the capture, on an IDB named after its own interface.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, uniquePrefix } from '../lib/lab.js';
import { startHelper } from '../lib/helper-process.js';
import { readCapture, type Capture } from '../lib/pcapng-walk.js';

const PAIRS = 150;
const NS = `${uniquePrefix('tsh-ifs-')}ns`;
const dst = (i: number): string => `10.${100 + Math.floor(i / 250)}.${i % 250}.9`;

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

let dir: string;
let cap: Capture;
let exitCode: number | null;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsh-ifs-'));
  await run('ip', ['netns', 'delete', NS]);
  await must('ip', ['netns', 'add', NS]);
  await must('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  const batch: string[] = [];
  for (let i = 1; i <= PAIRS; i++) {
    batch.push(`link add va${i} type veth peer name vb${i}`, `link set va${i} arp off`, `link set va${i} up`, `link set vb${i} up`,
      `route add ${dst(i).replace(/\.9$/, '.0')}/24 dev va${i}`);
  }
  await writeFile(join(dir, 'links.batch'), batch.join('\n') + '\n');
  await must('ip', ['-n', NS, '-batch', join(dir, 'links.batch')]);
  const pcap = join(dir, 'ifs.pcapng');
  const helper = await startHelper(NS, ['--mode', 'afpacket'], pcap);
  try {
    await must('ip', ['netns', 'exec', NS, 'python3', '-c', `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(1, ${PAIRS + 1}):
    s.sendto(b"iface%d" % i, ("10.%d.%d.9" % (100 + i // 250, i % 250), 9999))
`]);
    // why: the ring hands over a quiet block after 50 ms; the helper drains it on its next poll
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    exitCode = await helper.stop();
  }
  cap = readCapture(pcap);
}, 120_000);

afterAll(async () => {
  await run('ip', ['netns', 'delete', NS]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('helper: more interfaces than any fixed table', () => {
  it('writes every datagram, each on an IDB of its own interface, and no interface twice', () => {
    expect(exitCode).toBe(0);
    // UDP to port 9999 over Ethernet (veth): ethertype IPv4 at 12, IP protocol at 23, destination port at 36
    const seen = new Map<string, number>();
    for (const e of cap.epbs) {
      if (e.data.length < 42 || e.data.readUInt16BE(12) !== 0x0800 || e.data[23] !== 17 || e.data.readUInt16BE(36) !== 9999) continue;
      const i = Number(/^iface(\d+)$/.exec(e.data.subarray(42).toString())?.[1]);
      const name = cap.idbs[e.ifid]?.name ?? '?';
      expect([`va${i}`, `vb${i}`]).toContain(name);
      seen.set(name, (seen.get(name) ?? 0) + 1);
    }
    expect(seen.size).toBe(2 * PAIRS);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    // the last pair, well past 256 interfaces, is there
    expect(seen.get(`va${PAIRS}`)).toBe(1);
    expect(seen.get(`vb${PAIRS}`)).toBe(1);
    const names = cap.idbs.map((d) => d.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('counts every interface in the final stats', () => {
    const last = cap.records.filter((r) => r.t === 'stats').at(-1) as { final?: boolean; ifaces?: Record<string, { packets: number }> } | undefined;
    expect(last?.final).toBe(true);
    for (let i = 1; i <= PAIRS; i++) {
      expect(last?.ifaces?.[`va${i}`]?.packets ?? 0).toBeGreaterThan(0);
      expect(last?.ifaces?.[`vb${i}`]?.packets ?? 0).toBeGreaterThan(0);
    }
  });
});
