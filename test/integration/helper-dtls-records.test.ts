// Decrypted DTLS records tied to their UDP connection (helper, eBPF mode). An `openssl s_server -dtls` on an
// unconnected UDP socket (no -listen: it reads with recvfrom and writes with sendto, naming the peer each time) serves
// an OpenSSL and then a GnuTLS client from the lab's node namespace; each side sends the other a line. Every record,
// the server's too, must say UDP (exported-PDU port type 3) and name the connection its packets show: the server's
// address and port, and the client's address and ephemeral port. A second server, bound to 0.0.0.0, has no local
// address of its own (a datagram's is not the socket's): its records carry the wildcard as their local address, with
// the server's port and the client's address and port, which the core ties to the one UDP flow between them. Fields
// are read with tshark, not with the core's reader.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, makeTestCa, run, uniquePrefix, type Lab } from '../lib/lab.js';
import { HELPER, startHelper, type RunningHelper } from '../lib/helper-process.js';
import { watchOutput, type OutputWatch } from '../lib/child-output.js';

const PORT = 4434;
const ANY_PORT = 4435;

interface Rec { portType: string; src: string; dst: string; comm: string; dir: string; conn: string; text: string }

let lab: Lab;
let dir: string;
let ca: Awaited<ReturnType<typeof makeTestCa>>;
let helper: RunningHelper | null = null;
const servers: ChildProcess[] = [];
let records: Rec[] = [];
/** the node's UDP ports that sent to the server's PORT (tshark, packets), in order of their first datagram */
let clientPorts: number[] = [];
let helperExit: number | null = null;

/** `openssl s_server -dtls` on ADDR:PORT in the server namespace, once its UDP socket is bound. */
async function startServer(addr: string, port: number): Promise<{ child: ChildProcess; w: OutputWatch }> {
  const child = lab.spawnIn(lab.serverNs, 'openssl', ['s_server', '-dtls', '-accept', `${addr}:${port}`, '-cert', ca.cert, '-key', ca.key, '-quiet']);
  servers.push(child);
  const w = watchOutput(child, ['stdout', 'stderr'], 's_server');
  for (let i = 0; i < 100; i++) {
    const r = await lab.execIn(lab.serverNs, 'ss', ['-Hnul', `sport = :${port}`]);
    if (r.stdout.trim()) return { child, w };
    await new Promise((r2) => setTimeout(r2, 50));
  }
  throw new Error(`s_server did not bind ${addr}:${port}: ${w.text()}`);
}

/** One client session: the client sends `name`'s line, the server answers with its own, then the client ends (EOF). */
async function session(server: { child: ChildProcess; w: OutputWatch }, cmd: string, args: string[], name: string): Promise<void> {
  const client = lab.spawnIn(lab.nodeNs, cmd, args);
  const cw = watchOutput(client, ['stdout', 'stderr'], cmd);
  const exited = new Promise<number | null>((r) => client.on('exit', (code) => r(code)));
  client.stdin!.write(`line from ${name} client\n`);
  await server.w.waitFor(`line from ${name} client`, 10_000);
  server.child.stdin!.write(`line from server to ${name}\n`);
  await cw.waitFor(`line from server to ${name}`, 10_000);
  client.stdin!.end();
  const timer = setTimeout(() => client.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(timer);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsh-dtlsrec-'));
  lab = await createLab(uniquePrefix('tsh-dtlsrec-'), '10.202.53');
  ca = await makeTestCa(lab.serverIp);
  const out = join(dir, 'dtls.pcapng');
  // (TAPSCOPE_HELPER, as for the core: another build of the helper, e.g. an older one, can be checked with the same test)
  helper = await startHelper(lab.nodeNs, ['--mode', 'ebpf', '--iface', 'any'], out, process.env.TAPSCOPE_HELPER ?? HELPER);

  const server = await startServer(lab.serverIp, PORT);
  await session(server, 'openssl', ['s_client', '-dtls', '-connect', `${lab.serverIp}:${PORT}`, '-CAfile', ca.ca], 'openssl');
  // (the same server process and socket, a new SSL object for the next peer)
  await session(server, 'gnutls-cli', ['--udp', `--x509cafile=${ca.ca}`, '-p', String(PORT), lab.serverIp], 'gnutls');
  const any = await startServer('0.0.0.0', ANY_PORT);
  await session(any, 'openssl', ['s_client', '-dtls', '-connect', `${lab.serverIp}:${ANY_PORT}`, '-CAfile', ca.ca], 'any');
  // (records are read from the ring buffer at least every 100 ms)
  await new Promise((r) => setTimeout(r, 300));
  helperExit = await helper.stop('SIGINT');

  const fields = ['exported_pdu.port_type', 'exported_pdu.ipv4_src', 'exported_pdu.src_port', 'exported_pdu.ipv4_dst', 'exported_pdu.dst_port', 'frame.comment', 'data.data'];
  const r = await run('tshark', ['-r', out, '-Y', 'frame.interface_name == "tapscope-tls"', '-T', 'fields', ...fields.flatMap((f) => ['-e', f])]);
  expect(r.code, r.stderr).toBe(0);
  records = r.stdout.split('\n').filter(Boolean).map((line) => {
    const [portType, sip, sport, dip, dport, comment, data] = line.split('\t');
    const kv = Object.fromEntries((comment ?? '').split(' ').map((x) => x.split('=')));
    return { portType: portType ?? '', src: sip ? `${sip}:${sport}` : '', dst: dip ? `${dip}:${dport}` : '', comm: kv.comm ?? '', dir: kv.dir ?? '', conn: kv.conn ?? '',
      text: Buffer.from((data ?? '').replace(/:/g, ''), 'hex').toString() };
  }).filter((x) => x.text.startsWith('line from'));
  const p = await run('tshark', ['-r', out, '-Y', `udp.dstport == ${PORT} && ip.src == ${lab.nodeIp}`, '-T', 'fields', '-e', 'udp.srcport']);
  expect(p.code, p.stderr).toBe(0);
  clientPorts = [...new Set(p.stdout.split('\n').filter(Boolean).map(Number))];
}, 90_000);

