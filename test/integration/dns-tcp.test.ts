// DNS over TCP on the wire, end to end: dnsmasq answers in a private namespace, `dig +tcp +keepopen` asks three
// questions over one connection (an address, an IPv6 address, a name that does not exist) and one for a TXT record
// longer than a segment; `tapscope capture` records it with the real helper in eBPF mode. Each connection is a flow of
// dig's with every query and its answer, as tshark reads the same packets.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createLab, run, uniquePrefix, type Lab } from '../lib/lab.js';
import { watchOutput } from '../lib/child-output.js';
import { runCli, startCli } from './core-cli.js';
import type { Flow } from '../../src/model/flow.js';

let lab: Lab;
let dir: string;
let dnsmasq: ChildProcess | null = null;
let capture: string;
let env: NodeJS.ProcessEnv;
const digs: string[] = [];
const TXT = Array.from({ length: 8 }, (_, i) => String.fromCharCode(0x61 + i).repeat(200)).join('');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsd-dns-'));
  lab = await createLab(uniquePrefix('tsd-'), '10.202.57');
  dnsmasq = lab.spawnIn(lab.serverNs, 'dnsmasq', ['--keep-in-foreground', '--no-resolv', '--no-hosts', '--log-queries', '--log-facility=-',
    `--listen-address=${lab.serverIp}`, '--bind-interfaces', '--port=53', '--local=/tapscope.test/',
    '--host-record=a.tapscope.test,192.0.2.11,2001:db8::11', `--txt-record=big.tapscope.test,${TXT}`]);
  await watchOutput(dnsmasq, ['stdout', 'stderr'], 'dnsmasq').waitFor('started', 15_000);
  env = { TAPSCOPE_HOME: join(dir, 'home'), TAPSCOPE_LOCAL_NETNS: lab.nodeNs };
  capture = join(dir, 'capture.pcapng');
  // why eBPF mode: its connect tracepoint names dig at once, where afpacket mode's /proc look-up races a dig that
  // exits a few milliseconds after its SYN (best effort there: helper-attribution measures its rate)
  const cap = startCli(['capture', '--out', capture, '--mode', 'ebpf'], env, { detached: true });
  await cap.waitFor(': capturing');
  for (const args of [['+keepopen', 'a.tapscope.test', 'A', 'a.tapscope.test', 'AAAA', 'nope.tapscope.test', 'A'], ['big.tapscope.test', 'TXT']]) {
    const r = await lab.execIn(lab.nodeNs, 'dig', ['+tcp', '+tries=1', '+time=5', `@${lab.serverIp}`, ...args]);
    expect(r.code, r.stderr).toBe(0);
    digs.push(r.stdout);
  }
  // (the helper's last packets and its process scan)
  await new Promise((r) => setTimeout(r, 700));
  process.kill(-cap.child.pid!, 'SIGINT');
  expect(await cap.exited, cap.stderr()).toBe(0);
}, 120_000);

afterAll(async () => {
  dnsmasq?.kill('SIGTERM');
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function dnsFlows(): Promise<Flow[]> {
  const r = await runCli(['flows', capture, '--json', '--filter', 'tcp.port == 53'], env);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Flow);
}

describe('DNS over TCP, captured', () => {
  it('dig got its answers over TCP (the test asks what it means to)', () => {
    expect(digs[0]).toMatch(/a\.tapscope\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.11/);
    expect(digs[0]).toMatch(/a\.tapscope\.test\.\s+\d+\s+IN\s+AAAA\s+2001:db8::11/);
    expect(digs[0]).toMatch(/status: NXDOMAIN/);
    expect(digs[1]).toContain('hhhh');
    for (const d of digs) expect(d).toMatch(/\(TCP\)/);
  });

  it("each connection is dig's DNS flow with every query and its answer", async () => {
    const flows = await dnsFlows();
    expect(flows).toHaveLength(2);
    for (const f of flows) {
      expect(f.app).toBe('dns');
      expect(f.process?.comm).toBe('dig');
    }
    const [three, big] = [...flows].sort((a, b) => b.dns!.length - a.dns!.length);
    expect(three!.dns!.map((e) => [e.query, e.type, e.rcode, e.answers])).toEqual([
      ['a.tapscope.test', 'A', 'NOERROR', ['A 192.0.2.11']],
      ['a.tapscope.test', 'AAAA', 'NOERROR', ['AAAA 2001:db8::11']],
      ['nope.tapscope.test', 'A', 'NXDOMAIN', []],
    ]);
    expect(big!.dns).toHaveLength(1);
    expect(big!.dns![0]).toMatchObject({ query: 'big.tapscope.test', type: 'TXT', rcode: 'NOERROR' });
    expect(big!.dns![0]!.answers.join('').replace(/[^a-h]/g, '')).toBe(TXT.replace(/[^a-h]/g, ''));
  });

  it('as tshark reads the same packets', async () => {
    const r = await run('tshark', ['-r', capture, '-Y', 'dns && tcp', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', '-e', 'dns.qry.name', '-e', 'dns.flags.response', '-e', 'dns.flags.rcode']);
    expect(r.code, r.stderr).toBe(0);
    // (one row per frame; a frame's messages joined by commas)
    const messages = r.stdout.trim().split('\n').flatMap((l) => {
      const [names, responses, rcodes] = l.split('\t').map((x) => (x ?? '').split(','));
      return names!.map((n, i) => ({ name: n, response: responses![i] === '1' || responses![i] === 'True', rcode: Number(rcodes![i] ?? 0) }));
    });
    const ours = (await dnsFlows()).flatMap((f) => f.dns!);
    expect(messages.filter((m) => !m.response).map((m) => m.name).sort()).toEqual(ours.map((e) => e.query).sort());
    const rcodeName = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN'];
    expect(messages.filter((m) => m.response).map((m) => `${m.name} ${rcodeName[m.rcode]}`).sort()).toEqual(ours.map((e) => `${e.query} ${e.rcode}`).sort());
  });
});
