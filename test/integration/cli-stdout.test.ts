// `-` for standard input and output: exports written to standard output are the bytes of the same export written
// to a file, binary pcapng is refused on a terminal, and a capture piped in reads as the same file does; so does a
// gzip-compressed capture, from a file or piped in.
import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../lib/lab.js';
import { ROOT, cliArgv, runCli } from './core-cli.js';
import { CaptureBuilder } from '../unit/core-packet-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'tapscope-stdout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const FIXTURE = join(ROOT, 'test/fixtures/pcapng/loopback-mix.pcapng');
const env = { TAPSCOPE_HOME: join(dir, 'home') };

/** The CLI's standard output as bytes (runCli gives text); `input`: its standard input. */
function stdoutBytes(args: string[], input?: Buffer): Promise<{ code: number | null; out: Buffer; err: string }> {
  const [cmd, argv] = cliArgv(args);
  const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  if (input) child.stdin!.end(input);
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out: Buffer.concat(out), err })));
}

describe('export --out -', () => {
  for (const format of ['pcapng', 'json', 'har'] as const) {
    it(`writes the ${format} export to standard output, byte for byte the file export`, async () => {
      const file = join(dir, `x.${format}`);
      const f = await runCli(['export', FIXTURE, '--format', format, '--out', file], env);
      expect(f.code, f.stderr).toBe(0);
      const s = await stdoutBytes(['export', FIXTURE, '--format', format, '--out', '-']);
      expect(s.code, s.err).toBe(0);
      expect(s.err).toMatch(/^wrote standard output \(/m);
      expect(s.out.length).toBeGreaterThan(100);
      expect(s.out.equals(readFileSync(file))).toBe(true);
    });
  }

  it('refuses binary pcapng on a terminal, not text', async () => {
    const [cmd, argv] = cliArgv(['export', FIXTURE, '--format', 'pcapng', '--out', '-']);
    // (script gives the CLI a terminal for its standard output)
    const r = await run('script', ['-qec', [cmd, ...argv].map((a) => `'${a}'`).join(' '), '/dev/null'], { timeoutMs: 60_000, env: { ...process.env, ...env } });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/--out - writes binary pcapng; pipe it or redirect it, not to a terminal \(E_USAGE\)/);
    const [c2, a2] = cliArgv(['export', FIXTURE, '--format', 'json', '--out', '-']);
    const j = await run('script', ['-qec', [c2, ...a2].map((a) => `'${a}'`).join(' '), '/dev/null'], { timeoutMs: 60_000, env: { ...process.env, ...env } });
    expect(j.code).toBe(0);
    expect(j.stdout).toContain('"transport":"tcp"');
  });
});

describe('FILE -: a capture on standard input', () => {
  it('reads as the same file does for flows, libraries and export', async () => {
    const input = readFileSync(FIXTURE);
    for (const args of [['flows', '--json'], ['libraries', '--json'], ['export', '--format', 'pcapng', '--out', '-'], ['export', '--format', 'har', '--out', '-']]) {
      const [cmd, ...rest] = args;
      const fromFile = await stdoutBytes([cmd!, FIXTURE, ...rest]);
      const fromStdin = await stdoutBytes([cmd!, '-', ...rest], input);
      expect(fromStdin.code, fromStdin.err).toBe(0);
      expect(fromStdin.out.length, args.join(' ')).toBeGreaterThan(50);
      expect(fromStdin.out.equals(fromFile.out), args.join(' ')).toBe(true);
    }
  });

  it('notes a truncated capture as standard input, and refuses a terminal', async () => {
    const cut = readFileSync(FIXTURE).subarray(0, 3000);
    const r = await stdoutBytes(['flows', '-'], cut);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/note: standard input ends inside a block at offset \d+/);
    const [cmd, argv] = cliArgv(['flows', '-']);
    const t = await run('script', ['-qec', [cmd, ...argv].map((a) => `'${a}'`).join(' '), '/dev/null'], { timeoutMs: 60_000, env: { ...process.env, ...env } });
    expect(t.code).toBe(2);
    expect(t.stdout).toMatch(/'-' reads a capture from standard input; pipe one in/);
  });
});

