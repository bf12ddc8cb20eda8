// A flow's packet list (flowPackets, `tapscope packets`, the app's Packets tab): flags, relative sequence and
// acknowledgment numbers, lengths and TCP notes equal to what tshark gives for the same packets, with and
// without the handshake captured and on a real loopback capture; decrypted records as rows; UDP; the limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeFiles } from '../../src/flows/load.js';
import { flowPackets, tcpFlagsText } from '../../src/flows/flow-packets.js';
import type { Flow } from '../../src/model/flow.js';
import { parseCommand } from '../../src/cli/args.js';
import { CaptureBuilder, ethernet, ipPacket } from './core-packet-builder.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { readPacketAt } from '../../src/pcapng/block-at.js';
import type { PacketBlock } from '../../src/pcapng/types.js';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { readFileSync } from 'node:fs';

const ROOT = join(import.meta.dirname, '../..');
const FIX = join(ROOT, 'test/fixtures/pcapng');
let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'tsc-packets-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

async function load(path: string): Promise<Flow[]> {
  return (await analyzeFiles([{ path }])).analyzer.flows();
}

const C = { src: '10.60.0.1', dst: '10.60.0.2', sport: 40000, dport: 80 };
const S = { src: '10.60.0.2', dst: '10.60.0.1', sport: 80, dport: 40000 };

/** A conversation with one of each TCP note: a spurious retransmission, a hole, an ACK of the hole, a keep-alive. */
function eventful(withHandshake: boolean): Buffer {
  const b = new CaptureBuilder();
  let c = 1000;
  let s = 9000;
  if (withHandshake) {
    b.tcp({ ...C, seq: c, flags: 0x02 });
    b.tcp({ ...S, seq: s, ack: c + 1, flags: 0x12 });
    b.tcp({ ...C, seq: c + 1, ack: s + 1, flags: 0x10 });
  }
  c++;
  s++;
  const p = (n: number): Buffer => Buffer.alloc(n, 0x41);
  b.tcp({ ...C, seq: c, ack: s, flags: 0x18, payload: p(100) });
  c += 100;
  b.tcp({ ...S, seq: s, ack: c, flags: 0x10 });
  b.tcp({ ...C, seq: c - 100, ack: s, flags: 0x18, payload: p(100) });
  b.tcp({ ...C, seq: c + 50, ack: s, flags: 0x18, payload: p(10) });
  c += 60;
  b.tcp({ ...S, seq: s, ack: c, flags: 0x18, payload: p(20) });
  s += 20;
  b.tcp({ ...C, seq: c - 1, ack: s, flags: 0x10, payload: p(1) });
  b.tcp({ ...C, seq: c, ack: s, flags: 0x11 });
  b.tcp({ ...S, seq: s, ack: c + 1, flags: 0x11 });
  b.tcp({ ...C, seq: c + 1, ack: s + 1, flags: 0x10 });
  // another flow's packets between them are not this flow's rows
  b.tcp({ src: '10.60.0.9', dst: S.src, sport: 41000, dport: 80, seq: 1, flags: 0x02 });
  return b.build();
}

/**
 * A hooked TLS flow as ebpf mode captures it: the client's SYN (from `<net>.1:45000` to `<net>.2:443`), then a decrypted
 * record for each text, the client's write first and the replies it reads after it (curl, pid `pid`, openssl).
 */
function hookedCapture(name: string, net: string, texts: string[], pid: number): string {
  const client = { ip: `${net}.1`, port: 45000 };
  const server = { ip: `${net}.2`, port: 443 };
  const b = new CaptureBuilder();
  b.tcp({ src: client.ip, dst: server.ip, sport: client.port, dport: server.port, seq: 7, flags: 0x02 });
  texts.forEach((t, i) => {
    if (i === 0) b.tls(client, server, 'out', Buffer.from(t), { pid, comm: 'curl', lib: 'openssl' });
    else b.tls(server, client, 'in', Buffer.from(t), { pid, comm: 'curl', lib: 'openssl' });
  });
  const path = join(dir, name);
  writeFileSync(path, b.build());
  return path;
}

