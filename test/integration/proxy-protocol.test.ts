// Connections that begin with a PROXY protocol header, from real senders: curl's --haproxy-protocol (v1, before its
// TLS) and HAProxy relaying TCP with send-proxy-v2 (before the TLS it relays), send-proxy (before plain HTTP), and
// send-proxy-v2 with its SSL and AUTHORITY TLVs after ending curl's TLS itself (before the decrypted HTTP), to
// an HAProxy that accepts the header and answers itself (TLS on OpenSSL, and plain HTTP). Captured by `tapscope
// capture` in eBPF mode, each such flow is TLS or HTTP with its header's client and address as tshark reads them,
// its TLS hello fields as tshark reads them, the client's library and plaintext, and its requests; the relayed TLS is
// known as curl's own connection's session (the same hello), with curl's verdict.
import { describe, it, expect } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, tsharkHellos, type Lab } from '../lib/lab.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, flowsJson } from './core-cli.js';
import type { Flow } from '../../src/model/flow.js';

/** Runs HAProxy with `config` in namespace `ns` until it is stopped; resolves once every `ports` listens there. */
async function startHaproxy(lab: Lab, ns: string, file: string, config: string, ports: number[]): Promise<{ stop(): void; output(): string }> {
  await writeFile(file, config);
  const check = await run('haproxy', ['-c', '-f', file]);
  if (check.code !== 0) throw new Error(`haproxy config: ${check.stdout}${check.stderr}`);
  const child = lab.spawnIn(ns, 'haproxy', ['-db', '-f', file]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}: ${out}`);
    const ss = await lab.execIn(ns, 'ss', ['-Htln']);
    if (ports.every((p) => ss.stdout.includes(`:${p} `))) break;
    if (i > 100) throw new Error(`haproxy does not listen on ${ports.join(', ')}: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { stop: () => { child.kill(); }, output: () => out };
}

const t = useTlsLab('tsc-pp', '10.202.15');

