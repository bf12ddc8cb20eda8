// `tapscope capture` on a disk that would fill (TAPSCOPE_KEEP_FREE above what the disk has free), with the real helper in
// a private namespace: the capture stops at once instead of running its 30 s, and the command fails with E_DISK_FULL
// saying what it saved (here nothing: a capture opens its file at its first byte written), as tcpdump ends on a full
// disk; the process is not taken down by the failed write.
import { describe, it, expect, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, uniquePrefix, type Lab } from '../lib/lab.js';
import { runCli } from './core-cli.js';

let lab: Lab | null = null;
const dir = mkdtempSync(join(tmpdir(), 'tsd-full-'));
afterAll(async () => {
  await lab?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a capture whose disk would fill', () => {
  it('stops at once and fails with E_DISK_FULL, saying what it saved', async () => {
    lab = await createLab(uniquePrefix('tsf-'), '10.202.59');
    const out = join(dir, 'full.pcapng');
    const t0 = Date.now();
    const r = await runCli(['capture', '--mode', 'afpacket', '--duration', '30', '--out', out],
      { TAPSCOPE_HOME: join(dir, 'home'), TAPSCOPE_LOCAL_NETNS: lab.nodeNs, TAPSCOPE_KEEP_FREE: String(2 ** 60) });
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/stopped writing .*full\.pcapng after 0 bytes: only .* GiB would be left free on the disk of .*TAPSCOPE_KEEP_FREE\); the capture was stopped, and its file holds every packet before that/);
    // (not a byte went to the file: nothing was saved, and no file was made where there was none)
    expect(r.stderr).toMatch(/tapscope: the capture stopped before its end: .*; nothing was saved \(.*full\.pcapng was left as it was\) \(E_DISK_FULL\)\s*$/);
    expect(existsSync(out)).toBe(false);
  });
});
