// Follow stream: a flow's payload in order from the capture file, client and server turns apart, retransmissions
// left out, the hooks' decrypted records instead of the ciphertext when there are some, and a size limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeFiles } from '../../src/flows/load.js';
import { followStream } from '../../src/flows/follow-stream.js';
import { parseCommand } from '../../src/cli/args.js';
import { CaptureBuilder, fixtureClientHello, tcpConversation } from './core-packet-builder.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'tsc-follow-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

const text = (hex: string): string => Buffer.from(hex, 'hex').toString('latin1');

async function capture(name: string, build: (b: CaptureBuilder) => void) {
  const b = new CaptureBuilder();
  build(b);
  const path = join(dir, `${name}.pcapng`);
  writeFileSync(path, b.build());
  const { analyzer } = await analyzeFiles([{ path }]);
  return { files: [{ path }], flows: analyzer.flows() };
}

describe('follow stream', () => {
  it('gives a DTLS flow\'s plaintext from its hooks\' records, a wildcard server\'s too, in turns', async () => {
    const client = { ip: '10.50.0.1', port: 40011 };
    const server = { ip: '10.50.0.2', port: 4433 };
    const any = { ip: '0.0.0.0', port: 4433 };
    const attrs = (comm: string) => ({ pid: comm === 'srv' ? 2 : 1, comm, lib: 'openssl', udp: true });
    const { files, flows } = await capture('dtls', (b) => {
      b.udp({ src: client.ip, dst: server.ip, sport: client.port, dport: server.port, payload: Buffer.from('16fefd00000000000000000010', 'hex') });
      b.udp({ src: server.ip, dst: client.ip, sport: server.port, dport: client.port, payload: Buffer.from('16fefd00000000000000000011', 'hex') });
      // (the client's write, the wildcard server's read of it; then the server's write, which only its records carry)
      b.tls(client, server, 'out', Buffer.from('ping\n'), attrs('cli'));
      b.tls(client, any, 'in', Buffer.from('ping\n'), attrs('srv'));
      b.tls(any, client, 'out', Buffer.from('pong\n'), attrs('srv'));
    });
    expect(flows).toHaveLength(1);
    const s = await followStream(files, flows[0]!);
    expect(s.source).toBe('decrypted');
    expect(s.chunks.map((c) => [c.dir, text(c.hex)])).toEqual([['c2s', 'ping\n'], ['s2c', 'pong\n']]);
  });

  it('gives a plain TCP flow\'s turns in order, each once, and leaves out a retransmitted segment and other flows', async () => {
    const client = { ip: '10.50.0.1', port: 40001 };
    const server = { ip: '10.50.0.2', port: 6379 };
    const { files, flows } = await capture('plain', (b) => {
      tcpConversation(b, client, server, [Buffer.from('PING\r\n'), Buffer.from('GET key\r\n')], [Buffer.from('+PONG\r\n'), Buffer.from('$5\r\nvalue\r\n')], { isnC: 1000, isnS: 5000 });
      // the second command sent again (a retransmission: the same sequence numbers), and half of it overlapping
      b.tcp({ src: client.ip, dst: server.ip, sport: client.port, dport: server.port, seq: 1001 + 6, ack: 5001, flags: 0x18, payload: Buffer.from('GET key\r\n') });
      b.tcp({ src: client.ip, dst: server.ip, sport: client.port, dport: server.port, seq: 1001 + 6 + 4, ack: 5001, flags: 0x18, payload: Buffer.from('key\r\nQUIT\r\n') });
      tcpConversation(b, { ip: '10.50.0.9', port: 40002 }, server, [Buffer.from('OTHER\r\n')], []);
    });
    const f = flows.find((x) => x.src.port === client.port)!;
    const s = await followStream(files, f);
    expect(s.source).toBe('wire');
    expect(s.chunks.map((c) => [c.dir, text(c.hex)])).toEqual([
      ['c2s', 'PING\r\n'], ['s2c', '+PONG\r\n'], ['c2s', 'GET key\r\n'], ['s2c', '$5\r\nvalue\r\n'], ['c2s', 'QUIT\r\n'],
    ]);
    expect(s.bytes).toBe(6 + 7 + 9 + 11 + 6);
    expect(s.truncated).toBe(false);
    expect(s.chunks[0]!.ts).toBeLessThanOrEqual(s.chunks[1]!.ts);
    // a limit cuts the stream and says so
    const cut = await followStream(files, f, 10);
    expect(cut.chunks.map((c) => text(c.hex))).toEqual(['PING\r\n', '+PON']);
    expect([cut.bytes, cut.truncated]).toEqual([10, true]);
  });

  it('gives a hooked TLS flow\'s decrypted records, not its ciphertext', async () => {
    const client = { ip: '10.50.1.1', port: 40100 };
    const server = { ip: '10.50.1.2', port: 443 };
    const who = { pid: 7, comm: 'curl', lib: 'openssl' };
    const { files, flows } = await capture('tls', (b) => {
      b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
      tcpConversation(b, client, server, [fixtureClientHello(), Buffer.alloc(64, 0x17)], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x02]), Buffer.alloc(80, 0x17)]);
      b.tls(client, server, 'out', Buffer.from('GET /secret HTTP/1.1\r\nHost: api.test\r\n\r\n'), who);
      b.tls(server, client, 'in', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), who);
    });
    const f = flows.find((x) => x.src.port === client.port)!;
    const s = await followStream(files, f);
    expect(s.source).toBe('decrypted');
    expect(s.chunks.map((c) => [c.dir, text(c.hex)])).toEqual([
      ['c2s', 'GET /secret HTTP/1.1\r\nHost: api.test\r\n\r\n'], ['s2c', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
    ]);
  });

  it('shows a connection that switched to TLS in place with its plain prelude first, then the decrypted records', async () => {
    const client = { ip: '10.50.5.1', port: 40500 };
    const who = { pid: 8, comm: 'curl', lib: 'openssl' };
    const serverHello = Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x02]);
    const { files, flows } = await capture('upgrades', (b) => {
      b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
      // SMTP's STARTTLS, the server's answer and its hello in one segment
      const smtp = { ip: '10.50.5.2', port: 587 };
      tcpConversation(b, client, smtp, [null, Buffer.from('EHLO c\r\n'), Buffer.from('STARTTLS\r\n'), fixtureClientHello(), Buffer.alloc(40, 0x17)],
        [Buffer.from('220 mx ESMTP\r\n'), Buffer.from('250 STARTTLS\r\n'), Buffer.concat([Buffer.from('220 go\r\n'), serverHello]), null, Buffer.alloc(30, 0x17)]);
      b.tls(client, smtp, 'out', Buffer.from('EHLO c\r\n'), who);
      b.tls(smtp, client, 'in', Buffer.from('250 mx\r\n'), who);
      // a proxy's CONNECT
      const proxy = { ip: '10.50.5.3', port: 3128 };
      const c2 = { ...client, port: 40501 };
      tcpConversation(b, c2, proxy, [Buffer.from('CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n'), fixtureClientHello()],
        [Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n'), serverHello]);
      b.tls(c2, proxy, 'out', Buffer.from('GET / HTTP/1.1\r\nHost: api.test\r\n\r\n'), who);
    });
    const smtp = await followStream(files, flows.find((x) => x.src.port === 40500)!);
    expect(smtp.source).toBe('decrypted');
    expect(smtp.chunks.map((c) => [c.dir, text(c.hex), c.beforeTls ?? false])).toEqual([
      ['s2c', '220 mx ESMTP\r\n', true], ['c2s', 'EHLO c\r\n', true], ['s2c', '250 STARTTLS\r\n', true], ['c2s', 'STARTTLS\r\n', true],
      ['s2c', '220 go\r\n', true], ['c2s', 'EHLO c\r\n', false], ['s2c', '250 mx\r\n', false],
    ]);
    const tunnel = await followStream(files, flows.find((x) => x.src.port === 40501)!);
    expect(tunnel.chunks.map((c) => [c.dir, text(c.hex), c.beforeTls ?? false])).toEqual([
      ['c2s', 'CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n', true], ['s2c', 'HTTP/1.1 200 Connection established\r\n\r\n', true],
      ['c2s', 'GET / HTTP/1.1\r\nHost: api.test\r\n\r\n', false],
    ]);
  });

  it('gives each message once when both ends are hooked, from the end that recorded its direction first', async () => {
    const client = { ip: '10.50.4.1', port: 40400 };
    const server = { ip: '10.50.4.2', port: 443 };
    const curl = { pid: 7, comm: 'curl', lib: 'openssl' };
    const nginx = { pid: 9, comm: 'nginx', lib: 'openssl' };
    const req = Buffer.from('GET /both HTTP/1.1\r\nHost: api.test\r\n\r\n');
    const res = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    const { files, flows } = await capture('both-ends', (b) => {
      b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
      tcpConversation(b, client, server, [fixtureClientHello(), Buffer.alloc(64, 0x17)], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x02]), Buffer.alloc(80, 0x17)]);
      // (the server's read of the request reaches the capture before the client's write, as the two ends' events may)
      b.tls(client, server, 'in', req, nginx);
      b.tls(client, server, 'out', req, curl);
      b.tls(server, client, 'out', res, nginx);
      b.tls(server, client, 'in', res, curl);
      // a second request, recorded by both ends in the other order: still taken from the server for c2s
      b.tls(client, server, 'out', req, curl);
      b.tls(client, server, 'in', req, nginx);
    });
    const s = await followStream(files, flows.find((x) => x.src.port === client.port)!);
    expect(s.chunks.map((c) => [c.dir, text(c.hex)])).toEqual([['c2s', req.toString()], ['s2c', res.toString()], ['c2s', req.toString()]]);
  });

  it('says when a flow carried no payload', async () => {
    const { files, flows } = await capture('empty', (b) => tcpConversation(b, { ip: '10.50.2.1', port: 40200 }, { ip: '10.50.2.2', port: 80 }, [], []));
    expect(await followStream(files, flows[0]!)).toEqual({ chunks: [], source: null, bytes: 0, truncated: false });
  });
});

