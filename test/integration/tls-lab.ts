// A lab for a test file whose clients speak TLS to small servers of its own: the namespaces, a test CA with a
// server certificate, and a temporary folder, made before the file's tests and removed after them.
import { afterAll, beforeAll, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, makeTestCa, run, uniquePrefix, type HttpsServers, type Lab } from '../lib/lab.js';

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

/** This process's environment for a client that writes its secrets into `keylog` (SSLKEYLOGFILE), or none inherited. */
export function keyLogEnv(keylog: string | null): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e.SSLKEYLOGFILE;
  if (keylog) e.SSLKEYLOGFILE = keylog;
  return e;
}

/**
 * curl in the lab's node namespace: GET https://NAME.tapscope.test/PATH from the server's port 443 (HTTP/1.1, or
 * HTTP/2), writing its secrets into `keylog` when given (SSLKEYLOGFILE; none inherited otherwise); checks the answer.
 */
export async function curlLab(t: TlsLab, servers: HttpsServers, name: string, path: string, keylog: string | null, http2 = false): Promise<void> {
  const e = keyLogEnv(keylog);
  const r = await t.lab.execIn(t.lab.nodeNs, 'curl', ['-sS', http2 ? '--http2' : '--http1.1', '--cacert', servers.ca, '--resolve', `${name}.tapscope.test:443:${t.lab.serverIp}`,
    `https://${name}.tapscope.test${path}`], { timeoutMs: 30_000, env: e });
  expect(r.stdout, r.stderr).toContain(`hello from tapscope lab: GET ${path}`);
}

/** The request paths starting with `prefix` that tshark reads from `file` (HTTP/1 and HTTP/2), given no key log. */
export async function tsharkRequestPaths(file: string, prefix: string): Promise<string[]> {
  const r = await run('tshark', ['-r', file, '-Y', 'http.request || http2.headers.path', '-T', 'fields', '-e', 'http.request.uri', '-e', 'http2.headers.path']);
  expect(r.code, r.stderr).toBe(0);
  return [...new Set(r.stdout.split(/[\n\t,]/).map((s) => s.trim()).filter((s) => s.startsWith(prefix)))].sort();
}
