// How each TCP connection went (flow.tcp, the filter's tcp.state): real kernel TCP in a private namespace pair,
// captured by `tapscope capture`: a SYN to a closed port (the kernel's RST: refused), a server that aborts
// (SO_LINGER 0: reset by the server), a client that aborts, and a connection both sides close.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, uniquePrefix, type Lab } from '../lib/lab.js';
import { runCli, startCli } from './core-cli.js';
import type { Flow } from '../../src/model/flow.js';

let lab: Lab;
let dir: string;

/** Port 7001 accepts, reads the request and aborts (RST); 7002 answers and closes; 7003 waits for the client. */
const SERVER = `
import socket, struct, threading, sys
def serve(port, handle):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(8)
    def loop():
        while True:
            c, _ = s.accept(); handle(c)
    threading.Thread(target=loop, daemon=True).start()
def abort(c):
    c.recv(100); c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); c.close()
def answer(c):
    c.recv(100); c.sendall(b'ok'); c.close()
def wait(c):
    c.recv(100)
for port, h in ((7001, abort), (7002, answer), (7003, wait)): serve(port, h)
print('ready', flush=True)
sys.stdin.read()
`;

/** Each case from its own client port (40001..40004), so the test can tell the flows apart. */
const CLIENT = `
import socket, struct, sys, time
ip = sys.argv[1]
def conn(port, sport):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); c.bind(('0.0.0.0', sport)); c.connect((ip, port)); return c
try:
    conn(7009, 40001)
except ConnectionRefusedError:
    print('refused')
c = conn(7001, 40002); c.sendall(b'hello')
try:
    c.recv(100); print('no reset?')
except ConnectionResetError:
    print('reset by server')
c = conn(7002, 40003); c.sendall(b'hello'); print(c.recv(100)); c.recv(100); c.close()
c = conn(7003, 40004); c.sendall(b'hello'); time.sleep(0.2); c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); c.close()
print('done')
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsc-tcpstate-'));
  lab = await createLab(uniquePrefix('tsc-tcpst-'), '10.202.7');
});

afterAll(async () => {
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('TCP connection states from a real capture', () => {
  it('tells refused, reset by the server, reset by the client and closed apart, and filters by them', async () => {
    writeFileSync(join(dir, 'server.py'), SERVER);
    writeFileSync(join(dir, 'client.py'), CLIENT);
    const server = lab.spawnIn(lab.serverNs, 'python3', [join(dir, 'server.py')]);
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
        server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
      });
      const env = { TAPSCOPE_HOME: join(dir, 'home'), TAPSCOPE_LOCAL_NETNS: lab.nodeNs };
      const out = join(dir, 'tcp.pcapng');
      const cap = startCli(['capture', '--mode', 'afpacket', '--duration', '3', '--out', out], env);
      await cap.waitFor(': capturing');
      const r = await lab.execIn(lab.nodeNs, 'python3', [join(dir, 'client.py'), lab.serverIp], { timeoutMs: 20_000 });
      expect(r.stdout.trim().split('\n'), r.stderr).toEqual(['refused', 'reset by server', "b'ok'", 'done']);
      expect(await cap.exited, cap.stderr()).toBe(0);

      const flows = await runCli(['flows', out, '--json'], env);
      expect(flows.code, flows.stderr).toBe(0);
      const byPort = new Map((flows.stdout.trim().split('\n').map((l) => JSON.parse(l) as Flow)).map((f) => [f.src.port, f]));
      expect(byPort.get(40001)?.tcp).toEqual({ state: 'refused', resetBy: 'server', retransmissions: 0 });
      expect(byPort.get(40002)?.tcp).toEqual({ state: 'reset', resetBy: 'server', retransmissions: 0 });
      expect(byPort.get(40003)?.tcp).toEqual({ state: 'closed', resetBy: null, retransmissions: 0 });
      expect(byPort.get(40004)?.tcp).toEqual({ state: 'reset', resetBy: 'client', retransmissions: 0 });

      // the table says it after the app
      const table = await runCli(['flows', out], env);
      const row = (port: number): string => table.stdout.split('\n').find((l) => l.includes(`:${port} `)) ?? '';
      expect(row(40001)).toMatch(/ \(refused\) /);
      expect(row(40002)).toMatch(/ \(reset by server\) /);
      expect(row(40003)).not.toMatch(/refused|reset|no reply/);
      const failed = await runCli(['flows', out, '--json', '--filter', 'tcp.state == "refused" || tcp.resetBy == "server"'], env);
      expect(failed.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Flow).src.port).sort()).toEqual([40001, 40002]);
    } finally {
      server.kill();
    }
  });
});
