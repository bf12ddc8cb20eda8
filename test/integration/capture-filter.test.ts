// The capture filter (`tapscope capture --capture-filter`, tcpdump syntax), end to end in both modes: the real
// helper in a private namespace, real HTTPS servers on two ports and curl to each, a UDP datagram besides; only the
// filtered port's packets and (eBPF mode) decrypted records are captured, the rest is counted as left out, and the
// session says which filter it ran with. A filter libpcap cannot parse fails the capture with libpcap's words.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, run, startHttpsServers, uniquePrefix, type HttpsServers, type Lab } from '../lib/lab.js';
import { tlsClient } from '../lib/tls-clients.js';
import { readCapture } from '../lib/pcapng-walk.js';
import { HELPER } from '../lib/helper-process.js';
import { runCli, startCli } from './core-cli.js';
import type { Flow } from '../../src/model/flow.js';
import type { SessionSummary } from '../../src/api/contract.js';

let lab: Lab;
let servers: HttpsServers;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsc-capfilter-'));
  lab = await createLab(uniquePrefix('tsc-capf-'), '10.202.11');
  servers = await startHttpsServers(lab, [8443, 9443]);
}, 60_000);

afterAll(async () => {
  await servers?.stop();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const FILTER = 'tcp port 8443';

// (the filter runs in the kernel, which cuts what it leaves out before the copy into the ring, and in userspace,
// which decides and counts; TAPSCOPE_FILTER_USERSPACE leaves the kernel out: the same results either way)
describe.each([['afpacket', 'kernel'], ['ebpf', 'kernel'], ['afpacket', 'userspace']] as const)('capture filter, %s mode, in the %s', (mode, where) => {
  it('captures only what the filter matches, counts the rest, and says so', async () => {
    const env = {
      TAPSCOPE_HOME: join(dir, `home-${mode}-${where}`), TAPSCOPE_LOCAL_NETNS: lab.nodeNs,
      ...(where === 'userspace' ? { TAPSCOPE_FILTER_USERSPACE: '1' } : {}),
    };
    const out = join(dir, `${mode}-${where}.pcapng`);
    const cap = startCli(['capture', '--mode', mode, '--capture-filter', FILTER, '--duration', '6', '--out', out], env);
    await cap.waitFor(': capturing');
    const curl = tlsClient('curl');
    for (const port of [8443, 9443]) {
      const r = await curl.request(lab, `https://curl.tapscope.test:${port}/filtered-${port}`, { ca: servers.ca, sni: 'curl.tapscope.test', serverIp: lab.serverIp });
      expect(r.ok, r.stderr).toBe(true);
      // and over IPv6 (the kernel's copy of the filter reads the IPv6 header where the IPv4 one was)
      const v6 = await lab.execIn(lab.nodeNs, 'curl', ['-sS', '--http1.1', '--cacert', servers.ca, '--resolve', `curl.tapscope.test:${port}:[${lab.serverIp6}]`,
        `https://curl.tapscope.test:${port}/filtered6-${port}`], { timeoutMs: 20_000 });
      expect(v6.code, v6.stderr).toBe(0);
    }
    const udp = await lab.execIn(lab.nodeNs, 'python3', ['-c', `import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x' * 20, ('${lab.serverIp}', 5353))`]);
    expect(udp.code, udp.stderr).toBe(0);
    expect(await cap.exited, cap.stderr()).toBe(0);
    const left = /the capture filter 'tcp port 8443' left out (\d+)/.exec(cap.stderr());
    expect(left, cap.stderr()).not.toBeNull();
    // at least the 9443 connections' packets (a handshake and a request each: more than 8) and the datagram
    expect(Number(left![1])).toBeGreaterThan(16);

    // the packets, as tshark reads them: every TCP packet is port 8443's (IPv4 and IPv6), and none is UDP
    const ts = await run('tshark', ['-r', out, '-T', 'fields', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'udp.dstport', '-Y', 'tcp || udp']);
    expect(ts.code, ts.stderr).toBe(0);
    const rows = ts.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(rows.length).toBeGreaterThan(8);
    for (const [sport, dport, udpPort] of rows) {
      expect(udpPort ?? '').toBe('');
      expect([sport, dport]).toContain('8443');
    }

    // the connection records (process attribution): only the filtered port's connections
    const records = readCapture(out).records;
    const conns = records.filter((r) => r.t === 'conn') as unknown as Array<{ local: { port: number }; remote: { port: number } }>;
    expect(conns.length, 'conn records').toBeGreaterThan(0);
    for (const c of conns) expect([c.local.port, c.remote.port], JSON.stringify(c)).toContain(8443);
    // where the filter ran, as the helper's final statistics say
    const stats = records.filter((r) => r.t === 'stats' && (r as { final?: boolean }).final) as unknown as Array<{ filterIn?: string; filterCuts?: number; snaplenCuts: number }>;
    expect(stats.map((r) => r.filterIn)).toEqual([where]);
    // in the kernel, the 9443 connection's longer packets (its hellos, certificate, request) were cut to their headers
    // before the copy; and no packet the filter matched was cut (the kernel's program and userspace's agree)
    if (where === 'kernel') expect(stats[0]!.filterCuts).toBeGreaterThan(4);
    else expect(stats[0]!.filterCuts).toBe(0);
    expect(stats[0]!.snaplenCuts).toBe(0);

    // the flows: port 8443's curl connection, with its plaintext in eBPF mode; nothing of 9443 or the datagram
    const flows = await runCli(['flows', out, '--json'], env);
    expect(flows.code, flows.stderr).toBe(0);
    const list = flows.stdout.trim().split('\n').map((l) => JSON.parse(l) as Flow);
    expect(list.map((f) => `${f.transport}/${f.dst.ip === lab.serverIp6 ? 'v6' : 'v4'}/${f.dst.port}`)).toEqual(['tcp/v4/8443', 'tcp/v6/8443']);
    for (const [i, flow] of list.entries()) {
      expect(flow.tls?.sni).toBe('curl.tapscope.test');
      if (mode === 'ebpf') {
        expect(flow.tls?.client?.plaintext).toBe(true);
        expect(flow.http.map((h) => h.path)).toEqual([i === 0 ? '/filtered-8443' : '/filtered6-8443']);
      }
    }

    // the session knows the filter it ran with
    const sessions = await runCli(['sessions', '--json'], env);
    const s = sessions.stdout.trim().split('\n').map((l) => JSON.parse(l) as SessionSummary).find((x) => x.file === out);
    expect(s?.captureFilter).toBe(FILTER);
    expect(s?.filtered).toBe(Number(left![1]));
  }, 90_000);
});

describe('a capture filter libpcap cannot parse', () => {
  it('fails the capture with libpcap\'s message, before anything starts', async () => {
    const env = { TAPSCOPE_HOME: join(dir, 'home-bad'), TAPSCOPE_LOCAL_NETNS: lab.nodeNs };
    const r = await runCli(['capture', '--mode', 'afpacket', '--capture-filter', 'tcp port', '--duration', '2', '--out', join(dir, 'bad.pcapng')], env);
    expect(r.code, r.stderr).toBe(2); // E_USAGE
    // (this machine's helper checks it before anything starts)
    expect(r.stderr).toContain("capture filter 'tcp port': can't parse filter expression: syntax error (E_USAGE)");
    expect(r.stderr).not.toContain('starting capture');
    // where it is not checked before, each node's helper refuses it with libpcap's words
    const node = await run('ip', ['netns', 'exec', lab.nodeNs, HELPER, '--mode', 'afpacket', '--filter', 'tcp port', '--duration', '1']);
    expect(node.code).toBe(1);
    expect(node.stderr.trim()).toBe("tapscope-helper: bad --filter 'tcp port': can't parse filter expression: syntax error");
  }, 60_000);
});