/** tshark's view of one TCP stream, row for row in our terms. */
function tsharkRows(path: string, stream: number): { flags: string; seq: number; ack: number; payload: number; info: string }[] {
  const out = execFileSync('tshark', [
    '-r', path, '-Y', `tcp.stream == ${stream}`, '-T', 'fields', '-E', 'occurrence=f',
    '-e', 'tcp.flags', '-e', 'tcp.seq', '-e', 'tcp.ack', '-e', 'tcp.len',
    '-e', 'tcp.analysis.retransmission', '-e', 'tcp.analysis.spurious_retransmission', '-e', 'tcp.analysis.lost_segment',
    '-e', 'tcp.analysis.keep_alive', '-e', 'tcp.analysis.ack_lost_segment',
  ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.trim().split('\n').map((line) => {
    const [flags, seq, ack, len, retr, spurious, lost, keepAlive, ackLost] = line.split('\t');
    const notes = [
      lost ? 'previous segment not captured' : '', keepAlive ? 'keep-alive' : '',
      spurious ? 'spurious retransmission' : retr ? 'retransmission' : '', ackLost ? 'ACKed unseen segment' : '',
    ].filter(Boolean);
    return { flags: tcpFlagsText(parseInt(flags!, 16)), seq: Number(seq), ack: Number(ack), payload: Number(len), info: notes.join(', ') };
  });
}

describe('a flow\'s packets', () => {
  for (const handshake of [true, false]) {
    it(`match tshark's flags, relative numbers, lengths and notes (${handshake ? 'with' : 'without'} the handshake captured)`, async () => {
      const path = join(dir, `eventful-${handshake}.pcapng`);
      writeFileSync(path, eventful(handshake));
      const flow = (await load(path)).find((f) => f.src.port === 40000)!;
      const p = await flowPackets([{ path }], flow);
      expect(p.total).toBe(handshake ? 12 : 9);
      expect(p.truncated).toBe(false);
      const want = tsharkRows(path, 0);
      expect(p.rows.map(({ flags, seq, ack, payload, info }) => ({ flags, seq, ack, payload, info }))).toEqual(want);
      // (the comparison is not vacuous: every note is there)
      expect(new Set(p.rows.map((r) => r.info).filter(Boolean))).toEqual(new Set(['spurious retransmission', 'previous segment not captured', 'ACKed unseen segment', 'keep-alive']));
      expect(p.rows.map((r) => r.dir).slice(0, 2)).toEqual(['c2s', 's2c']);
      expect(p.rows.map((r) => r.n)).toEqual(Array.from({ length: p.total }, (_, i) => i + 1));
      expect(p.rows.every((r) => r.kind === 'packet' && r.len === r.payload + 54)).toBe(true);
    });
  }

  it('mark a SYN sent again as tshark does, and the flow counts what the list marks', async () => {
    const b = new CaptureBuilder();
    for (let i = 0; i < 3; i++) b.tcp({ ...C, seq: 1000, flags: 0x02 });
    b.tcp({ ...S, seq: 9000, ack: 1001, flags: 0x12 });
    b.tcp({ ...S, seq: 9000, ack: 1001, flags: 0x12 });
    b.tcp({ ...C, seq: 1001, ack: 9001, flags: 0x10 });
    const path = join(dir, 'syn-again.pcapng');
    writeFileSync(path, b.build());
    const [flow] = await load(path);
    const p = await flowPackets([{ path }], flow!);
    expect(p.rows.map(({ flags, seq, ack, payload, info }) => ({ flags, seq, ack, payload, info }))).toEqual(tsharkRows(path, 0));
    expect(p.rows.map((r) => r.info)).toEqual(['', 'retransmission', 'retransmission', '', 'retransmission', '']);
    expect(flow!.tcp?.retransmissions).toBe(3);
  });

  it('mark a segment behind the next soon after it as out of order, not counted as a retransmission; later, one is', async () => {
    for (const [gapMs, note, counted] of [[1, 'out-of-order', 0], [50, 'retransmission', 1]] as const) {
      const b = new CaptureBuilder();
      b.tcp({ ...C, seq: 1000, flags: 0x02 });
      b.tcp({ ...S, seq: 9000, ack: 1001, flags: 0x12 });
      b.tcp({ ...C, seq: 1001, ack: 9001, flags: 0x10 });
      // (the second half first, then the first half)
      b.tcp({ ...C, seq: 1051, ack: 9001, flags: 0x18, payload: Buffer.alloc(30, 0x42) });
      b.packet(ethernet(ipPacket('tcp', { ...C, seq: 1001, ack: 9001, flags: 0x18, payload: Buffer.alloc(50, 0x41) })), { stepMs: gapMs });
      const path = join(dir, `ooo-${gapMs}.pcapng`);
      writeFileSync(path, b.build());
      const [flow] = await load(path);
      const p = await flowPackets([{ path }], flow!);
      expect(p.rows.map((r) => r.info)).toEqual(['', '', '', 'previous segment not captured', note]);
      expect(flow!.tcp?.retransmissions).toBe(counted);
    }
  });

  it('match tshark on a real loopback capture (every TCP stream of it)', async () => {
    const path = join(FIX, 'loopback-mix.pcapng');
    const flows = (await load(path)).filter((f) => f.transport === 'tcp');
    expect(flows.length).toBe(4);
    for (const [i, flow] of flows.entries()) {
      const p = await flowPackets([{ path }], flow);
      expect(p.rows.length, flow.id).toBe(flow.packets);
      expect(p.rows.map(({ flags, seq, ack, payload, info }) => ({ flags, seq, ack, payload, info })), `stream ${i}`).toEqual(tsharkRows(path, i));
    }
  });

  it('gives a hooked flow\'s decrypted records as rows where they came, with who decrypted them', async () => {
    const path = hookedCapture('hooked.pcapng', '10.61.0', ['GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'HTTP/1.1 204 No Content\r\n\r\n'], 321);
    const flow = (await load(path)).find((f) => f.dst.port === 443)!;
    const p = await flowPackets([{ path }], flow);
    expect(p.rows.map((r) => [r.n, r.kind, r.dir, r.payload, r.flags, r.info])).toEqual([
      [1, 'packet', 'c2s', 0, 'SYN', ''],
      [2, 'record', 'c2s', 27, null, 'decrypted by SSL_write (openssl), curl pid 321'],
      [3, 'record', 's2c', 27, null, 'decrypted by SSL_read (openssl), curl pid 321'],
    ]);
    // (the records are counted apart: the packets are the flow's, as its Packets tab is labelled)
    expect([p.total, p.records, p.total - p.records]).toEqual([3, 2, flow.packets]);
  });

  it('counts a hooked flow\'s packets apart from its records, as many packets as the flow has (both ends hooked, real capture)', async () => {
    const path = join(FIX, 'ebpf-lo-hooks.pcapng');
    const flows = await load(path);
    expect(flows.length).toBe(11);
    for (const flow of flows) {
      const p = await flowPackets([{ path }], flow);
      expect(p.total - p.records, flow.id).toBe(flow.packets);
      expect(p.records, flow.id).toBe(p.rows.filter((r) => r.kind === 'record').length);
    }
    expect(flows.reduce((n, f) => n + f.packets, 0)).toBe(170);
  });

  it('lists UDP datagrams without TCP fields, and gives the first rows of a long flow with its total', async () => {
    const path = join(dir, 'udp.pcapng');
    const b = new CaptureBuilder();
    for (let i = 0; i < 7; i++) {
      const q = i % 2 === 0;
      b.udp({ src: q ? '10.62.0.1' : '10.62.0.2', dst: q ? '10.62.0.2' : '10.62.0.1', sport: q ? 50000 : 5000, dport: q ? 5000 : 50000, payload: Buffer.alloc(10 + i) });
    }
    writeFileSync(path, b.build());
    const [flow] = await load(path);
    const all = await flowPackets([{ path }], flow!);
    expect(all.rows.map((r) => [r.dir, r.payload, r.flags, r.seq, r.ack])).toEqual(
      Array.from({ length: 7 }, (_, i) => [i % 2 === 0 ? 'c2s' : 's2c', 10 + i, null, null, null]));
    const some = await flowPackets([{ path }], flow!, 3);
    expect([some.rows.length, some.total, some.records, some.truncated]).toEqual([3, 7, 0, true]);
    expect(some.rows).toEqual(all.rows.slice(0, 3));
  });

  it('gives each row\'s bytes from its block\'s offset, in either byte order, and says when no packet is there', async () => {
    for (const name of ['loopback-mix.pcapng', 'lo-udp-be.pcapng']) {
      const path = join(FIX, name);
      const blocks = parseBuffer(readFileSync(path)).filter((b): b is PacketBlock => b.type === 'epb');
      const flows = await load(path);
      const p = await flowPackets([{ path }], flows[0]!);
      expect(p.rows.length).toBeGreaterThan(0);
      for (const r of p.rows) {
        expect(r.file).toBe(0);
        const b = blocks.find((x) => x.offset === r.offset)!;
        expect(b, `${name} row ${r.n}`).toBeDefined();
        const got = await readPacketAt(path, r.offset);
        expect(got.data.equals(b.data), `${name} row ${r.n}`).toBe(true);
        expect(got.origLen).toBe(r.len);
      }
    }
    const path = join(FIX, 'loopback-mix.pcapng');
    await expect(readPacketAt(path, 0)).rejects.toMatchObject({ code: 'E_PCAPNG_MALFORMED', message: `${path} has no packet block at offset 0: its block type is 0xa0d0d0a` });
    await expect(readPacketAt(path, 1 << 30)).rejects.toMatchObject({ code: 'E_PCAPNG_MALFORMED', message: expect.stringMatching(/the file ends before it$/) });
  });

  it('gives a decrypted record\'s plaintext through the service, and a packet as captured', async () => {
    const path = hookedCapture('svc.pcapng', '10.63.0', ['GET /x HTTP/1.1\r\nHost: a\r\n\r\n'], 5);
    const svc = new CoreService({ store: new SessionStore(join(dir, 'svc-sessions')) });
    try {
      const s = await svc.openFile({ path });
      const flow = (await svc.queryFlows({ sessionId: s.id, offset: 0, limit: 10 })).rows[0]!;
      const p = await svc.flowPackets({ sessionId: s.id, flowId: flow.id });
      const [syn, rec] = p.rows;
      const synBytes = await svc.packetBytes({ sessionId: s.id, file: syn!.file, offset: syn!.offset });
      expect(synBytes.length).toBe(54);
      expect(synBytes.hex.slice(28, 32)).toBe('4500');
      const plain = await svc.packetBytes({ sessionId: s.id, file: rec!.file, offset: rec!.offset, record: true });
      expect(Buffer.from(plain.hex, 'hex').toString()).toBe('GET /x HTTP/1.1\r\nHost: a\r\n\r\n');
      await expect(svc.packetBytes({ sessionId: s.id, file: 3, offset: 0 })).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND' });
    } finally {
      await svc.close();
    }
  });

  it('names the flags as Wireshark does', () => {
    expect(tcpFlagsText(0x12)).toBe('SYN, ACK');
    expect(tcpFlagsText(0x19)).toBe('FIN, PSH, ACK');
    expect(tcpFlagsText(0xc2)).toBe('SYN, ECE, CWR');
    expect(tcpFlagsText(0)).toBe('<None>');
  });
});

describe('tapscope packets', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(dir, 'cli') } });

  it('prints the packet list as a table, or JSON lines, and says when a flow id is unknown', async () => {
    const path = join(dir, 'cli.pcapng');
    writeFileSync(path, eventful(true));
    const flow = (await load(path)).find((f) => f.src.port === 40000)!;
    const t = cli(['packets', path, flow.id]);
    expect([t.status, t.stderr]).toEqual([0, '']);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NO\.\s+TIME\s+DIR\s+FLAGS\s+SEQ\s+ACK\s+LEN\s+INFO$/);
    expect(lines).toHaveLength(13);
    expect(lines[2]!.split(/\s{2,}/)).toEqual(['2', '0.001000', '<-', 'SYN, ACK', '0', '1', '0']);
    expect(lines[6]!.split(/\s{2,}/)).toEqual(['6', '0.005000', '->', 'PSH, ACK', '1', '1', '100', 'spurious retransmission']);
    const j = cli(['packets', path, flow.id, '--json']);
    expect(j.status).toBe(0);
    expect(j.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual((await flowPackets([{ path }], flow)).rows);
    const missing = cli(['packets', path, 'ffffffffffffffff']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`tapscope: no flow 'ffffffffffffffff' in ${path} (flow ids: tapscope flows ${path} --json) (E_FLOW_NOT_FOUND)\n`);
    expect(() => parseCommand(['packets', path])).toThrow(/packets: FILE and FLOW_ID are required/);
  });
});
