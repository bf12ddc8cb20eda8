// A real CoreService over a throwaway session store with one synthetic session opened from a pcapng,
// for the server, carrier and renderer-state tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SessionSummary } from '../../src/api/contract.js';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { benchCapture } from './synthetic-capture.js';

export interface CoreSession {
  service: CoreService;
  session: SessionSummary;
  close(): Promise<void>;
}

export async function openSyntheticSession(flows: number): Promise<CoreSession> {
  const home = mkdtempSync(join(tmpdir(), 'tsu-core-'));
  const service = new CoreService({ store: new SessionStore(join(home, 'sessions')) });
  const session = await service.openFile({ path: await benchCapture(flows) });
  return {
    service,
    session,
    async close() {
      await service.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
