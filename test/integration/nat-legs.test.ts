// A pod's connection to a Service address, as a Kubernetes node carries it: the pod (a network namespace of its own,
// behind a veth) connects to a service IP; the node DNATs it (nftables, as kube-proxy's rules do) to the backend on
// another host. A capture on the node sees the connection twice: on the pod's veth before DNAT and on the uplink
// after. Captured by `tapscope capture` in eBPF mode with real curl (OpenSSL): the leg the client's hook read has
// curl's verdict and its request; the leg after DNAT, which no socket of the node owns, is linked to it by its
// ClientHello (whose random tshark reads the same on both) and carries the same verdict instead of "not attributed".
// And the node's own connection to a Service address (DNAT in OUTPUT): the wire shows only the address after DNAT,
// the socket and the hooks the one before; the wire's flow is known as the socket's by its conn record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, run, startHttpsServers, uniquePrefix, type Lab } from '../lib/lab.js';
import { captureLab, flowsJson } from './core-cli.js';

const SERVICE = '10.96.16.10';
/** a service the node's own processes reach (DNAT in OUTPUT) */
const NODE_SERVICE = '10.96.16.20';
const POD_NET = '10.244.16';

let lab: Lab;
let podNs = '';
let dir = '';

/** Runs `ip ARGS`, throwing its error output on failure. */
async function ip(...args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsc-nat-'));
  lab = await createLab(uniquePrefix('tsc-nat-'), '10.202.16');
  // the pod: its own namespace behind a veth on the node, the node its gateway
  podNs = `${lab.prefix}pod`;
  const [inPod, onNode] = [`${lab.prefix}pa`.slice(-15), `${lab.prefix}pb`.slice(-15)];
  await run('ip', ['netns', 'delete', podNs]);
  await ip('netns', 'add', podNs);
  await ip('link', 'add', inPod, 'type', 'veth', 'peer', 'name', onNode);
  await ip('link', 'set', inPod, 'netns', podNs);
  await ip('link', 'set', onNode, 'netns', lab.nodeNs);
  await ip('-n', podNs, 'addr', 'add', `${POD_NET}.5/24`, 'dev', inPod);
  await ip('-n', podNs, 'link', 'set', inPod, 'up');
  await ip('-n', podNs, 'link', 'set', 'lo', 'up');
  await ip('-n', podNs, 'route', 'add', 'default', 'via', `${POD_NET}.1`);
  await ip('-n', lab.nodeNs, 'addr', 'add', `${POD_NET}.1/24`, 'dev', onNode);
  await ip('-n', lab.nodeNs, 'link', 'set', onNode, 'up');
  await ip('-n', lab.serverNs, 'route', 'add', `${POD_NET}.0/24`, 'via', lab.nodeIp);
  const fwd = await lab.execIn(lab.nodeNs, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  if (fwd.code !== 0) throw new Error(`ip_forward: ${fwd.stderr}`);
  // the service: its address DNATed to the backend, before routing (kube-proxy's KUBE-SERVICES does this)
  const nat = await lab.execIn(lab.nodeNs, 'nft', [`add table ip svc; add chain ip svc pre { type nat hook prerouting priority dstnat; }; ` +
    `add rule ip svc pre ip daddr ${SERVICE} tcp dport 443 dnat to ${lab.serverIp}:8443; ` +
    'add chain ip svc out { type nat hook output priority -100; }; ' +
    `add rule ip svc out ip daddr ${NODE_SERVICE} tcp dport 443 dnat to ${lab.serverIp}:8443`]);
  if (nat.code !== 0) throw new Error(`nft: ${nat.stderr}`);
  // (the node's route to the service range, as a node's default route; DNAT picks the backend before it is used)
  await ip('-n', lab.nodeNs, 'route', 'add', '10.96.16.0/24', 'via', lab.serverIp);
}, 60_000);

