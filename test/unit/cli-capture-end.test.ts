// `tapscope capture`'s exit code tells how the capture ended, as tcpdump's does: a helper stream that turned malformed
// saved a file readable only up to the damage (exit 1, the same offset `tapscope flows` then gives, the note printed
// once), and a capture that ended before its first byte saved nothing (exit 1, the file at --out left as it was).
// The real CLI and local target, running fake helpers (shell scripts) as root runs the real one.
import { describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CaptureBuilder } from './core-packet-builder.js';

const ROOT = join(import.meta.dirname, '../..');
const asRoot = process.getuid?.() === 0;

function run(args: string[], env: Record<string, string>): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, stderr: r.stderr };
}

function stream(n: number): Buffer {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'cli-end' });
  for (let i = 0; i < n; i++) b.udp({ src: '10.78.0.1', dst: '10.78.0.2', sport: 4000, dport: 9000 + (i % 20), payload: Buffer.alloc(40, i) });
  return b.build();
}

describe.skipIf(!asRoot)('capture exit codes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsc-cliend-'));
  const env = { TAPSCOPE_HOME: join(dir, 'home') };
  const helper = (name: string, body: string): string => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/bash\necho "tapscope-helper: capturing" >&2\n${body}\n`, { mode: 0o755 });
    return path;
  };

  it('a stream that turns malformed: exit 1, the saved file\'s offset, as `tapscope flows` reads the file', () => {
    const good = stream(40);
    writeFileSync(join(dir, 'good.bin'), good);
    writeFileSync(join(dir, 'junk.bin'), Buffer.alloc(3000, 0x5a));
    const cut = 2000;
    const h = helper('garbage.sh', `head -c ${cut} ${join(dir, 'good.bin')}; cat ${join(dir, 'junk.bin')}; sleep 0.3`);
    const out = join(dir, 'garbage.pcapng');
    const cap = run(['capture', '--target', 'local', '--duration', '2', '--out', out], { ...env, TAPSCOPE_HELPER: h });
    expect(cap.code, cap.stderr).toBe(1);
    const at = /E_PCAPNG_MALFORMED/.test(cap.stderr) ? /at offset (\d+)/.exec(cap.stderr)?.[1] : undefined;
    expect(at, cap.stderr).toBeDefined();
    // (the damage is named once, as the error)
    expect(cap.stderr.match(/is damaged/g)?.length).toBe(1);
    const flows = run(['flows', out], env);
    expect(flows.code).toBe(1);
    expect(/at offset (\d+)/.exec(flows.stderr)?.[1]).toBe(at);
    // (the sessions list says so under its table)
    const id = /\(session ([\w-]+)\)/.exec(cap.stderr)![1]!;
    const list = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'sessions'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
    expect(list.stdout.split('\n').filter((l) => l.startsWith(`${id}: `))).toEqual([expect.stringMatching(new RegExp(`^${id}: .*is damaged: .* at offset ${at}`))]);
  });

  it('`--out -` into a full standard output (> /dev/full): exit 1 with E_DISK_FULL in one line, the capture saved as its session', () => {
    writeFileSync(join(dir, 'many.bin'), stream(400));
    const h = helper('steady.sh', `cat ${join(dir, 'many.bin')}; sleep 5`);
    const full = openSync('/dev/full', 'w');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'capture', '--target', 'local', '--duration', '3', '--out', '-'],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env, TAPSCOPE_HELPER: h }, stdio: ['ignore', full, 'pipe'], timeout: 60_000 });
    closeSync(full);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/tapscope: cannot write standard output: (ENOSPC: )?no space left on device \(E_DISK_FULL\)\n$/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const id = /\(session ([\w-]+)\)/.exec(r.stderr)![1]!;
    const flows = run(['flows', id, '--json'], env);
    expect(flows.code, flows.stderr).toBe(0);
  });

  it('a helper that ends before its first byte: exit 1, nothing saved, the file at --out as it was', () => {
    const h = helper('nothing.sh', 'exit 0');
    const out = join(dir, 'precious.pcapng');
    const mine = stream(5);
    writeFileSync(out, mine);
    const cap = run(['capture', '--target', 'local', '--duration', '2', '--out', out], { ...env, TAPSCOPE_HELPER: h });
    expect(cap.code, cap.stderr).toBe(1);
    expect(cap.stderr).toMatch(/the capture ended before its first byte: nothing was saved \(.* was left as it was\) \(E_HELPER_EXITED\)/);
    expect(readFileSync(out).equals(mine)).toBe(true);
  });
});
