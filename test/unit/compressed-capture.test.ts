// Compressed capture files: a gzip-compressed one reads as the capture it holds (a cut or damaged stream up to where it
// goes wrong, said so), the app opens one as a session of its decompressed copy, and other compressors' files are
// refused naming the command that decompresses them.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { compressionOf, gunzipCapture, isGzip } from '../../src/pcapng/compressed.js';
import { SessionStore } from '../../src/store/session-store.js';
import { CoreService } from '../../src/service/core-service.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/pcapng/loopback-mix.pcapng');
const tmp = mkdtempSync(join(tmpdir(), 'tapscope-gz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const capture = readFileSync(FIXTURE);
// (level 1 and a small window: the fixture's stream spans several deflate blocks, so a cut in the middle leaves some)
const gz = gzipSync(capture, { level: 1, windowBits: 9 });

function file(name: string, bytes: Buffer): string {
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return p;
}

describe('compressionOf', () => {
  it("knows gzip, zstd, lz4, xz and bzip2 by their magic numbers, and no capture's", () => {
    const zstd = spawnSync('zstd', ['-c', FIXTURE]).stdout;
    const xz = spawnSync('xz', ['-c', FIXTURE]).stdout;
    const bz = spawnSync('bzip2', ['-c', FIXTURE]).stdout;
    expect([gz, zstd, xz, bz].map((b) => compressionOf(b))).toEqual(['gzip', 'zstd', 'xz', 'bzip2']);
    expect(compressionOf(Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x64]))).toBe('lz4');
    // pcapng's section header, pcap's magic numbers (both byte orders, microseconds and nanoseconds)
    for (const magic of ['0a0d0d0a', 'd4c3b2a1', 'a1b2c3d4', '4d3cb2a1', 'a1b23c4d']) expect(compressionOf(Buffer.from(magic, 'hex'))).toBeNull();
    expect(compressionOf(Buffer.alloc(0))).toBeNull();
    expect(compressionOf(Buffer.from([0x1f]))).toBeNull();
  });
});

