// CoreService.followCapture (capture --out -, Open in Wireshark): a live capture's node files followed into one
// merged section, for a reader that may be slower than the capture. The target is a stand-in (test/lib) whose node
// streams the test writes, so the order of arrival, the end and the reader's pace are the test's.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { CoreService } from '../../src/service/core-service.js';
import { followCapture, type Follower } from '../../src/service/follow.js';
import { SessionStore } from '../../src/store/session-store.js';
import { parseBuffer } from '../../src/pcapng/reader.js';
import type { CaptureTarget } from '../../src/targets/target.js';
import { standInTarget, type StandInTarget } from '../lib/standin-target.js';
import { CaptureBuilder } from './core-packet-builder.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tsc-follow-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** `n` DNS-like UDP packets whose payload names the node. */
function packets(node: string, n: number, size = 1000): Buffer {
  const b = new CaptureBuilder();
  for (let i = 0; i < n; i++) b.udp({ src: '10.9.0.1', dst: '10.9.0.2', sport: 40000 + i, dport: 53, payload: Buffer.concat([Buffer.from(node), Buffer.alloc(size)]) });
  return b.build();
}

/** A reader that takes nothing until let go, then everything. */
function stalledReader(): { out: Writable; go(): void; bytes(): Buffer } {
  const chunks: Buffer[] = [];
  let release: (() => void) | null = null;
  const gate = new Promise<void>((r) => { release = r; });
  const out = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      void gate.then(() => cb());
    },
  });
  return { out, go: () => release!(), bytes: () => Buffer.concat(chunks) };
}

const perNode = (bytes: Buffer): Record<string, number> => {
  const count: Record<string, number> = {};
  for (const b of parseBuffer(bytes)) {
    if (b.type !== 'epb') continue;
    const node = b.data.includes('node-a') ? 'node-a' : b.data.includes('node-b') ? 'node-b' : '?';
    count[node] = (count[node] ?? 0) + 1;
  }
  return count;
};

/** A capture through the stand-in target, followed by a stalled reader, with node-a's stream begun. */
async function followed(): Promise<{ t: StandInTarget; svc: CoreService; id: string; reader: ReturnType<typeof stalledReader>; follower: Follower; a: PassThrough }> {
  const t = standInTarget();
  const svc = new CoreService({ store: new SessionStore(join(dir, 'sessions')), createTarget: () => t.target });
  const s = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [] });
  const reader = stalledReader();
  const follower = svc.followCapture(s.id, reader.out);
  const a = new PassThrough();
  t.handlers().onStream('node-a', a);
  return { t, svc, id: s.id, reader, follower, a };
}

describe('CoreService.followCapture', () => {
  it('gives a stalled reader every node\'s packets, also a node whose file the session\'s finish merged away meanwhile', async () => {
    const { t, svc, id, reader, follower, a } = await followed();
    a.write(packets('node-a', 200));
    // the follower is now waiting for the stalled reader (its first chunk filled the writable)
    await new Promise((r) => setTimeout(r, 50));
    // a second node joins, and the capture ends before the follower looks again: the finish appends node-b's file
    // to node-a's and removes its name
    const b = new PassThrough();
    t.handlers().onStream('node-b', b);
    b.write(packets('node-b', 150));
    a.end();
    b.end();
    t.finish();
    const summary = await svc.waitForCapture(id);
    expect(summary.packets).toBe(350);
    // (saved now: a new reader would take its export)
    expect(() => svc.followCapture(id, new PassThrough())).toThrow(/not a running capture/);
    reader.go();
    expect(await follower.done).toEqual({ gone: false });
    expect(follower.notes).toEqual([]);
    const merged = reader.bytes();
    expect(parseBuffer(merged).filter((x) => x.type === 'shb')).toHaveLength(1);
    expect(perNode(merged)).toEqual({ 'node-a': 200, 'node-b': 150 });
    await svc.close();
  });

  it('ends at once, without the rest, when the reader goes away; the capture keeps everything', async () => {
    const { t, svc, id, reader, follower, a } = await followed();
    a.write(packets('node-a', 300));
    await new Promise((r) => setTimeout(r, 50));
    reader.out.destroy();
    expect(await follower.done).toEqual({ gone: true });
    a.end();
    t.finish();
    expect((await svc.waitForCapture(id)).packets).toBe(300);
    await svc.close();
  });

  it('follows a capture whose nodes all ended during its start (it is finishing before the starter asks)', async () => {
    const t = standInTarget();
    const quick: CaptureTarget = {
      ...t.target,
      start: async (opts, h) => {
        const handle = await t.target.start(opts, h);
        const a = new PassThrough();
        h.onStream('node-a', a);
        a.end(packets('node-a', 40));
        await new Promise((r) => setImmediate(r));
        t.finish();
        await handle.done;
        return handle;
      },
    };
    const svc = new CoreService({ store: new SessionStore(join(dir, 'sessions')), createTarget: () => quick });
    const s = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [] });
    const chunks: Buffer[] = [];
    const follower = svc.followCapture(s.id, new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } }));
    expect(await follower.done).toEqual({ gone: false });
    expect(perNode(Buffer.concat(chunks))).toEqual({ 'node-a': 40 });
    expect((await svc.waitForCapture(s.id)).packets).toBe(40);
    await svc.close();
  });

  it('ends with the error when a file cannot be read (the CLI reports it and stops the capture)', async () => {
    // (a directory opens for reading but fails at read: EISDIR)
    const f = followCapture({ files: () => [{ node: 'n', path: dir, written: 100 }], ended: () => true }, new PassThrough());
    await expect(f.done).rejects.toThrow(/EISDIR/);
  });

  it('refuses a session that is not a running capture', async () => {
    const svc = new CoreService({ store: new SessionStore(join(dir, 'sessions')) });
    expect(() => svc.followCapture('nope', new PassThrough())).toThrow(/not a running capture/);
    await svc.close();
  });
});
