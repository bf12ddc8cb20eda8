// The reader thread (src/pcapng/read-ahead.ts): readBlocks on a regular file with it gives the blocks the plain
// read gives wherever the hand-over falls; it stops at once when the parse stops (damage) with the ring full, and
// a read error reaches the caller with its errno code. (core-flows-fast.test.ts compares whole analyses with it.)
import { describe, it, expect, afterAll } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBuffer, readBlocks } from '../../src/pcapng/index.js';
import { ReadAhead } from '../../src/pcapng/read-ahead.js';
import type { PcapngBlock } from '../../src/pcapng/types.js';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';

const tmp = mkdtempSync(join(tmpdir(), 'tapscope-ahead-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** ~600 KB of TCP conversations: many chunks of the sizes below */
function capture(): Buffer {
  const b = new CaptureBuilder(1_732_620_000_000);
  for (let i = 0; i < 60; i++) {
    tcpConversation(b, { ip: `10.0.${i}.1`, port: 40000 + i }, { ip: '10.9.0.1', port: 80 },
      [Buffer.from(`GET /${i} HTTP/1.1\r\nHost: h${i}\r\n\r\n`)], [Buffer.alloc(9000, 0x41 + (i % 26))], { isnC: i * 1000, isnS: i * 7 });
  }
  return b.build();
}

/** What a test compares: each block's type, offset and packet bytes. */
function view(blocks: PcapngBlock[]): string[] {
  return blocks.map((b) => `${b.type}@${b.offset}${'data' in b ? ':' + Buffer.from(b.data).toString('base64') : ''}`);
}

describe('read ahead on a second thread', () => {
  const bytes = capture();
  const file = join(tmp, 'big.pcapng');
  writeFileSync(file, bytes);
  const want = view(parseBuffer(bytes));

  it('gives every block once, in order, wherever the parse hands the file over', async () => {
    expect(bytes.length).toBeGreaterThan(8 * 16384);
    for (const [readSize, after] of [[16384, 0], [16384, 2], [4093, 7], [65536, 1], [1 << 20, 0]] as const) {
      const got: PcapngBlock[] = [];
      // (block data lies in a reused chunk: keep a copy, as a caller keeping it must)
      const res = await readBlocks(file, (b) => got.push('data' in b ? { ...b, data: Buffer.from(b.data) } : b), { readAhead: true, readAheadAfter: after, readSize });
      expect(res.bytes, `read ${readSize} from chunk ${after}`).toBe(bytes.length);
      expect(view(got), `read ${readSize} from chunk ${after}`).toEqual(want);
    }
  });

  it('stops the thread when the parse stops at damage, with the ring full', async () => {
    const damaged = Buffer.from(bytes);
    const at = parseBuffer(bytes).filter((b) => b.type === 'epb')[5]!.offset;
    damaged.writeUInt32LE(30, at + 4);
    const f = join(tmp, 'damaged.pcapng');
    writeFileSync(f, damaged);
    const got: PcapngBlock[] = [];
    // 4 KiB chunks: the damage is in the first, while the thread has filled every slot and waits
    const res = await readBlocks(f, (b) => got.push(b), { readAhead: true, readAheadAfter: 0, readSize: 4096, tolerateDamage: true });
    expect(res.damaged).toMatchObject({ code: 'E_PCAPNG_MALFORMED', details: { offset: at } });
    expect(res.bytes).toBe(at);
    expect(got.filter((b) => b.type === 'epb')).toHaveLength(5);
  });

  it('passes a read error on with its errno code', async () => {
    const fd = openSync(tmp, 'r');
    try {
      const ahead = new ReadAhead(fd, 2, 4096);
      ahead.begin(0);
      await expect(ahead.next()).rejects.toMatchObject({ code: 'EISDIR', message: expect.stringMatching(/directory/) });
      await ahead.close();
    } finally {
      closeSync(fd);
    }
  });

  it('reads from the position it is given, after what the parse read itself', async () => {
    const fd = openSync(file, 'r');
    try {
      const ahead = new ReadAhead(fd, 3, 1000);
      ahead.begin(123);
      const parts: Buffer[] = [];
      for (;;) {
        const c = await ahead.next();
        if (c.length === 0) break;
        parts.push(Buffer.from(c));
        ahead.release();
      }
      await ahead.close();
      expect(Buffer.concat(parts).equals(readFileSync(file).subarray(123))).toBe(true);
    } finally {
      closeSync(fd);
    }
  });
});
