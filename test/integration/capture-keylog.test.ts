// `tapscope capture --keylog`: the key log is followed while the capture runs (curl writes it as it connects, the
// capture in AF_PACKET mode has packets only), and when the capture stops the secrets of its connections are written
// into its file. tshark then decrypts the requests with no key log given, and so does `tapscope flows`; the block holds
// only this capture's connections' lines (not a line the key log had for another one); a connection without secrets
// says so. A key log that cannot be followed stops nothing from being lost: the capture does not start.
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Flow } from '../../src/model/flow.js';
import { parseBuffer, type PcapngBlock } from '../../src/pcapng/index.js';
import { startHttpsServers, type HttpsServers } from '../lib/lab.js';
import { curlLab, tsharkRequestPaths, useTlsLab } from './tls-lab.js';
import { flowsJson, runCli, startCli } from './core-cli.js';

const t = useTlsLab('tsc-capkl', '10.202.35');
/** a connection the key log has secrets for that this capture never saw */
const OTHER = `CLIENT_RANDOM ${'5a'.repeat(32)} ${'c3'.repeat(48)}`;

let servers: HttpsServers;
let out = '';
let keys = '';
let stderr = '';
let env: NodeJS.ProcessEnv = {};

beforeAll(async () => {
  servers = await startHttpsServers(t.lab, [443]);
  env = { TAPSCOPE_HOME: join(t.dir, 'home'), TAPSCOPE_LOCAL_NETNS: t.lab.nodeNs };
  keys = join(t.dir, 'sslkeys.log');
  writeFileSync(keys, `# gathered over the day\n${OTHER}\n`);
  out = join(t.dir, 'kl.pcapng');
  const cap = startCli(['capture', '--mode', 'afpacket', '--duration', '6', '--keylog', keys, '--out', out], env);
  await cap.waitFor(': capturing');
  await cap.waitFor('following the key log');
  await curlLab(t, servers, 'one', '/ck/http1', keys);
  await curlLab(t, servers, 'two', '/ck/http2', keys, true);
  await curlLab(t, servers, 'three', '/ck/no-secrets', null);
  expect(await cap.exited, cap.stderr()).toBe(0);
  stderr = cap.stderr();
  await servers.stop();
}, 120_000);

describe('capture --keylog', () => {
  it('says how many TLS connections the followed key log decrypted and that their secrets are in the capture', () => {
    expect(stderr).toContain(`following the key log ${keys} (secrets of 1 connection so far)`);
    expect(stderr).toContain(`key log: 2 of 3 TLS connections decrypted; the secrets of 2 connections are written into ${out}, which Wireshark decrypts with no key log set`);
  });

  it('writes a secrets block of this capture\'s connections only, right after the section header', () => {
    const blocks = parseBuffer(readFileSync(out));
    expect(blocks.slice(0, 2).map((b) => b.type)).toEqual(['shb', 'dsb']);
    expect(blocks.filter((b) => b.type === 'dsb')).toHaveLength(1);
    const text = (blocks[1] as Extract<PcapngBlock, { type: 'dsb' }>).data.toString('utf8');
    expect(text).not.toContain(OTHER.split(' ')[1]);
    const randoms = new Set(text.trim().split('\n').map((l) => l.split(' ')[1]));
    expect(randoms.size).toBe(2);
    expect(text).toMatch(/^CLIENT_TRAFFIC_SECRET_0 /m);
    expect(text).toMatch(/^SERVER_TRAFFIC_SECRET_0 /m);
  });

  it('tshark decrypts the requests with no key log given', async () => {
    expect(await tsharkRequestPaths(out, '/ck/')).toEqual(['/ck/http1', '/ck/http2']);
  });

  it('tapscope flows decrypts the file by itself; the connection without secrets says the key log has none', async () => {
    const flows = await flowsJson(out, env);
    const bySni = (n: string): Flow => flows.find((f) => f.tls?.sni === `${n}.tapscope.test`)!;
    for (const [n, path] of [['one', '/ck/http1'], ['two', '/ck/http2']] as const) {
      expect(bySni(n).http, n).toEqual([{ method: 'GET', host: `${n}.tapscope.test`, path, status: 200 }]);
      expect(bySni(n).tls!.keylog!.status, n).toBe('decrypted');
    }
    expect(bySni('three').http).toEqual([]);
    expect(bySni('three').tls!.keylog!.status).toBe('no-secrets');
  });

  it('refuses a key log it cannot follow before the capture starts: nothing is captured, no session is made', async () => {
    const before = await runCli(['sessions', '--json'], env);
    const bad = join(t.dir, 'bad.keys');
    writeFileSync(bad, 'CLIENT_RANDOM 00 11\n');
    for (const [file, says] of [[join(t.dir, 'missing.keys'), 'E_FILE_NOT_FOUND'], [bad, 'line 1 is not a key log line']] as const) {
      const o = join(t.dir, 'never.pcapng');
      const r = await runCli(['capture', '--mode', 'afpacket', '--duration', '2', '--keylog', file, '--out', o], env);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(says);
      expect(r.stderr).not.toContain('starting capture');
      expect(existsSync(o)).toBe(false);
    }
    expect((await runCli(['sessions', '--json'], env)).stdout).toBe(before.stdout);
  });
});