describe('a gzip-compressed capture (.pcapng.gz)', () => {
  const gz = gzipSync(readFileSync(FIXTURE));
  const path = join(dir, 'mix.pcapng.gz');
  writeFileSync(path, gz);

  it('reads as the capture it holds, from a file and piped in, for flows, libraries and export', async () => {
    for (const args of [['flows', '--json'], ['libraries', '--json'], ['export', '--format', 'pcapng', '--out', '-'], ['export', '--format', 'har', '--out', '-']]) {
      const [cmd, ...rest] = args;
      const fromFile = await stdoutBytes([cmd!, FIXTURE, ...rest]);
      const fromGz = await stdoutBytes([cmd!, path, ...rest]);
      expect(fromGz.code, fromGz.err).toBe(0);
      expect(fromGz.out.length, args.join(' ')).toBeGreaterThan(50);
      expect(fromGz.out.equals(fromFile.out), args.join(' ')).toBe(true);
      const piped = await stdoutBytes([cmd!, '-', ...rest], gz);
      expect(piped.code, piped.err).toBe(0);
      expect(piped.out.equals(fromFile.out), `${args.join(' ')} piped`).toBe(true);
    }
  });

  it('a damaged stream: what came before it is printed, then the command fails saying where', async () => {
    const bad = Buffer.from(gz);
    bad[Math.floor(bad.length * 0.8)]! ^= 0x55;
    const badPath = join(dir, 'bad.pcapng.gz');
    writeFileSync(badPath, bad);
    const r = await stdoutBytes(['flows', badPath, '--json'], undefined);
    expect(r.code).toBe(1);
    expect(r.out.toString().split('\n').filter(Boolean).length).toBeGreaterThan(0);
    expect(r.err).toMatch(new RegExp(`${badPath.replace(/\./g, '\\.')} is damaged: gzip data error after \\d+ decompressed bytes .*\\(E_PCAPNG_MALFORMED\\)`));
  });

  it('a copy that would leave its disk less free than TAPSCOPE_KEEP_FREE: nothing printed, the command fails saying why', async () => {
    const path = join(dir, 'keep-free.pcapng.gz');
    writeFileSync(path, gz);
    // (a reserve no disk has)
    const r = await runCli(['flows', path, '--json'], { ...env, TAPSCOPE_KEEP_FREE: String(2 ** 60) });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`decompressing ${path.replace(/\./g, '\\.')} stopped after 0 bytes: only .* GiB would be left free on the disk of .*TAPSCOPE_KEEP_FREE.*\\(E_DISK_FULL\\)`));
    // (and a capture piped in, copied the same way)
    const prev = process.env.TAPSCOPE_KEEP_FREE;
    process.env.TAPSCOPE_KEEP_FREE = String(2 ** 60);
    try {
      const p = await stdoutBytes(['flows', '-', '--json'], readFileSync(FIXTURE));
      expect(p.code).toBe(1);
      expect(p.out.length).toBe(0);
      expect(p.err).toMatch(/copying standard input stopped after 0 bytes: only .* GiB would be left free on the disk of .*\(TAPSCOPE_KEEP_FREE\)\. Write the capture to a file .*\(E_DISK_FULL\)/);
    } finally {
      if (prev === undefined) delete process.env.TAPSCOPE_KEEP_FREE;
      else process.env.TAPSCOPE_KEEP_FREE = prev;
    }
  });

  it('a zstd one is refused, naming the command that decompresses it', async () => {
    const zst = join(dir, 'mix.pcapng.zst');
    expect((await run('zstd', ['-q', FIXTURE, '-o', zst])).code).toBe(0);
    const r = await stdoutBytes(['flows', zst]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${zst} is compressed with zstd; tapscope reads gzip-compressed captures and uncompressed ones: decompress it first (zstd -d ${zst}) (E_PCAPNG_MALFORMED)`);
  });
});

describe('a reader that stops early', () => {
  it('ends `flows | head` quietly and successfully, as other Unix tools do (JSON lines and the table)', async () => {
    const b = new CaptureBuilder();
    for (let i = 0; i < 3000; i++) b.udp({ src: `10.7.${i >> 8}.${i & 255}`, dst: '10.8.0.1', sport: 20000 + i, dport: 9999, payload: Buffer.from('x') });
    const f = join(dir, 'many.pcapng');
    writeFileSync(f, b.build());
    for (const json of [true, false]) {
      const [cmd, argv] = cliArgv(['flows', f, ...(json ? ['--json'] : [])]);
      const r = await run('bash', ['-c', `set -o pipefail; ${[cmd, ...argv].map((a) => `'${a}'`).join(' ')} | head -c 100 > /dev/null`], { timeoutMs: 60_000, env: { ...process.env, ...env } });
      // (the table's summary line goes to stderr)
      expect(r.stderr.replace(/^3000 flows, 3000 packets\n$/, ''), `json ${json}`).toBe('');
      expect(r.code, `json ${json}`).toBe(0);
    }
  });
});

describe('a filter error', () => {
  it('says what is wrong and where, then shows the filter with the bad token marked (exit 2, as tshark for a bad -Y; nothing on standard output)', async () => {
    const r = await runCli(['flows', FIXTURE, '--filter', 'dst.port == 443 && tls.sni contians "x"'], env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe([
      'tapscope: unexpected "contians" at 28 (expected "&&", "||" or end of filter) (E_FILTER_SYNTAX)',
      '  dst.port == 443 && tls.sni contians "x"',
      '                             ^~~~~~~~',
      '',
    ].join('\n'));
  });
});
