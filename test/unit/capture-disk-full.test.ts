// A live capture whose disk would fill: each node file stops being written before the disk keeps less than
// TAPSCOPE_KEEP_FREE free, the capture stops, its session says why and reads back every packet before the stop (a
// write that failed, ENOSPC, took the process down from the stream's data handler before). The target is a stand-in
// whose node stream the test writes.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { NodeFileWriter } from '../../src/store/node-writer.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { standInTarget } from '../lib/standin-target.js';
import { CaptureBuilder } from './core-packet-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'tsc-diskfull-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `n` UDP packets of `size` bytes each, one capture's bytes. */
function packets(n: number, size: number): Buffer {
  const b = new CaptureBuilder();
  for (let i = 0; i < n; i++) b.udp({ src: '10.9.3.1', dst: '10.9.3.2', sport: 40000 + (i % 100), dport: 9999, payload: Buffer.alloc(size, i) });
  return b.build();
}

async function withKeepFree<T>(value: string, fn: () => Promise<T>): Promise<T> {
  const prev = process.env.TAPSCOPE_KEEP_FREE;
  process.env.TAPSCOPE_KEEP_FREE = value;
  try {
    return await fn();
  } finally {
    if (prev === undefined) delete process.env.TAPSCOPE_KEEP_FREE;
    else process.env.TAPSCOPE_KEEP_FREE = prev;
  }
}

describe('a live capture whose disk would fill', () => {
  it('stops, says why, and its session holds every packet before the stop', async () => {
    // (the disk's free space less 24 MiB is kept free: 64 MiB of packets come, the file stops within 24 MiB)
    const s = statfsSync(dir);
    const summary = await withKeepFree(String(s.bavail * s.bsize - (24 << 20)), async () => {
      const t = standInTarget();
      const svc = new CoreService({ store: new SessionStore(join(dir, 'sessions')), createTarget: () => t.target });
      const started = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [] });
      const a = new PassThrough();
      t.handlers().onStream('node-a', a);
      const bytes = packets(46_000, 1400);
      for (let o = 0; o < bytes.length; o += 1 << 20) a.write(bytes.subarray(o, o + (1 << 20)));
      a.end();
      const out = await svc.waitForCapture(started.id);
      // (what the CLI's capture fails with, after it says what it saved)
      expect(svc.diskStop(started.id)).toMatch(/^node-a: stopped writing .* would be left free/);
      await svc.close();
      return out;
    });
    expect(summary.notes).toContainEqual(expect.stringMatching(/^node-a: stopped writing .* after \d+ bytes: only .* GiB would be left free on the disk of .*TAPSCOPE_KEEP_FREE\); the capture was stopped, and its file holds every packet before that$/));
    const store = new SessionStore(join(dir, 'sessions'));
    const rec = store.get(summary.id);
    const size = statSync(rec.file).size;
    expect(size).toBeGreaterThan(0);
    // (the free space is looked at every 16 MiB written: the file may go that far past it, and a chunk more)
    expect(size).toBeLessThan((24 + 16 + 1) << 20);
    // (read back: every complete block, the cut one at the end ignored)
    const { analyzer, notes } = await analyzeFiles(store.captureFiles(rec));
    expect(analyzer.counters.packets).toBeGreaterThan(1000);
    expect(analyzer.counters.packets).toBeLessThan(46_000);
    expect(summary.packets).toBe(analyzer.counters.packets);
    expect(notes.filter((n) => !/ends inside a block/.test(n))).toEqual([]);
  });

  it('a write the disk refuses stops the file too (not the process)', async () => {
    // (/dev/full: every write fails with ENOSPC)
    const told: string[] = [];
    const w = await withKeepFree('0', async () => {
      const writer = new NodeFileWriter('/dev/full', 'n');
      writer.onStopped = (why) => told.push(why);
      writer.write(packets(10, 100));
      writer.write(packets(10, 100));
      return writer;
    });
    expect(told).toEqual(['stopped writing /dev/full after 0 bytes: the disk of /dev is full']);
    expect(w.stopped).toBe(told[0]);
    w.close();
  });
});
