// A node file holds whole pcapng blocks only, whatever the chunks its stream comes in: after every write (what a capture
// killed at that moment leaves, the writes being synchronous), at the end of a stream cut inside a block (a helper that
// died mid-write), before a resumed stream's section, and after a write the disk cut short (cut back to its last whole
// block). tshark, the reader users have, reads each such file without a warning. Real files and the real NodeFileWriter;
// the full disk is a small tmpfs (root only).
import { describe, it, expect, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { NodeFileWriter } from '../../src/store/node-writer.js';
import { newFraming, wholeBlocks } from '../../src/pcapng/framing.js';
import { CaptureBuilder } from './core-packet-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'tsc-nwblocks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const asRoot = process.getuid?.() === 0;

/** A helper's stream: a capture record and `n` UDP packets of `size` bytes. */
function stream(n: number, size: number, port = 4000): Buffer {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'nw' });
  for (let i = 0; i < n; i++) b.udp({ src: '10.79.0.1', dst: '10.79.0.2', sport: port, dport: 9000 + (i % 20), payload: Buffer.alloc(size, i) });
  return b.build();
}

/** Where each block of `bytes` ends. */
function blockEnds(bytes: Buffer): number[] {
  const ends: number[] = [];
  expect(wholeBlocks(bytes, 0, newFraming(), (_s, e) => ends.push(e)), 'where its whole blocks end (its length: no torn block)').toBe(bytes.length);
  return ends;
}

/** What tshark makes of a file: its exit status, its warnings, the UDP packets it read (not the Tapscope records). */
function tshark(path: string): { status: number | null; warnings: string[]; packets: number } {
  const r = spawnSync('tshark', ['-r', path, '-Y', 'udp', '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
  return { status: r.status, warnings: r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Running as user')), packets: r.stdout.split('\n').filter(Boolean).length };
}

describe('a node file', () => {
  const bytes = stream(12, 300);
  const ends = blockEnds(bytes);
  // (the stream's SHB, the capture record and the interface come before the packets)
  const packetsBefore = (cut: number): number => ends.filter((e) => e <= cut).length - 3;

  it('holds whole blocks only after every write, whatever the chunk size, and a stream cut in a block drops that block', () => {
    for (const chunk of [1, 5, 64, 333, 1000, bytes.length]) {
      const path = join(dir, `stride-${chunk}.pcapng`);
      const w = new NodeFileWriter(path, 'node-a', { replace: true });
      w.beginStream();
      // (the SHB, then the node record the writer puts after it)
      const shb = ends[0]!;
      for (let o = 0; o < bytes.length; o += chunk) {
        w.write(bytes.subarray(o, o + chunk));
        const size = statSync(path).size;
        expect(size, `chunk ${chunk}, after byte ${o + chunk}`).toBe(w.bytesWritten);
        if (size === 0) continue;
        // the file: the stream's whole blocks so far, the node record after its SHB
        const file = readFileSync(path);
        const record = blockEnds(file)[1]! - shb;
        const streamBytes = size - record;
        expect(ends, `chunk ${chunk}, after byte ${o + chunk}`).toContain(streamBytes);
        expect(streamBytes).toBe(ends.filter((e) => e <= o + chunk).at(-1));
      }
      w.close();
    }
    // (killed, or cut, inside the 6th packet: the 5 before it, tshark reading the file without a warning)
    const cut = ends[7]! + 20;
    const path = join(dir, 'cut.pcapng');
    const w = new NodeFileWriter(path, 'node-a', { replace: true });
    w.beginStream();
    for (let o = 0; o < cut; o += 100) w.write(bytes.subarray(o, Math.min(o + 100, cut)));
    expect(tshark(path)).toEqual({ status: 0, warnings: [], packets: packetsBefore(cut) });
    w.close();
    expect(tshark(path)).toEqual({ status: 0, warnings: [], packets: 5 });
  });

  it('starts a resumed stream\'s section after the last whole block of the stream cut before it', () => {
    const path = join(dir, 'resumed.pcapng');
    const w = new NodeFileWriter(path, 'node-a', { replace: true });
    w.beginStream();
    w.write(bytes.subarray(0, ends[6]! + 50));
    w.gapOpened(Date.now() - 1000, 'the connection to the node was lost');
    w.beginStream();
    const second = stream(4, 200, 5000);
    w.write(second.subarray(0, 10));
    w.write(second.subarray(10));
    w.close();
    // (4 whole packets of the first section, all 4 of the second)
    expect(tshark(path)).toEqual({ status: 0, warnings: [], packets: 8 });
    expect(w.streamStarts).toEqual([0, w.streamStarts[1]]);
    expect(readFileSync(path).readUInt32LE(w.streamStarts[1]!)).toBe(0x0a0d0d0a);
  });
});

describe.skipIf(!asRoot)('a node file on a disk that fills', () => {
  it('is cut back to its last whole block when a write fits only in part, and stops saying the disk is full', () => {
    const mnt = join(dir, 'small');
    mkdirSync(mnt);
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
    expect(mount.status, mount.stderr).toBe(0);
    const prev = process.env.TAPSCOPE_KEEP_FREE;
    process.env.TAPSCOPE_KEEP_FREE = '0';
    try {
      // (packets of 1442-byte blocks: a write the disk ends at a page boundary ends inside one)
      const big = stream(1500, 1382);
      const path = join(mnt, 'full.pcapng');
      const w = new NodeFileWriter(path, 'node-a', { replace: true });
      const told: string[] = [];
      w.onStopped = (why) => told.push(why);
      w.beginStream();
      for (let o = 0; o < big.length && w.stopped === null; o += 50_000) w.write(big.subarray(o, o + 50_000));
      expect(told).toEqual([expect.stringMatching(/^stopped writing .*full\.pcapng after \d+ bytes: the disk of .* is full$/)]);
      expect(statSync(path).size).toBe(w.bytesWritten);
      w.close();
      const r = tshark(path);
      expect([r.status, r.warnings]).toEqual([0, []]);
      expect(r.packets).toBeGreaterThan(300);
      // (a filler written after shows the disk was full, not the writer stopping early)
      expect(() => writeFileSync(join(mnt, 'filler'), Buffer.alloc(64 << 10))).toThrow(/ENOSPC/);
    } finally {
      if (prev === undefined) delete process.env.TAPSCOPE_KEEP_FREE;
      else process.env.TAPSCOPE_KEEP_FREE = prev;
      spawnSync('umount', [mnt]);
    }
  });
});
