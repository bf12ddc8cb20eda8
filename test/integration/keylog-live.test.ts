// A key log added to a live capture is followed as clients write it: curl, run with SSLKEYLOGFILE while the capture
// runs (AF_PACKET mode, so no hooks: packets only), writes each connection's secrets after its handshake, and the live
// flows show its requests, decrypted, before the capture stops. A connection whose hello came before the key log was
// added is not decrypted live but is once the capture stops (the session is analyzed again with its keys.log); one
// whose client wrote no secrets says so. A key log that is no key log is refused; a line that goes bad later is a note.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, startHttpsServers, uniquePrefix, type HttpsServers, type Lab } from '../lib/lab.js';
import { until } from '../lib/until.js';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { isTapscopeError } from '../../src/errors.js';
import type { Flow } from '../../src/model/flow.js';

let dir = '';
let lab: Lab;
let servers: HttpsServers;
let service: CoreService;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsc-keylog-live-'));
  lab = await createLab(uniquePrefix('tsc-kll-'), '10.202.33');
  servers = await startHttpsServers(lab, [443]);
  service = new CoreService({ store: new SessionStore(join(dir, 'sessions')), targetOptions: { netns: lab.nodeNs }, countersIntervalMs: 250 });
}, 60_000);

afterAll(async () => {
  await service?.close();
  await servers?.stop();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** curl in the node's namespace to `name`.tapscope.test, writing its secrets to `keys` (none without). */
async function curl(name: string, path: string, keys: string | null, http2 = false): Promise<void> {
  const env = { ...process.env };
  delete env.SSLKEYLOGFILE;
  if (keys) env.SSLKEYLOGFILE = keys;
  const r = await lab.execIn(lab.nodeNs, 'curl', ['-sS', http2 ? '--http2' : '--http1.1', '--cacert', servers.ca, '--resolve', `${name}.tapscope.test:443:${lab.serverIp}`,
    `https://${name}.tapscope.test${path}`], { timeoutMs: 30_000, env });
  expect(r.stdout, r.stderr).toContain('hello from tapscope lab');
}

async function flowsOf(sessionId: string): Promise<Flow[]> {
  return (await service.queryFlows({ sessionId, offset: 0, limit: 1000 })).rows;
}
const bySni = (flows: Flow[], name: string): Flow | undefined => flows.find((f) => f.tls?.sni === `${name}.tapscope.test`);

describe('a key log added to a live capture', () => {
  it('is followed as curl writes it: later connections are decrypted live, the earlier one once the capture stops', async () => {
    const keys = join(dir, 'sslkeys.log');
    const s = await service.startCapture({ target: 'local', mode: 'afpacket', ifaces: ['any'], name: 'keylog-live' });
    await until('the helper streaming', () => service.liveStatus(s.id).some((n) => n.phase === 'streaming'), 100);
    // (a connection whose hello comes before the key log is added)
    await curl('early', '/kl/early', keys);
    // (its hello read by the live analysis before the key log comes: its packets may still be on their way from the helper)
    await until('the early connection\'s hello read', async () => bySni(await flowsOf(s.id), 'early') !== undefined, 200);
    const added = await service.addKeyLog({ sessionId: s.id, path: keys });
    expect(added.secrets).toBe(1);
    expect(added.session.live).toBe(true);
    await curl('late', '/kl/late', keys);
    await curl('late2', '/kl/late-h2', keys, true);
    await curl('nokeys', '/kl/nokeys', null);
    let live: Flow[] = [];
    await until('the later connections decrypted live', async () => {
      live = await flowsOf(s.id);
      return ['late', 'late2'].every((n) => bySni(live, n)?.http.some((h) => h.status === 200));
    }, 200).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(live.map((f) => [f.tls?.sni, f.http, f.tls?.keylog]))}`);
    });
    for (const [name, path] of [['late', '/kl/late'], ['late2', '/kl/late-h2']] as const) {
      const f = bySni(live, name)!;
      expect(f.http, name).toEqual([{ method: 'GET', host: `${name}.tapscope.test`, path, status: 200 }]);
      expect(f.tls!.keylog!.status, name).toBe('decrypted');
      expect([f.tls!.client!.plaintext, f.tls!.server!.plaintext], name).toEqual([true, true]);
    }
    expect(bySni(live, 'early')!.tls!.keylog).toMatchObject({ status: 'no-secrets', reason: expect.stringMatching(/^its hello came before the key log did/) });
    expect(bySni(live, 'early')!.http).toEqual([]);
    expect(bySni(live, 'nokeys')!.tls!.keylog!.reason).toMatch(/^waiting for its secrets in the followed key log/);
    // (a line that goes bad while followed: a note, and the lines after it are still read)
    appendFileSync(keys, 'CLIENT_RANDOM nothex\n');
    await curl('after-bad', '/kl/after-bad', keys);
    await until('the connection after the bad line decrypted', async () => bySni(await flowsOf(s.id), 'after-bad')?.http[0]?.status === 200, 200);

    const saved = await service.stopCapture({ sessionId: s.id });
    expect(saved.notes.some((n) => /line \d+ is not a key log line/.test(n)), saved.notes.join('\n')).toBe(true);
    // (no captured byte is missing: the session is not marked incomplete for it)
    expect(saved.losses.some((n) => /key log/.test(n)), saved.losses.join('\n')).toBe(false);
    // the session keeps the lines it read (its owner's only), and is analyzed again with them
    const own = join(dir, 'sessions', s.id, 'keys.log');
    expect(statSync(own).mode & 0o777).toBe(0o600);
    expect(readFileSync(own, 'utf8')).not.toContain('nothex');
    const after = await flowsOf(s.id);
    for (const [name, path] of [['early', '/kl/early'], ['late', '/kl/late'], ['late2', '/kl/late-h2'], ['after-bad', '/kl/after-bad']] as const) {
      expect(bySni(after, name)!.http, name).toEqual([{ method: 'GET', host: `${name}.tapscope.test`, path, status: 200 }]);
    }
    expect(bySni(after, 'nokeys')!.tls!.keylog).toMatchObject({ status: 'no-secrets', reason: expect.stringMatching(/^the key log has no secrets for its client random/) });
  }, 120_000);

  it('refuses a file that is missing or no key log, and takes an empty one (the clients have not written yet)', async () => {
    const s = await service.startCapture({ target: 'local', mode: 'afpacket', ifaces: ['any'], name: 'keylog-live-bad' });
    try {
      const bad = join(dir, 'bad.log');
      writeFileSync(bad, 'CLIENT_RANDOM 00 11\n');
      for (const [path, code] of [[join(dir, 'missing.log'), 'E_FILE_NOT_FOUND'], [bad, 'E_KEYLOG']] as const) {
        const e = await service.addKeyLog({ sessionId: s.id, path }).catch((x: unknown) => x);
        expect(isTapscopeError(e, code), String(e)).toBe(true);
      }
      expect((await service.addKeyLog({ sessionId: s.id, path: bad }).catch((x: Error) => x.message))).toMatch(/bad\.log: line 1 is not a key log line/);
      const empty = join(dir, 'empty.log');
      writeFileSync(empty, '');
      expect((await service.addKeyLog({ sessionId: s.id, path: empty })).secrets).toBe(0);
    } finally {
      await service.stopCapture({ sessionId: s.id });
    }
  }, 60_000);
});
