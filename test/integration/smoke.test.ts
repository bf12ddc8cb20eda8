// Foundation smoke test: the helper is built, `tapscope capture` records a real curl HTTPS request in a
// private network namespace, and `tapscope flows --json` shows that flow with its SNI.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, startHttpsServers, uniquePrefix, type Lab, type HttpsServers } from '../lib/lab.js';
import { tlsClient } from '../lib/tls-clients.js';
import { ROOT, runCli, startCli } from './core-cli.js';
import type { Flow } from '../../src/model/flow.js';

let lab: Lab;
let servers: HttpsServers;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsc-smoke-'));
  lab = await createLab(uniquePrefix('tsc-smoke-'), '10.202.1');
  servers = await startHttpsServers(lab, [443]);
});

afterAll(async () => {
  await servers?.stop();
  await lab?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('smoke', () => {
  it('the helper binary is built', () => {
    expect(existsSync(join(ROOT, 'resources/helper/linux-x64/tapscope-helper'))).toBe(true);
  });

  it('captures one curl HTTPS request and lists its flow with the SNI', async () => {
    const env = { TAPSCOPE_HOME: join(dir, 'home'), TAPSCOPE_LOCAL_NETNS: lab.nodeNs };
    const out = join(dir, 'smoke.pcapng');
    const cap = startCli(['capture', '--duration', '3', '--out', out], env);
    await cap.waitFor(': capturing');
    const sni = 'curl.tapscope.test';
    const r = await tlsClient('curl').request(lab, `https://${sni}:443/smoke`, { ca: servers.ca, sni, serverIp: lab.serverIp });
    expect(r.ok, r.stderr).toBe(true);
    expect(await cap.exited, cap.stderr()).toBe(0);
    const flows = await runCli(['flows', out, '--json'], env);
    expect(flows.code, flows.stderr).toBe(0);
    const list = flows.stdout.trim().split('\n').map((l) => JSON.parse(l) as Flow);
    const f = list.find((x) => x.tls?.sni === sni);
    expect(f, flows.stdout).toBeDefined();
    expect(f!.dst).toEqual({ ip: lab.serverIp, port: 443 });
    expect(f!.src.ip).toBe(lab.nodeIp);
    // the capture was also recorded as a session
    const sessions = await runCli(['sessions', '--json'], env);
    expect(sessions.stdout).toContain(out);
  });
});