describe('connections behind a proxy that sends a PROXY protocol header', () => {
  it('are TLS and HTTP flows with the header\'s client, the hello fields and the header as tshark reads them, and the plaintext', async () => {
    const pem = join(t.dir, 'server-with-key.pem');
    await writeFile(pem, Buffer.concat([await readFile(t.ca.cert), await readFile(t.ca.key)]));
    const defaults = 'defaults\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n';
    // the services: they take the header, then TLS (OpenSSL) or plain HTTP, and answer themselves
    const server = await startHaproxy(t.lab, t.lab.serverNs, join(t.dir, 'server.cfg'), `${defaults}
frontend tls
  mode http
  bind 0.0.0.0:8443 ssl crt ${pem} accept-proxy
  http-request return status 200 content-type text/plain string "behind the proxy\\n"
frontend plain
  mode http
  bind 0.0.0.0:8080 accept-proxy
  http-request return status 200 content-type text/plain string "plain behind the proxy\\n"
`, [8443, 8080]);
    // the load balancer on the node: relays TCP, sending the header first
    const relay = await startHaproxy(t.lab, t.lab.nodeNs, join(t.dir, 'relay.cfg'), `${defaults}
listen v2
  mode tcp
  bind 127.0.0.1:7001
  server s ${t.lab.serverIp}:8443 send-proxy-v2
listen v1
  mode tcp
  bind 127.0.0.1:7002
  server s ${t.lab.serverIp}:8080 send-proxy
listen terminating
  mode tcp
  bind 127.0.0.1:7003 ssl crt ${pem}
  server s ${t.lab.serverIp}:8080 send-proxy-v2 proxy-v2-options ssl,ssl-cipher,authority
`, [7001, 7002, 7003]);
    try {
      const { cap, out, env } = await captureLab(t.lab, t.dir, 'proxied.pcapng', 'ebpf', 6);
      const curl = async (args: string[], want: string): Promise<void> => {
        const r = await t.lab.execIn(t.lab.nodeNs, 'curl', ['-sS', '--http1.1', '--cacert', t.ca.ca, '--connect-timeout', '5', ...args], { timeoutMs: 20_000 });
        expect(r.code, `${args.join(' ')}: ${r.stderr} ${server.output()} ${relay.output()}`).toBe(0);
        expect(r.stdout).toBe(want);
      };
      await curl(['--haproxy-protocol', 'https://api.tapscope.test:8443/direct'], 'behind the proxy\n');
      await curl(['--connect-to', 'www.tapscope.test:7001:127.0.0.1:7001', 'https://www.tapscope.test:7001/relayed'], 'behind the proxy\n');
      await curl(['http://127.0.0.1:7002/plain'], 'plain behind the proxy\n');
      await curl(['--connect-to', 'api.tapscope.test:7003:127.0.0.1:7003', 'https://api.tapscope.test:7003/terminated'], 'plain behind the proxy\n');
      expect(await cap.exited, cap.stderr()).toBe(0);

      const flows = await flowsJson(out, env);
      const find = (what: string, p: (f: Flow) => boolean): Flow => {
        const found = flows.filter(p);
        expect(found, `${what}: ${JSON.stringify(flows)}`).toHaveLength(1);
        return found[0]!;
      };
      const direct = find('curl --haproxy-protocol', (f) => f.dst.port === 8443 && f.src.ip === t.lab.nodeIp && f.proxy?.version === 1);
      const toRelay = find('curl to the relay', (f) => f.dst.port === 7001);
      const relayed = find('the relayed TLS', (f) => f.dst.port === 8443 && f.proxy?.version === 2);
      const plainIn = find('curl to the plain relay', (f) => f.dst.port === 7002);
      const plain = find('the relayed HTTP', (f) => f.dst.port === 8080 && f.proxy?.version === 1);
      const toTerminator = find('curl to the terminating relay', (f) => f.dst.port === 7003);
      const terminated = find('the HTTP the relay decrypted', (f) => f.dst.port === 8080 && f.proxy?.version === 2);

      // curl names its own connection
      expect(direct.proxy).toEqual({ version: 1, src: direct.src, dst: direct.dst });
      expect(direct.app).toBe('tls');
      expect(direct.tls?.sni).toBe('api.tapscope.test');
      expect(direct.tls?.client).toMatchObject({ library: 'openssl', plaintext: true });
      expect(direct.http.map((h) => [h.method, h.path, h.status])).toEqual([['GET', '/direct', 200]]);
      // the relay names the connection it took: curl's, on loopback; the hello is curl's, relayed as it was
      expect(toRelay.proxy).toBeUndefined();
      expect(relayed.proxy).toEqual({ version: 2, src: toRelay.src, dst: toRelay.dst });
      expect(relayed.app).toBe('tls');
      expect(relayed.tls).toMatchObject({ sni: 'www.tapscope.test', ja3: toRelay.tls!.ja3, ja4: toRelay.tls!.ja4 });
      // (the relay links OpenSSL, but forwards curl's TLS as it is: both legs carry one TLS session, the same hello,
      // and the relayed leg's client verdict is curl's, whose hook read the plaintext on its own connection)
      expect(toRelay.tls?.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
      expect(relayed.process?.comm).toBe('haproxy');
      expect([relayed.tls?.sameSessionAs, toRelay.tls?.sameSessionAs]).toEqual([toRelay.id, relayed.id]);
      expect(relayed.tls?.client).toEqual(toRelay.tls?.client);
      expect([direct, plain, plainIn].map((f) => f.tls?.sameSessionAs)).toEqual([undefined, undefined, undefined]);
      expect(plain.proxy).toEqual({ version: 1, src: plainIn.src, dst: plainIn.dst });
      expect(plain.app).toBe('http');
      expect(plain.http.map((h) => [h.method, h.path, h.status])).toEqual([['GET', '/plain', 200]]);
      // a relay that ends the client's TLS: its plain connection says what the client asked for and with what TLS
      expect(terminated.proxy).toMatchObject({ version: 2, src: toTerminator.src, dst: toTerminator.dst, authority: 'api.tapscope.test', tls: { clientCertCn: null } });
      expect(terminated.proxy?.tls?.version).toMatch(/^TLSv1\.[23]$/);
      expect(terminated.proxy?.tls?.version).toBe(toTerminator.tls?.version?.replace('TLS ', 'TLSv'));
      expect([terminated.app, terminated.tls, terminated.http.map((h) => h.path)]).toEqual(['http', null, ['/terminated']]);
      expect(toTerminator.tls).toMatchObject({ sni: 'api.tapscope.test', client: { library: 'openssl', plaintext: true }, server: { library: 'openssl', plaintext: true } });

      // tshark reads the same headers and, after them, the same hellos (its PROXY dissector is a heuristic one: tried
      // first, else 8080's HTTP takes the header for a bad request)
      const ts = await run('tshark', ['-r', out, '-o', 'tcp.try_heuristic_first:TRUE', '-Y', 'proxy', '-T', 'fields', '-e', 'tcp.srcport', '-e', 'tcp.dstport',
        '-e', 'proxy.src.ipv4', '-e', 'proxy.srcport', '-e', 'proxy.dst.ipv4', '-e', 'proxy.dstport']);
      expect(ts.code, ts.stderr).toBe(0);
      const headers = ts.stdout.trim().split('\n').map((l) => l.split('\t')).map(([sport, dport, sip, sp, dip, dp]) => `${sport}>${dport} ${sip}:${sp}>${dip}:${dp}`).sort();
      const ours = [direct, relayed, plain, terminated].map((f) => `${f.src.port}>${f.dst.port} ${f.proxy!.src!.ip}:${f.proxy!.src!.port}>${f.proxy!.dst!.ip}:${f.proxy!.dst!.port}`).sort();
      expect(headers).toEqual(ours);
      const hellos = (await tsharkHellos(out)).filter((h) => h.port === 8443).map((h) => [h.sni, h.ja3, h.full]).sort();
      expect(hellos).toEqual([direct, relayed].map((f) => [f.tls!.sni, f.tls!.ja3Hash, f.tls!.ja3]).sort());

      expect((await flowsJson(out, env, 'proxy.src.ip == 127.0.0.1 && proxy.version == 2 && !proxy.tls')).map((f) => f.id)).toEqual([relayed.id]);
      // the TLS the terminating relay ended, as tshark reads its SSL TLV
      const tv = await run('tshark', ['-r', out, '-o', 'tcp.try_heuristic_first:TRUE', '-Y', 'proxy.v2.tlv.ssl.version', '-T', 'fields', '-e', 'proxy.v2.tlv.ssl.version', '-e', 'proxy.v2.tlv.ssl.cipher']);
      expect(tv.stdout.trim()).toBe(`${terminated.proxy!.tls!.version}\t${terminated.proxy!.tls!.cipher}`);
      expect((await flowsJson(out, env, 'proxy.tls && proxy.authority == "api.tapscope.test"')).map((f) => f.id)).toEqual([terminated.id]);
    } finally {
      relay.stop();
      server.stop();
    }
  }, 120_000);
});