afterAll(async () => {
  for (const s of servers) s.kill();
  if (helper) await helper.stop('SIGKILL');
  await lab?.close();
  if (ca) await rm(ca.dir, { recursive: true, force: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The records of one line: the writer's and the reader's (two processes, two hooks) */
const ofLine = (text: string): Rec[] => records.filter((x) => x.text === `${text}\n`);

describe('decrypted DTLS records (eBPF mode): UDP, and the connection the packets show', () => {
  it('the helper stopped cleanly and each client sent from a port of its own', () => {
    expect(helperExit, helper?.stderr()).toBe(0);
    expect(clientPorts, 'the node\'s UDP source ports towards the server').toHaveLength(2);
  });

  for (const [i, name] of (['openssl', 'gnutls'] as const).entries()) {
    it(`${name} client: both ends' records of each line say UDP and name server ${PORT} and the client's port`, () => {
      const client = `${lab.nodeIp}:${clientPorts[i]}`;
      const server = `${lab.serverIp}:${PORT}`;
      const up = ofLine(`line from ${name} client`);
      const down = ofLine(`line from server to ${name}`);
      const all = JSON.stringify(records, null, 1);
      // (the client's write and the server's read; the server's write and the client's read)
      expect(up.map((x) => `${x.comm} ${x.dir}`).sort(), all).toEqual([`${name === 'gnutls' ? 'gnutls-cli' : 'openssl'} out`, 'openssl in'].sort());
      expect(down.map((x) => `${x.comm} ${x.dir}`).sort(), all).toEqual(['openssl out', `${name === 'gnutls' ? 'gnutls-cli' : 'openssl'} in`].sort());
      for (const x of up) expect({ portType: x.portType, src: x.src, dst: x.dst, conn: x.conn }, all).toEqual({ portType: '3', src: client, dst: server, conn: 'fd' });
      for (const x of down) expect({ portType: x.portType, src: x.src, dst: x.dst, conn: x.conn }, all).toEqual({ portType: '3', src: server, dst: client, conn: 'fd' });
    });
  }

  it('a server bound to 0.0.0.0 (no local address of its own): its records name the wildcard, its port and the client; its client\'s the connection', () => {
    const recs = [...ofLine('line from any client'), ...ofLine('line from server to any')];
    const all = JSON.stringify(recs, null, 1);
    expect(recs, all).toHaveLength(4);
    const client = recs.find((x) => x.comm === 'openssl' && x.dir === 'out' && x.text.startsWith('line from any client'));
    expect(client, all).toBeTruthy();
    const clientEnd = client!.src;
    for (const x of recs) {
      // (the server is the process that reads the client's line and writes its own)
      const isServer = (x.dir === 'in') === x.text.startsWith('line from any client');
      const serverEnd = isServer ? `0.0.0.0:${ANY_PORT}` : `${lab.serverIp}:${ANY_PORT}`;
      const toServer = x.text.startsWith('line from any client');
      expect({ portType: x.portType, src: x.src, dst: x.dst, conn: x.conn }, all)
        .toEqual({ portType: '3', src: toServer ? clientEnd : serverEnd, dst: toServer ? serverEnd : clientEnd, conn: 'fd' });
    }
    expect(clientEnd.startsWith(`${lab.nodeIp}:`), all).toBe(true);
  });
});
