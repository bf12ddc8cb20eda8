// A capture start cancelled while its target starts: by the caller's signal (the CLI's first Ctrl-C), aborted before the
// start or during it, and by stopCapture. The target's start sees the cancel, with the caller's reason; startCapture
// rejects with what the target removed, and the session is gone.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { StartCancelled, abortedPromise, type CaptureTarget } from '../../src/targets/target.js';
import { standInTarget } from '../lib/standin-target.js';

const dir = mkdtempSync(join(tmpdir(), 'tsc-startcancel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A service whose target's start runs until its signal aborts, then rejects as a cleaned-up start does; `reasons`: what each start's signal said. */
function starting(): { svc: CoreService; reasons: unknown[]; entered: Promise<void> } {
  const reasons: unknown[] = [];
  let enter!: () => void;
  const entered = new Promise<void>((r) => (enter = r));
  const target: CaptureTarget = {
    ...standInTarget().target,
    start: async (_opts, _h, signal) => {
      enter();
      await abortedPromise(signal).catch((reason: unknown) => reasons.push(reason));
      throw new StartCancelled('local', 'the helper, before it ran', []);
    },
  };
  const svc = new CoreService({ store: new SessionStore(join(dir, `s-${Math.random()}`)), createTarget: () => target });
  return { svc, reasons, entered };
}

const REQ = { target: 'local', mode: 'afpacket' as const, ifaces: [] };

describe('a capture start cancelled', () => {
  it('by the caller\'s signal during the start: the target sees its reason, the start rejects and its session goes', async () => {
    const { svc, reasons, entered } = starting();
    const ac = new AbortController();
    const start = svc.startCapture(REQ, { signal: ac.signal });
    await entered;
    ac.abort('ctrl-c');
    await expect(start).rejects.toBeInstanceOf(StartCancelled);
    expect(reasons).toEqual(['ctrl-c']);
    expect(await svc.listSessions()).toEqual([]);
    await svc.close();
  });

  it('by a caller\'s signal aborted before the start: the target starts cancelled', async () => {
    const { svc, reasons } = starting();
    await expect(svc.startCapture(REQ, { signal: AbortSignal.abort('gone') })).rejects.toBeInstanceOf(StartCancelled);
    expect(reasons).toEqual(['gone']);
    expect(await svc.listSessions()).toEqual([]);
    await svc.close();
  });

  it('by stopCapture, the caller\'s signal left as it was', async () => {
    const { svc, reasons, entered } = starting();
    const ac = new AbortController();
    const start = svc.startCapture(REQ, { signal: ac.signal });
    start.catch(() => undefined);
    await entered;
    const [session] = (await svc.listSessions()).filter((s) => s.live);
    await expect(svc.stopCapture({ sessionId: session!.id })).rejects.toMatchObject({ code: 'E_SESSION_NOT_FOUND' });
    await expect(start).rejects.toBeInstanceOf(StartCancelled);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatchObject({ name: 'AbortError' });
    expect(ac.signal.aborted).toBe(false);
    await svc.close();
  });
});
