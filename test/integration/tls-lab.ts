// A lab for a test file whose clients speak TLS to small servers of its own: the namespaces, a test CA with a
// server certificate, and a temporary folder, made before the file's tests and removed after them.
import { afterAll, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, makeTestCa, uniquePrefix, type Lab } from '../lib/lab.js';

export interface TlsLab { lab: Lab; dir: string; ca: Awaited<ReturnType<typeof makeTestCa>> }

/** `name`: the prefix of the folder and namespaces; `subnet`: the lab's /24 (a.b.c). Read the fields in tests. */
export function useTlsLab(name: string, subnet: string): TlsLab {
  const t = {} as TlsLab;
  beforeAll(async () => {
    t.dir = mkdtempSync(join(tmpdir(), `${name}-`));
    t.lab = await createLab(uniquePrefix(`${name}-`), subnet);
    t.ca = await makeTestCa(t.lab.serverIp);
  }, 60_000);
  afterAll(async () => {
    await t.lab?.close();
    if (t.ca) rmSync(t.ca.dir, { recursive: true, force: true });
    if (t.dir) rmSync(t.dir, { recursive: true, force: true });
  });
  return t;
}
