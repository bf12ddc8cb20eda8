// The parts a resumed stream relies on (Kubernetes exec and SSH): whole pcapng blocks only, so a stream cut
// mid-block and followed by a new section still makes a file tshark reads cleanly; and the capped,
// bounded, stoppable backoff.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompleteBlocks } from '../../src/targets/deploy.js';
import { retryWithBackoff } from '../../src/targets/retry.js';
import { encodeEpb, encodeIdb, encodeShb, tsFromMs } from '../../src/pcapng/writer.js';

/** A section as the helper writes it: SHB, one Ethernet interface, `n` packets. Returns the blocks. */
function section(n: number, t0: number): Buffer[] {
  const frame = (i: number) => Buffer.concat([Buffer.alloc(12, 0xff), Buffer.from([0x88, 0xb5]), Buffer.alloc(46 + i, i)]);
  return [encodeShb({ userappl: 'test' }), encodeIdb({ linkType: 1, snapLen: 65535 }),
    ...Array.from({ length: n }, (_, i) => encodeEpb({ interfaceId: 0, ...tsFromMs(t0 + i), data: frame(i) }))];
}

/** Feeds `bytes` in small chunks through a fresh CompleteBlocks and returns what came out. */
async function throughBlocks(bytes: Buffer, chunk = 7): Promise<Buffer> {
  const t = new CompleteBlocks();
  const out: Buffer[] = [];
  t.on('data', (d: Buffer) => out.push(d));
  const ended = new Promise((r) => t.on('end', r));
  for (let i = 0; i < bytes.length; i += chunk) t.write(bytes.subarray(i, i + chunk));
  t.end();
  await ended;
  return Buffer.concat(out);
}

function tshark(bytes: Buffer): { status: number | null; warnings: string[]; packets: number } {
  const dir = mkdtempSync(join(tmpdir(), 'tsk-blocks-'));
  try {
    const f = join(dir, 'cut.pcapng');
    writeFileSync(f, bytes);
    const r = spawnSync('tshark', ['-r', f, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
    return { status: r.status, warnings: r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Running as user')), packets: r.stdout.split('\n').filter(Boolean).length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('CompleteBlocks', () => {
  const first = section(5, 1_700_000_000_000);
  const second = Buffer.concat(section(3, 1_700_000_010_000));
  const whole = Buffer.concat(first);
  const ends = first.map((_, i) => Buffer.concat(first.slice(0, i + 1)).length);

  it('drops only the block a cut tore, so a resumed section after it reads cleanly', async () => {
    // Cuts inside the SHB, inside packets, and on a block boundary.
    for (const cut of [10, ends[2] as number + 5, ends[3] as number + 30, ends[4] as number - 1, ends[3] as number]) {
      const kept = await throughBlocks(whole.subarray(0, cut));
      const complete = ends.filter((e) => e <= cut).at(-1) ?? 0;
      expect(kept.equals(whole.subarray(0, complete)), `cut at ${cut}`).toBe(true);
      const r = tshark(Buffer.concat([kept, await throughBlocks(second)]));
      expect([r.status, r.warnings], `cut at ${cut}`).toEqual([0, []]);
      // Packets of the first section before the cut (blocks after SHB and IDB), then all of the second.
      expect(r.packets).toBe(Math.max(0, ends.filter((e) => e <= cut).length - 2) + 3);
    }
  });

  it('is what keeps such a file valid: the torn block left in makes tshark fail', () => {
    const r = tshark(Buffer.concat([whole.subarray(0, (ends[3] as number) + 30), second]));
    expect(r.status !== 0 || r.warnings.length > 0).toBe(true);
  });

  it('passes bytes that are not pcapng on unchanged', async () => {
    const text = Buffer.from('tapscope-helper: cannot open the capture socket: Operation not permitted\n');
    expect((await throughBlocks(text, 5)).equals(text)).toBe(true);
  });
});

describe('retryWithBackoff', () => {
  it('doubles the delay up to the cap and gives up when the time budget is spent', async () => {
    const waits: number[] = [];
    let tries = 0;
    const r = await retryWithBackoff(async () => {
      tries++;
      throw new Error(`refused ${tries}`);
    }, { backoff: { first: 5, max: 20, giveUpMs: 150 }, signal: new AbortController().signal, onWait: (ms) => waits.push(ms) });
    expect(r).toMatchObject({ outcome: 'failed', gaveUp: true, error: new Error(`refused ${tries}`) });
    expect(waits.slice(0, 4)).toEqual([5, 10, 20, 20]);
    expect(tries).toBe(waits.length);
  });

  it('returns the value once a try succeeds, and stops at once on a fatal error', async () => {
    let tries = 0;
    const ok = await retryWithBackoff(async () => {
      if (++tries < 3) throw new Error('not yet');
      return 'resumed';
    }, { backoff: { first: 1, max: 2 }, signal: new AbortController().signal });
    expect([ok, tries]).toEqual([{ outcome: 'done', value: 'resumed' }, 3]);
    const fatal = await retryWithBackoff(async () => {
      throw new Error('auth');
    }, { backoff: { first: 1, max: 2 }, signal: new AbortController().signal, fatal: () => true });
    expect(fatal).toMatchObject({ outcome: 'failed', gaveUp: false });
  });

  it('ends a wait as soon as it is stopped', async () => {
    const stop = new AbortController();
    let tries = 0;
    // A wait far longer than the test's timeout: only the abort can end it.
    const r = retryWithBackoff(async () => ++tries, { backoff: { first: 3_600_000, max: 3_600_000 }, signal: stop.signal, onWait: () => setTimeout(() => stop.abort(), 20) });
    expect(await r).toEqual({ outcome: 'stopped' });
    expect(tries).toBe(0);
  });
});