describe('tapscope follow', () => {
  const ROOT = join(import.meta.dirname, '../..');
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(dir, 'cli') } });

  it('prints a flow\'s turns between rules and a header like tshark -z follow,tcp,ascii, server lines indented, or as a hex dump', async () => {
    const client = { ip: '10.50.3.1', port: 40300 };
    const server = { ip: '10.50.3.2', port: 25 };
    const { files, flows } = await capture('smtp', (b) => tcpConversation(b, client, server, [Buffer.from('EHLO me\r\n'), Buffer.from('QUIT\r\n')], [Buffer.from('220 hi\r\n'), Buffer.from('250-x\r\n250 ok\r\n')]));
    const id = flows[0]!.id;
    const r = cli(['follow', files[0]!.path, id]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    const rule = '='.repeat(67);
    expect(r.stdout).toBe([
      rule, 'Follow: tcp, as on the wire', `Flow: ${id}`, 'Client: 10.50.3.1:40300', 'Server: 10.50.3.2:25',
      'EHLO me', '\t220 hi', 'QUIT', '\t250-x', '\t250 ok', rule, '',
    ].join('\n'));
    const h = cli(['follow', files[0]!.path, id, '--hex']);
    expect(h.stdout.split('\n').slice(5, 7)).toEqual([
      '00000000  45 48 4c 4f 20 6d 65 0d 0a                       EHLO me..',
      '\t00000000  32 32 30 20 68 69 0d 0a                          220 hi..',
    ]);
    const missing = cli(['follow', files[0]!.path, 'ffffffffffffffff']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`tapscope: no flow 'ffffffffffffffff' in ${files[0]!.path} (flow ids: tapscope flows ${files[0]!.path} --json) (E_FLOW_NOT_FOUND)\n`);
    expect(() => parseCommand(['follow', files[0]!.path])).toThrow(/follow: FILE and FLOW_ID are required/);
  });

  it('marks where a connection that switched to TLS in place goes from its plain prelude to the decrypted records', async () => {
    const client = { ip: '10.50.6.1', port: 40600 };
    const server = { ip: '10.50.6.2', port: 143 };
    const { files, flows } = await capture('imap', (b) => {
      tcpConversation(b, client, server, [null, Buffer.from('a1 STARTTLS\r\n'), fixtureClientHello()],
        [Buffer.from('* OK ready\r\n'), Buffer.from('a1 OK go\r\n'), Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x02])]);
      b.tls(client, server, 'out', Buffer.from('a2 LOGIN lab x\r\n'), { pid: 9, comm: 'curl', lib: 'openssl' });
    });
    const r = cli(['follow', files[0]!.path, flows[0]!.id]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout.split('\n').slice(5, -2)).toEqual([
      '(on the wire, before the connection switched to TLS)', '\t* OK ready', 'a1 STARTTLS', '\ta1 OK go',
      '(then, decrypted by the TLS hooks)', 'a2 LOGIN lab x',
    ]);
  });
});
