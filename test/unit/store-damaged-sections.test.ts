// A capture file holds one pcapng section per node stream (the session's finish appends the other nodes' files to the
// first's) and one per resumed stream. A stream that turned malformed must cost only its own section: reading the file
// goes on at the next section, and the damage note says where, as the live capture did. One that stopped inside a block
// costs only that block, which is never saved.
// The real CoreService and SessionStore; the target is the stand-in whose node streams the test writes.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { analyzeFiles, damageNote } from '../../src/flows/load.js';
import { standInTarget } from '../lib/standin-target.js';
import { CaptureBuilder } from './core-packet-builder.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tsc-sections-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A node's stream: `n` UDP packets, each to its own port (a flow each) from the node's own address. */
function stream(host: number, n: number): Buffer {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: `node-${host}` });
  for (let i = 0; i < n; i++) b.udp({ src: `10.61.0.${host}`, dst: '10.61.1.1', sport: 5000, dport: 7000 + i, payload: Buffer.alloc(64, i) });
  return b.build();
}

async function capture(write: (t: ReturnType<typeof standInTarget>) => Promise<void>) {
  const t = standInTarget();
  const svc = new CoreService({ store: new SessionStore(join(dir, 'sessions')), createTarget: () => t.target });
  const s = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [] });
  await write(t);
  t.finish();
  const end = await svc.waitForCapture(s.id);
  const loaded = await analyzeFiles([{ path: end.file! }]);
  await svc.close();
  return { end, loaded };
}

const flowsFrom = (l: Awaited<ReturnType<typeof analyzeFiles>>, host: number): number => l.analyzer.flows().filter((f) => f.src.ip === `10.61.0.${host}` || f.dst.ip === `10.61.0.${host}`).length;
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('a capture file whose first section is damaged', () => {
  it('a malformed stream on the first node: the other node\'s section is read, and the note says where reading went on', async () => {
    const { end, loaded } = await capture(async (t) => {
      const a = new PassThrough();
      const b = new PassThrough();
      t.handlers().onStream('node-a', a);
      t.handlers().onStream('node-b', b);
      a.write(stream(1, 30));
      await tick();
      a.end(Buffer.alloc(500, 0x5a));
      b.end(stream(2, 20));
      await tick();
    });
    expect(end.damaged).toHaveLength(1);
    const live = end.damaged[0]!;
    expect(live.resumedAt).toBeGreaterThan(live.offset);
    // the file read later: the same damage, the same place it went on, and node-b's flows too
    expect(loaded.damaged).toEqual([live]);
    expect(damageNote(live)).toMatch(new RegExp(`the ${live.resumedAt! - live.offset} bytes from there to the section that begins at offset ${live.resumedAt} were skipped, and reading went on there$`));
    expect([flowsFrom(loaded, 1), flowsFrom(loaded, 2)]).toEqual([30, 20]);
  });

  it('a stream cut inside a block and resumed: the torn block is not saved, so the file reads without damage, the first stream\'s packets before the cut and the resumed stream', async () => {
    const first = stream(1, 30);
    const { end, loaded } = await capture(async (t) => {
      const a1 = new PassThrough();
      t.handlers().onStream('node-a', a1);
      // (the last packet's block is cut in its middle, as a helper killed while it wrote it leaves it)
      a1.end(first.subarray(0, first.length - 40));
      await tick();
      const a2 = new PassThrough();
      t.handlers().onStream('node-a', a2);
      a2.end(stream(3, 10));
      await tick();
    });
    // (the resumed stream's section begins where the first stream's last whole block ends)
    expect(end.damaged).toEqual([]);
    expect(loaded.damaged).toEqual([]);
    expect(loaded.notes).toEqual([]);
    expect([flowsFrom(loaded, 1), flowsFrom(loaded, 3)]).toEqual([29, 10]);
  });
});
