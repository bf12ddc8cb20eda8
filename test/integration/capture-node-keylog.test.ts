// `tapscope capture --node-keylog PATH`: the capture helper follows a key log on the node it captures (here this
// machine, the helper in AF_PACKET mode in a lab namespace) from the file's end, and writes the lines curl appends
// into its stream as decryption secrets blocks, as they come. The capture marks that it follows
// key logs, so every reader of the file keeps those connections' records until their secrets come: `tapscope flows`
// decrypts them from the stream's own blocks alone, and a line from before the capture never leaves the node. At the
// end the CLI also writes the capture's secrets in front, for Wireshark's one pass.
import { describe, it, expect, beforeAll } from 'vitest';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Flow } from '../../src/model/flow.js';
import { parseBuffer, type PcapngBlock } from '../../src/pcapng/index.js';
import { startHttpsServers, type HttpsServers } from '../lib/lab.js';
import { curlLab, tsharkRequestPaths, useTlsLab } from './tls-lab.js';
import { flowsJson, runCli, startCli } from './core-cli.js';

const t = useTlsLab('tsc-nodekl', '10.202.37');
/** a line the key log had before the capture started: for a connection the capture cannot have seen */
const BEFORE = `CLIENT_RANDOM ${'a1'.repeat(32)} ${'b2'.repeat(48)}`;

type Dsb = Extract<PcapngBlock, { type: 'dsb' }>;

let servers: HttpsServers;
let out = '';
let keys = '';
let stderr = '';
let env: NodeJS.ProcessEnv = {};
let blocks: PcapngBlock[] = [];

/** The file without the block at `offset` (the secrets block the CLI wrote in front at the end). */
function without(file: string, offset: number, to: string): string {
  const b = readFileSync(file);
  const len = b.readUInt32LE(offset + 4);
  writeFileSync(to, Buffer.concat([b.subarray(0, offset), b.subarray(offset + len)]));
  return to;
}

beforeAll(async () => {
  servers = await startHttpsServers(t.lab, [443]);
  env = { TAPSCOPE_HOME: join(t.dir, 'home'), TAPSCOPE_LOCAL_NETNS: t.lab.nodeNs };
  keys = join(t.dir, 'node-sslkeys.log');
  writeFileSync(keys, `${BEFORE}\n`);
  out = join(t.dir, 'nodekl.pcapng');
  const cap = startCli(['capture', '--mode', 'afpacket', '--duration', '6', '--node-keylog', keys, '--out', out], env);
  await cap.waitFor(': capturing');
  await curlLab(t, servers, 'one', '/nk/http1', keys);
  await curlLab(t, servers, 'two', '/nk/http2', keys, true);
  await curlLab(t, servers, 'three', '/nk/no-secrets', null);
  // (a comment and a line cut in two writes: the helper forwards whole lines only, comments not at all)
  appendFileSync(keys, '# written by hand\nCLIENT_RANDOM ');
  await new Promise((r) => setTimeout(r, 300));
  appendFileSync(keys, `${'c3'.repeat(32)} ${'d4'.repeat(48)}\n`);
  expect(await cap.exited, cap.stderr()).toBe(0);
  stderr = cap.stderr();
  blocks = parseBuffer(readFileSync(out));
  await servers.stop();
}, 120_000);

describe('capture --node-keylog', () => {
  it('says how many TLS connections the key log on the node decrypted and writes their secrets in front', () => {
    expect(stderr).toContain(`key log: 2 of 3 TLS connections decrypted; the secrets of 2 connections are written into ${out}, which Wireshark decrypts with no key log set`);
    expect(blocks.slice(0, 2).map((b) => b.type)).toEqual(['shb', 'dsb']);
    const capture = blocks.find((b) => b.type === 'custom' && b.json?.t === 'capture');
    expect(capture?.type === 'custom' && capture.json?.keylogs).toEqual([keys]);
  });

  it('carries the lines written during the capture in secrets blocks in its stream, and none from before', () => {
    // (in the stream: after the capture block; not necessarily after the handshake's packets, which the ring may hand
    // over later than the helper reads the line)
    const capture = blocks.findIndex((b) => b.type === 'custom' && b.json?.t === 'capture');
    const streamed = blocks.slice(2).filter((b): b is Dsb => b.type === 'dsb');
    expect(streamed.length).toBeGreaterThan(0);
    for (const d of streamed) expect(d.offset).toBeGreaterThan(blocks[capture]!.offset);
    const text = streamed.map((d) => d.data.toString('utf8')).join('');
    expect(text).not.toContain('a1'.repeat(32));
    expect(text).not.toContain('#');
    expect(text).toContain(`CLIENT_RANDOM ${'c3'.repeat(32)} ${'d4'.repeat(48)}\n`);
    const randoms = new Set(text.trim().split('\n').map((l) => l.split(' ')[1]));
    // (the two curls with the key log, and the hand-written line)
    expect(randoms.size).toBe(3);
    expect(text).toMatch(/^CLIENT_TRAFFIC_SECRET_0 /m);
  });

  it('tshark decrypts the requests with no key log given', async () => {
    expect(await tsharkRequestPaths(out, '/nk/')).toEqual(['/nk/http1', '/nk/http2']);
  });

  it('tapscope flows decrypts the capture from the secrets blocks in its stream alone', async () => {
    const front = blocks[1]!;
    const streamOnly = without(out, front.offset, join(t.dir, 'stream-only.pcapng'));
    expect(parseBuffer(readFileSync(streamOnly)).slice(0, 2).map((b) => b.type)).toEqual(['shb', 'custom']);
    const flows = await flowsJson(streamOnly, env);
    const bySni = (n: string): Flow => flows.find((f) => f.tls?.sni === `${n}.tapscope.test`)!;
    for (const [n, path] of [['one', '/nk/http1'], ['two', '/nk/http2']] as const) {
      expect(bySni(n).http, n).toEqual([{ method: 'GET', host: `${n}.tapscope.test`, path, status: 200 }]);
      expect(bySni(n).tls!.keylog!.status, n).toBe('decrypted');
    }
    expect(bySni('three').http).toEqual([]);
    expect(bySni('three').tls!.keylog!.status).not.toBe('decrypted');
  });

  it('refuses a key log that is not on the node before the capture starts: nothing is captured, no session is made', async () => {
    const before = await runCli(['sessions', '--json'], env);
    const o = join(t.dir, 'never.pcapng');
    const missing = join(t.dir, 'missing.keys');
    const r = await runCli(['capture', '--mode', 'afpacket', '--duration', '2', '--node-keylog', missing, '--out', o], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`no such key log: ${missing}`);
    expect(r.stderr).not.toContain('starting capture');
    expect(existsSync(o)).toBe(false);
    const rel = await runCli(['capture', '--mode', 'afpacket', '--node-keylog', 'keys.log', '--out', o], env);
    expect(rel.code).toBe(2);
    expect(rel.stderr).toContain("--node-keylog takes an absolute path on the node, got 'keys.log'");
    expect((await runCli(['sessions', '--json'], env)).stdout).toBe(before.stdout);
  });
});
