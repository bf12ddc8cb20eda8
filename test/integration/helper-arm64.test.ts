// The aarch64 helper run on this x86-64 machine by qemu-user through binfmt_misc (scripts/install-deps.sh
// registers it): emulated, on a kernel of another architecture, so it must not use eBPF (its uprobe programs
// would read x86-64 registers as arm64 ones, and the kernel would write an x86 breakpoint into aarch64 code); it
// sees that in the kernel's BTF and captures with AF_PACKET, saying why. qemu-user has AF_PACKET but not its mmap
// ring, so this also runs the helper's ring-less path (recvmsg per packet). It captures beside the x86-64 helper
// in afpacket mode: the same flows, and verdicts that say why no plaintext was captured. Its eBPF mode runs on a
// real aarch64 kernel in arm64-ebpf.test.ts.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, run, startHttpsServers, uniquePrefix, type Lab, type HttpsServers } from '../lib/lab.js';
import { TLS_CLIENTS, type TlsClient } from '../lib/tls-clients.js';
import { HELPER_ARM64, startHelper } from '../lib/helper-process.js';
import { readCapture, type Capture } from '../lib/pcapng-walk.js';
import { analyzeFiles } from '../../src/flows/load.js';

const PORT = 443;
let lab: Lab;
let servers: HttpsServers;
let dir: string;
const clients: TlsClient[] = [];
const file = { arm64: '', x64: '' };
const cap: { arm64?: Capture; x64?: Capture } = {};
const exitCodes: Record<string, number | null> = {};
let armStderr = '';

/** TCP connections between the lab's node and server, as `a:port-b:port` with the ends sorted. */
async function labFlows(path: string): Promise<Set<string>> {
  const r = await run('tshark', ['-r', path, '-Y', `ip.addr==${lab.serverIp} && tcp`, '-T', 'fields', '-e', 'ip.src', '-e', 'tcp.srcport', '-e', 'ip.dst', '-e', 'tcp.dstport'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return new Set(r.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')).map(([a, ap, b, bp]) => [`${a}:${ap}`, `${b}:${bp}`].sort().join('-')));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsh-arm64-'));
  lab = await createLab(uniquePrefix('tsh-arm-'), '10.201.7');
  servers = await startHttpsServers(lab, [PORT]);
  for (const c of TLS_CLIENTS) if (['curl', 'python', 'wget', 'java'].includes(c.name) && await c.available()) clients.push(c);
  file.arm64 = join(dir, 'arm64.pcapng');
  file.x64 = join(dir, 'x64.pcapng');
  const arm = await startHelper(lab.nodeNs, ['--mode', 'auto'], file.arm64, HELPER_ARM64);
  const x64 = await startHelper(lab.nodeNs, ['--mode', 'afpacket'], file.x64);
  try {
    for (const c of clients) {
      const sni = `${c.name}.tapscope.test`;
      const r = await c.request(lab, `https://${sni}:${PORT}/hello-${c.name}`, { ca: servers.ca, sni, serverIp: lab.serverIp });
      expect(r.ok, `${c.name}: ${r.stderr}`).toBe(true);
    }
    // a TLS connection held open 3 s: under qemu the helper runs ~10x slower and has no NETLINK_SOCK_DIAG (its
    // exact lookup at a SYN), so only a connection that outlasts the 500 ms /proc scan is sure to be attributed
    // (held 1.5 s, it once went unattributed while the machine was busy compiling)
    const held = await lab.execIn(lab.nodeNs, 'sh', ['-c', `sleep 3 | openssl s_client -connect ${lab.serverIp}:${PORT} -servername held.tapscope.test -brief`]);
    expect(held.stdout + held.stderr).toContain('CONNECTION ESTABLISHED');
    // why: both helpers attribute processes by scanning /proc every 500 ms; let them see the last sockets go
    await new Promise((r) => setTimeout(r, 600));
  } finally {
    exitCodes.arm64 = await arm.stop();
    exitCodes.x64 = await x64.stop();
    armStderr = arm.stderr();
  }
  cap.arm64 = readCapture(file.arm64);
  cap.x64 = readCapture(file.x64);
}, 180_000);

