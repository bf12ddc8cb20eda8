// TLS 1.3 early data (0-RTT) with a key log, really: OpenSSL's s_client resumes a session with an HTTP request as early
// data, once to an s_server that takes it and once to one that declines it (a server that cannot read the ticket: another
// process), each writing its secrets, while `tapscope capture` records them in AF_PACKET mode. With the key log the
// request the server took is read from the early data (the same one tshark decrypts) and the declined one is not the
// client's plaintext; with a key log that lacks CLIENT_EARLY_TRAFFIC_SECRET the taken early data is said to be missing,
// and the declined one is still known as declined (from the server's EncryptedExtensions).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Flow } from '../../src/model/flow.js';
import { run } from '../lib/lab.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, flowsJson } from './core-cli.js';

const t = useTlsLab('tsc-early', '10.202.43');
/** the server that takes early data, and the one that declines it (it never issued the ticket) */
const TAKES = 4433;
const DECLINES = 4434;

const servers: ChildProcess[] = [];
let out = '';
let env: NodeJS.ProcessEnv = {};
let keys = '';
const said: Record<number, string> = {};
let flows: Flow[] = [];

/** s_client in the node namespace, its stdin open for a second (time for the server's session ticket); its output. */
async function sClient(port: number, args: string[]): Promise<string> {
  const cmd = `sleep 1 | openssl s_client -connect ${t.lab.serverIp}:${port} -servername early.tapscope.test ${args.join(' ')}`;
  const r = await t.lab.execIn(t.lab.nodeNs, 'sh', ['-c', cmd], { timeoutMs: 20_000 });
  return r.stdout + r.stderr;
}

const byPort = (list: Flow[], port: number): Flow => {
  const f = list.find((x) => x.dst.port === port && x.tls !== null);
  if (!f) throw new Error(`no TLS flow to port ${port} among ${list.map((x) => x.dst.port).join(', ')}`);
  return f;
};

beforeAll(async () => {
  for (const [port, more] of [[TAKES, ['-early_data']], [DECLINES, []]] as const) {
    servers.push(t.lab.spawnIn(t.lab.serverNs, 'openssl', ['s_server', '-accept', String(port), '-cert', t.ca.cert, '-key', t.ca.key, ...more]));
  }
  await new Promise((r) => setTimeout(r, 700));
  const session = join(t.dir, 'session.pem');
  // (a full handshake first: its ticket allows early data)
  expect(await sClient(TAKES, ['-sess_out', session])).toContain('Max Early Data: 16384');
  keys = join(t.dir, 'sslkeys.log');
  for (const [port, path] of [[TAKES, '/early/taken'], [DECLINES, '/early/declined']] as const) {
    writeFileSync(join(t.dir, `${port}.txt`), `GET ${path} HTTP/1.1\r\nHost: early.tapscope.test\r\n\r\n`);
  }
  const cap = await captureLab(t.lab, t.dir, 'early.pcapng', 'afpacket', 6);
  out = cap.out;
  env = cap.env;
  for (const port of [TAKES, DECLINES]) {
    said[port] = await sClient(port, ['-sess_in', session, '-early_data', join(t.dir, `${port}.txt`), '-keylogfile', `${keys}.${port}`]);
  }
  expect(await cap.cap.exited, cap.cap.stderr()).toBe(0);
  writeFileSync(keys, [TAKES, DECLINES].map((p) => readFileSync(`${keys}.${p}`, 'utf8')).join(''));
  flows = await flowsJson(out, env, undefined, ['--keylog', keys]);
}, 90_000);

afterAll(() => {
  for (const s of servers) s.kill();
});

describe('TLS 1.3 early data with a key log (OpenSSL, AF_PACKET capture)', () => {
  it('reads the request the server took as early data, the one tshark decrypts, as the client\'s plaintext', async () => {
    expect(said[TAKES]).toContain('Early data was accepted');
    const f = byPort(flows, TAKES);
    expect(f.tls!.keylog).toEqual({ status: 'decrypted', reason: null, records: 1, earlyData: { status: 'decrypted', records: 1, reason: null } });
    expect(f.http).toEqual([{ method: 'GET', host: 'early.tapscope.test', path: '/early/taken', status: null }]);
    expect(f.tls!.client!.plaintext).toBe(true);
    const r = await run('tshark', ['-r', out, '-d', `tcp.port==${TAKES},tls`, '-o', `tls.keylog_file:${keys}`, '-Y', `http.request && tcp.dstport == ${TAKES}`, '-T', 'fields', '-e', 'http.request.uri']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('/early/taken');
  });

  it('does not take early data the server declined as the client\'s plaintext, and says it was declined', async () => {
    expect(said[DECLINES]).toContain('Early data was rejected');
    const f = byPort(flows, DECLINES);
    expect(f.tls!.keylog!.status).toBe('decrypted');
    expect(f.tls!.keylog!.earlyData).toEqual({ status: 'rejected', records: 1, reason: null });
    expect(f.http).toEqual([]);
    const declined = await flowsJson(out, env, 'tls.early_data == "rejected"', ['--keylog', keys]);
    expect(declined.map((x) => x.dst.port)).toEqual([DECLINES]);
  });

  it('without CLIENT_EARLY_TRAFFIC_SECRET: the taken early data is missing, and says why; the declined one is still known as declined', async () => {
    const partial = join(t.dir, 'no-early.log');
    writeFileSync(partial, readFileSync(keys, 'utf8').split('\n').filter((l) => !l.startsWith('CLIENT_EARLY_TRAFFIC_SECRET')).join('\n'));
    const list = await flowsJson(out, env, undefined, ['--keylog', partial]);
    const taken = byPort(list, TAKES);
    expect(taken.tls!.keylog!.status).toBe('failed');
    expect(taken.tls!.keylog!.reason).toMatch(/^client to server: its early data \(0-RTT, 2 records, which the server took\) was not read: the key log has no CLIENT_EARLY_TRAFFIC_SECRET/);
    expect(taken.tls!.keylog!.earlyData!.status).toBe('not-decrypted');
    expect(taken.http).toEqual([]);
    const declined = byPort(list, DECLINES);
    expect(declined.tls!.keylog!.status).toBe('decrypted');
    expect(declined.tls!.keylog!.earlyData).toEqual({ status: 'rejected', records: 1, reason: null });
  });
});