afterAll(async () => {
  if (podNs) await run('ip', ['netns', 'delete', podNs]);
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a pod\'s connection to a Service address, captured on the node before and after DNAT', () => {
  it('is two flows linked as one TLS session; the leg after DNAT carries the client\'s verdict', async () => {
    const servers = await startHttpsServers(lab, [8443]);
    try {
      const { cap, out, env } = await captureLab(lab, dir, 'nat.pcapng', 'ebpf', 5);
      const r = await run('ip', ['netns', 'exec', podNs, 'curl', '-sS', '--http1.1', '--cacert', servers.ca, '--connect-timeout', '5',
        '--resolve', `api.tapscope.test:443:${SERVICE}`, 'https://api.tapscope.test/through-the-service'], { timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(await cap.exited, cap.stderr()).toBe(0);

      const all = await flowsJson(out, env);
      const before = all.filter((f) => f.dst.ip === SERVICE);
      const after = all.filter((f) => f.dst.ip === lab.serverIp && f.dst.port === 8443);
      expect([before.length, after.length], JSON.stringify(all)).toEqual([1, 1]);
      const [a, b] = [before[0]!, after[0]!];
      // the same client end on both legs: DNAT changed the destination only
      expect(b.src).toEqual(a.src);
      expect(a.process?.comm).toBe('curl');
      expect(a.tls?.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
      expect(a.http.map((h) => [h.method, h.path, h.status])).toEqual([['GET', '/through-the-service', 200]]);
      // linked: each names the other, and the leg after DNAT has the client's verdict
      expect([a.tls?.sameSessionAs, b.tls?.sameSessionAs]).toEqual([b.id, a.id]);
      expect(b.tls?.client).toEqual(a.tls?.client);
      expect(b.tls?.sni).toBe('api.tapscope.test');

      // tshark reads the same ClientHello random on both legs
      const ts = await run('tshark', ['-r', out, '-Y', 'tls.handshake.type == 1', '-T', 'fields', '-e', 'ip.dst', '-e', 'tls.handshake.random']);
      expect(ts.code, ts.stderr).toBe(0);
      const randoms = new Map(ts.stdout.trim().split('\n').map((l) => l.split('\t') as [string, string]));
      expect(randoms.get(SERVICE), ts.stdout).toMatch(/^[0-9a-f]{64}$/);
      expect(randoms.get(lab.serverIp)).toBe(randoms.get(SERVICE));

      expect((await flowsJson(out, env, `tls.sameSessionAs == "${a.id}" && tls.client.plaintext`)).map((f) => f.id)).toEqual([b.id]);
    } finally {
      await servers.stop();
    }
  }, 120_000);

  it.each(['ebpf', 'afpacket'])('the node\'s own connection to a Service address (DNAT in OUTPUT), %s mode: the wire\'s flow has the socket\'s process (and the hooks\' verdict)', async (mode) => {
    const servers = await startHttpsServers(lab, [8443]);
    try {
      const { cap, out, env } = await captureLab(lab, dir, `nat-out-${mode}.pcapng`, mode, 5);
      const r = await lab.execIn(lab.nodeNs, 'curl', ['-sS', '--http1.1', '--cacert', servers.ca, '--connect-timeout', '5',
        '--resolve', `api.tapscope.test:443:${NODE_SERVICE}`, 'https://api.tapscope.test/from-the-node'], { timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(await cap.exited, cap.stderr()).toBe(0);

      const all = await flowsJson(out, env);
      const wire = all.filter((f) => f.dst.ip === lab.serverIp && f.dst.port === 8443);
      expect(wire.length, JSON.stringify(all)).toBe(1);
      const w = wire[0]!;
      // (afpacket mode: its SYN's socket lookup, missing for the addresses after DNAT, found it by its client end)
      expect(w.process?.comm).toBe('curl');
      if (mode === 'afpacket') {
        // (no hooks: the process's library, and why no plaintext)
        expect(w.tls?.client).toMatchObject({ library: 'openssl', via: 'process', plaintext: false });
        expect(w.tls?.client?.reason).toMatch(/^capture ran in afpacket mode because/);
        return;
      }
      // the hooks name the socket's addresses (the service's); no packet carried them
      const socket = all.filter((f) => f.dst.ip === NODE_SERVICE);
      expect(socket.length, JSON.stringify(all)).toBe(1);
      const s = socket[0]!;
      expect(s.seenBy).toBe('hook-only');
      expect(s.http.map((h) => h.path)).toEqual(['/from-the-node']);
      expect(w.src).toEqual(s.src);
      expect([w.tls?.sameSessionAs, s.tls?.sameSessionAs]).toEqual([s.id, w.id]);
      expect(w.tls?.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    } finally {
      await servers.stop();
    }
  }, 120_000);
});