afterAll(async () => {
  await servers?.stop();
  await lab?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the aarch64 helper', () => {
  it('is an aarch64 executable', () => {
    const elf = readFileSync(HELPER_ARM64);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    // e_machine 183: EM_AARCH64
    expect(elf.readUInt16LE(18)).toBe(183);
  });

  it('picks AF_PACKET in auto mode, says why, and stops with exit 0 and a final stats block', () => {
    expect(exitCodes.arm64, armStderr).toBe(0);
    const c = cap.arm64!;
    expect(c.records[0]).toMatchObject({ t: 'capture', mode: 'afpacket', requestedMode: 'auto' });
    expect(c.records[0]!.reason).toBe('auto: the kernel is x86_64 but this helper is aarch64 (run under emulation: qemu-user, Rosetta); its uprobe programs would read the wrong registers, so packets and process attribution come from AF_PACKET and /proc');
    expect(c.records.at(-1)).toMatchObject({ t: 'stats', final: true });
    // qemu-user has no PACKET_RX_RING: the helper said it reads packets one at a time
    expect(armStderr).toContain('AF_PACKET without an mmap ring here (Protocol not available): reading packets one at a time');
  });

  it('captures every TCP flow the x86-64 helper captures', async () => {
    expect(clients.length).toBeGreaterThanOrEqual(3);
    const x64 = await labFlows(file.x64);
    expect(x64.size).toBeGreaterThanOrEqual(clients.length);
    expect(await labFlows(file.arm64)).toEqual(x64);
  });

  it('gives every client\'s TLS flow a verdict that says why there is no plaintext: the emulation, for an attributed one', async () => {
    const { analyzer } = await analyzeFiles([{ path: file.arm64 }]);
    const tls = analyzer.flows().filter((f) => f.tls?.sni?.endsWith('.tapscope.test'));
    expect(tls.map((f) => f.tls!.sni).sort()).toEqual([...clients.map((c) => `${c.name}.tapscope.test`), 'held.tapscope.test'].sort());
    const aarch64 = /^capture ran in afpacket mode because auto: the kernel is x86_64 but this helper is aarch64 \(run under emulation/;
    for (const f of tls) {
      const v = f.tls!.client!;
      expect(v.plaintext, f.tls!.sni!).toBe(false);
      // a quick client may have come and gone before the emulated helper read /proc: then its verdict says so, and
      // that it is on this node (its address is one of the node's: the capture record's addrs)
      if (!f.process) expect(v.reason, f.tls!.sni!).toMatch(/^the client process is on the captured node but was not attributed: in afpacket mode a connection is matched to its process from \/proc/);
      else expect(v.reason, f.tls!.sni!).toMatch(v.library === 'java-jsse' ? /^java-jsse has no hook/ : aarch64);
    }
    const held = tls.find((f) => f.tls!.sni === 'held.tapscope.test')!;
    expect(held.process?.comm).toBe('openssl');
    expect(held.tls!.client).toMatchObject({ library: 'openssl', via: 'process', plaintext: false });
    expect(held.tls!.client!.reason).toMatch(aarch64);
  });

  it('refuses --mode ebpf with the reason (exit 3) and reports itself in --probe', () => {
    const e = spawnSync(HELPER_ARM64, ['--mode', 'ebpf', '--duration', '1'], { encoding: 'utf8', timeout: 30_000 });
    expect(e.status).toBe(3);
    expect(e.stderr).toContain('eBPF mode not supported here: the kernel is x86_64 but this helper is aarch64 (run under emulation: qemu-user, Rosetta); its uprobe programs would read the wrong registers, so packets and process attribution come from AF_PACKET and /proc');
    const p = spawnSync(HELPER_ARM64, ['--probe'], { encoding: 'utf8', timeout: 30_000 });
    expect(p.status).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ arch: 'aarch64', bpf: false, afpacket: true, autoMode: 'afpacket' });
  });
});