describe('gunzipCapture', () => {
  it('writes the capture a gzip file holds, also one of two members (cat a.gz b.gz)', async () => {
    const out = join(tmp, 'whole.pcapng');
    expect(await gunzipCapture(file('whole.gz', gz), out)).toBeNull();
    expect(readFileSync(out).equals(capture)).toBe(true);
    const two = join(tmp, 'two.pcapng');
    expect(await gunzipCapture(file('two.gz', Buffer.concat([gz, gz])), two)).toBeNull();
    expect(readFileSync(two).equals(Buffer.concat([capture, capture]))).toBe(true);
  });

  it('keeps what a stream cut short held, and says so', async () => {
    const out = join(tmp, 'cut.pcapng');
    const p = await gunzipCapture(file('cut.gz', gz.subarray(0, Math.floor(gz.length * 0.6))), out, 'cut.gz');
    expect(p).toMatchObject({ kind: 'truncated', message: expect.stringMatching(/^the gzip stream of cut\.gz ends early \(the file was cut short\); the \d+ bytes decompressed/) });
    const got = readFileSync(out);
    expect(got.length).toBe(p!.offset);
    expect(got.length).toBeGreaterThan(capture.length * 0.3);
    expect(got.equals(capture.subarray(0, got.length))).toBe(true);
  });

  it('keeps what came before damage, and says so', async () => {
    const bad = Buffer.from(gz);
    bad[Math.floor(bad.length * 0.7)]! ^= 0x55;
    const out = join(tmp, 'bad.pcapng');
    const p = await gunzipCapture(file('bad.gz', bad), out);
    expect(p).toMatchObject({ kind: 'damaged', message: expect.stringMatching(/^gzip data error after \d+ decompressed bytes \(/) });
    const got = readFileSync(out);
    expect(got.length).toBe(p!.offset);
    // (what came before the damaged block is the capture's own bytes)
    expect(got.subarray(0, Math.min(got.length, 4096)).equals(capture.subarray(0, Math.min(got.length, 4096)))).toBe(true);
  });

  it('refuses other compressors, naming the command', async () => {
    const zst = file('x.pcapng.zst', spawnSync('zstd', ['-c', FIXTURE]).stdout);
    expect(() => isGzip(zst)).toThrow(`${zst} is compressed with zstd; tapscope reads gzip-compressed captures and uncompressed ones: decompress it first (zstd -d ${zst})`);
    expect(() => isGzip(zst, 'standard input')).toThrow(/^standard input is compressed with zstd; .*\(with zstd -d\)$/);
    await expect(gunzipCapture(zst, join(tmp, 'no.pcapng'))).rejects.toMatchObject({ code: 'E_PCAPNG_MALFORMED' });
    expect(isGzip(FIXTURE)).toBe(false);
  });
});

describe('CoreService.openFile of a .pcapng.gz', () => {
  it('opens a session of its decompressed copy with the same flows, and the same session again when opened again', async () => {
    const store = new SessionStore(join(tmp, 'sessions'));
    const svc = new CoreService({ store });
    const plain = await svc.openFile({ path: FIXTURE });
    const path = file('mix.pcapng.gz', gz);
    const s = await svc.openFile({ path });
    expect(s.name).toBe('mix.pcapng.gz');
    expect(s.id).not.toBe(plain.id);
    const rec = store.get(s.id);
    expect(rec).toMatchObject({ target: 'file', openedFrom: path });
    expect(rec.file.startsWith(join(tmp, 'sessions', s.id))).toBe(true);
    expect(readFileSync(rec.file).equals(capture)).toBe(true);
    const flows = async (id: string) => (await svc.queryFlows({ sessionId: id, offset: 0, limit: 1000 })).rows.map((f) => [f.src, f.dst, f.packets, f.bytes, f.app]);
    expect(await flows(s.id)).toEqual(await flows(plain.id));
    expect(s.flows).toBeGreaterThan(3);
    expect((await svc.openFile({ path })).id).toBe(s.id);
    expect(store.list().filter((r) => r.openedFrom === path)).toHaveLength(1);
  });

  it('stops a copy that would leave less free than TAPSCOPE_KEEP_FREE on its disk: no session, an existing one as it was', async () => {
    // (a gzip bomb: 48 MiB of zeros after the capture's own bytes, 48 KB compressed)
    const bomb = file('bomb.pcapng.gz', gzipSync(Buffer.concat([capture, Buffer.alloc(48 << 20)])));
    expect(bomb.length).toBeLessThan(100);
    const store = new SessionStore(join(tmp, 'sessions-full'));
    const svc = new CoreService({ store });
    const path = file('fine.pcapng.gz', gz);
    const fine = await svc.openFile({ path });
    const before = readFileSync(store.get(fine.id).file);
    const prev = process.env.TAPSCOPE_KEEP_FREE;
    try {
      // (the disk's free space less 20 MiB: the bomb's copy stops within 36 MiB, the small one fits)
      const s = statfsSync(tmp);
      process.env.TAPSCOPE_KEEP_FREE = String(s.bavail * s.bsize - (20 << 20));
      await expect(svc.openFile({ path: bomb })).rejects.toMatchObject({
        code: 'E_DISK_FULL', message: expect.stringMatching(/^decompressing .*bomb\.pcapng\.gz stopped after \d+ bytes: only .* GiB would be left free on the disk of .*TAPSCOPE_KEEP_FREE.*gzip -dc/),
      });
      expect(store.list().map((r) => r.id)).toEqual([fine.id]);
      // (the existing session opened again under the same reserve: its copy fits and is the same)
      expect((await svc.openFile({ path })).id).toBe(fine.id);
      expect(readFileSync(store.get(fine.id).file).equals(before)).toBe(true);
      expect(readdirSync(join(tmp, 'sessions-full', fine.id)).filter((f) => f.endsWith('.part'))).toEqual([]);
      // (and directly: the copy written up to the stop)
      const out = join(tmp, 'bomb-copy.pcapng');
      const err = await gunzipCapture(bomb, out).catch((e: unknown) => e) as { code: string; details: { written: number } };
      expect(err.code).toBe('E_DISK_FULL');
      expect(err.details.written).toBeGreaterThan(0);
      expect(err.details.written).toBeLessThan(36 << 20);
    } finally {
      if (prev === undefined) delete process.env.TAPSCOPE_KEEP_FREE;
      else process.env.TAPSCOPE_KEEP_FREE = prev;
    }
  });

  it('says what a cut stream held, and refuses a zstd file before making a session', async () => {
    const store = new SessionStore(join(tmp, 'sessions-cut'));
    const svc = new CoreService({ store });
    const path = file('cut.pcapng.gz', gz.subarray(0, Math.floor(gz.length * 0.6)));
    const s = await svc.openFile({ path });
    expect(s.notes).toContainEqual(expect.stringMatching(/the gzip stream of .*cut\.pcapng\.gz ends early/));
    expect(s.flows).toBeGreaterThan(0);
    const zst = file('y.pcapng.zst', spawnSync('zstd', ['-c', FIXTURE]).stdout);
    await expect(svc.openFile({ path: zst })).rejects.toMatchObject({ code: 'E_PCAPNG_MALFORMED', message: expect.stringContaining('zstd -d') });
    expect(store.list()).toHaveLength(1);
    expect(existsSync(zst)).toBe(true);
  });
});
