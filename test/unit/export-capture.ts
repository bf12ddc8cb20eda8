// Shared by the export redaction tests: a built capture written to disk, opened as a session and exported
// as pcapng twice — redacted (the default) and with --include-secrets — so each test compares the two.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SessionStore } from '../../src/store/session-store.js';
import { CoreService } from '../../src/service/core-service.js';
import type { CaptureBuilder } from './core-packet-builder.js';

export async function exportBothWays(b: CaptureBuilder, dir: string, name: string): Promise<{ redacted: string; all: string }> {
  const file = join(dir, `${name}.pcapng`);
  writeFileSync(file, b.build());
  const svc = new CoreService({ store: new SessionStore(join(dir, `${name}-store`)) });
  const { id } = await svc.openFile({ path: file });
  const redacted = join(dir, `${name}-red.pcapng`);
  const all = join(dir, `${name}-all.pcapng`);
  await svc.exportSession({ sessionId: id, format: 'pcapng', path: redacted });
  await svc.exportSession({ sessionId: id, format: 'pcapng', path: all, includeSecrets: true });
  return { redacted, all };
}
