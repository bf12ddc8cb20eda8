// A live capture whose disk would fill: each node file stops being written before the disk keeps less than
// TAPSCOPE_KEEP_FREE free, the capture stops, its session says why and reads back every packet before the stop (a
// write that failed, ENOSPC, took the process down from the stream's data handler before). A disk that is full when
// the capture ends (a small tmpfs, filled): the session still records its end, and why, in the room its record has, or
// says it could not (E_DISK_FULL), where the finish's ENOSPC used to crash the CLI and leave the session "interrupted".
// The target is a stand-in whose node stream the test writes.
import { describe, it, expect, afterAll } from 'vitest';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { NodeFileWriter } from '../../src/store/node-writer.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { lockPath } from '../../src/store/capture-lock.js';
import type { CaptureTarget } from '../../src/targets/target.js';
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

/** Runs `fn` with a 1 MiB tmpfs mounted at a new folder (unmounted after). */
async function withSmallDisk<T>(fn: (mnt: string) => Promise<T>): Promise<T> {
  const mnt = mkdtempSync(join(dir, 'small-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
  try {
    return await fn(mnt);
  } finally {
    spawnSync('umount', [mnt]);
  }
}

/** Fills the disk of `mnt` to its last page with a file of its own. */
function fill(mnt: string): void {
  const fd = openSync(join(mnt, `filler-${Date.now()}-${Math.random()}`), 'w');
  try {
    for (;;) writeSync(fd, Buffer.alloc(4096, 1));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
}

/**
 * Names the session so that its record is a little short of the page it takes on the tmpfs: its end, and a note, do
 * not fit there. Returns the name.
 */
function fillPage(store: SessionStore, id: string): string {
  const size = (): number => statSync(join(store.root, id, 'session.json')).size;
  store.update(id, (r) => { r.name = ''; });
  const name = 'n'.repeat(4096 - 4 - size());
  store.update(id, (r) => { r.name = name; });
  expect(size()).toBe(4092);
  return name;
}

describe('a disk that is full when the capture ends', () => {
  it('the capture stopped by it ends as one: its session records the end and why, and is no killed one', async () => {
    await withSmallDisk(async (mnt) => withKeepFree('0', async () => {
      const store = new SessionStore(join(mnt, 'sessions'));
      const t = standInTarget();
      // (whatever the node file's stop left free is taken too as the capture ends: no room for a new session.json)
      const target = { ...t.target, close: async () => { fill(mnt); } };
      const svc = new CoreService({ store, createTarget: () => target });
      const started = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [] });
      const a = new PassThrough();
      t.handlers().onStream('node-a', a);
      const bytes = packets(2000, 1000);
      for (let o = 0; o < bytes.length && svc.diskStop(started.id) === null; o += 1 << 16) a.write(bytes.subarray(o, o + (1 << 16)));
      a.end();
      const end = await svc.waitForCapture(started.id);
      expect(end.saved).toBe(true);
      expect(svc.diskStop(started.id)).toMatch(/^node-a: stopped writing .* the disk of .* is full$/);
      const rec = store.get(started.id);
      expect(rec.endedAt).not.toBeNull();
      expect(rec.writer).toBeUndefined();
      expect(rec.notes).toContainEqual(expect.stringMatching(/^node-a: stopped writing .* the disk of .* is full; the capture was stopped, and its file holds every packet before that$/));
      const listed = (await new CoreService({ store }).listSessions()).find((s) => s.id === started.id)!;
      // (a session whose end was not recorded is listed as one whose process was killed)
      expect(listed.notes.filter((n) => /its process is gone/.test(n))).toEqual([]);
      expect(listed.packets).toBeGreaterThanOrEqual(end.packets);
      expect(end.packets).toBeGreaterThan(100);
    }));
  });

  it('a capture whose end cannot be recorded at all still ends, and fails as a full disk\'s, saying its session will be listed as interrupted', async () => {
    await withSmallDisk(async (mnt) => withKeepFree('0', async () => {
      const store = new SessionStore(join(mnt, 'sessions'));
      const t = standInTarget();
      // (and a note of the capture's, which its end has to record)
      const note = `node-a: ${'a note of the target '.repeat(20)}`;
      const target: CaptureTarget = {
        ...t.target, start: async (...args) => ({ ...(await t.target.start(...args)), notes: [note] }), close: async () => { fill(mnt); },
      };
      const svc = new CoreService({ store, createTarget: () => target });
      const started = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [] });
      const a = new PassThrough();
      t.handlers().onStream('node-a', a);
      a.write(packets(20, 100));
      fillPage(store, started.id);
      a.end();
      await svc.stopCapture({ sessionId: started.id });
      const end = await svc.waitForCapture(started.id);
      const why = `session '${started.id}' could not record its end: no space left on device; its capture file ${end.file} holds every packet saved before then, and the session will be listed as interrupted`;
      expect(end.notes).toEqual([note, why]);
      expect(end.endedAt).not.toBeNull();
      expect(end.packets).toBe(20);
      expect(svc.diskStop(started.id)).toBe(why);
      expect(store.get(started.id).endedAt).toBeNull();
    }));
  });

  it('a record whose notes do not fit keeps its end and says its notes are missing', async () => {
    await withSmallDisk(async (mnt) => withKeepFree('0', async () => {
      const store = new SessionStore(join(mnt, 'sessions'));
      const rec = store.create({ target: 'local' });
      const w = store.nodeWriter(rec.id, 'node-a');
      w.beginStream();
      w.write(packets(20, 100));
      w.close();
      expect(w.bytesWritten).toBeGreaterThan(2000);
      fill(mnt);
      // (a note longer than the page the record has)
      await store.finish(rec.id, { notes: ['x'.repeat(5000)], losses: ['x'.repeat(5000)] });
      const kept = store.get(rec.id);
      expect(kept.endedAt).not.toBeNull();
      expect(kept.writer).toBeUndefined();
      const note = 'the disk was full (no space left on device) when the capture ended: its notes could not be saved; the capture file holds every packet saved before then';
      expect(kept.notes).toEqual([note]);
      expect(kept.losses).toEqual([note]);
    }));
  });

  it('a record that cannot record its end at all: E_DISK_FULL saying what was saved; the lock on the file is given up', async () => {
    await withSmallDisk(async (mnt) => withKeepFree('0', async () => {
      const store = new SessionStore(join(mnt, 'sessions'));
      const out = join(mnt, 'out', 'capture.pcapng');
      mkdirSync(join(mnt, 'out'));
      const rec = store.create({ target: 'local', file: out });
      const w = store.nodeWriter(rec.id, 'node-a');
      w.beginStream();
      w.write(packets(20, 100));
      w.close();
      expect(store.get(rec.id).pendingFile).toBeUndefined();
      expect(existsSync(lockPath(out))).toBe(true);
      const name = fillPage(store, rec.id);
      fill(mnt);
      await expect(store.finish(rec.id, { notes: [`the capture stopped: ${'x'.repeat(200)}`] })).rejects.toMatchObject({
        code: 'E_DISK_FULL',
        message: `session '${rec.id}' could not record its end: no space left on device; its capture file ${out} holds every packet saved before then, and the session will be listed as interrupted`,
      });
      expect(existsSync(lockPath(out))).toBe(false);
      // (the record as it was)
      expect(store.get(rec.id)).toMatchObject({ name, endedAt: null, notes: [] });
    }));
  });
});
