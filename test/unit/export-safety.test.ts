// An export never destroys what it is made from, and a failed one (a full disk, /dev/full, a file too large) says so in
// one line naming its path and leaves no partial file; a capture file that cannot be read (a directory, no permission)
// or is no capture is named in one line, never a stack. Through exportCapture (what the CLI and the app's
// exportSession both call), CoreService.exportSession, and the `tapscope` CLI.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { exportCapture } from '../../src/export/index.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { readBlocks } from '../../src/pcapng/reader.js';
import { isGzip } from '../../src/pcapng/compressed.js';
import { SessionStore } from '../../src/store/session-store.js';
import { CoreService } from '../../src/service/core-service.js';
import { isTapscopeError } from '../../src/errors.js';

const ROOT = join(import.meta.dirname, '../..');
const FIXTURE = join(ROOT, 'test/fixtures/pcapng/loopback-mix.pcapng');
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tsx-export-safety-'));
  // (the unreadable-file test runs the CLI as another user, who must reach the files)
  chmodSync(tmp, 0o755);
});
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

/** A fresh copy of the fixture capture at `name` in the test folder. */
function capture(name: string): string {
  const p = join(tmp, name);
  copyFileSync(FIXTURE, p);
  return p;
}

/** The `tapscope` CLI from the sources; `prefix`: a command it runs under (prlimit, setpriv). */
function cli(args: string[], opts: { prefix?: string[]; input?: Buffer } = {}): { status: number | null; stdout: string; stderr: string } {
  const argv = [process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args];
  const [cmd, ...rest] = [...(opts.prefix ?? []), ...argv];
  const r = spawnSync(cmd!, rest, {
    encoding: 'utf8', cwd: ROOT, input: opts.input, env: { ...process.env, TAPSCOPE_HOME: join(tmp, 'home'), HOME: tmp },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One error line with this code, no stack. */
function oneLine(stderr: string, code: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at |node:internal|E_INTERNAL/m);
  expect(lines[0]).toMatch(new RegExp(`^tapscope: .* \\(${code}\\)$`));
  return lines[0]!;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => { throw new Error('expected a rejection'); }, (e: unknown) => e);
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

describe('an export onto its own input', () => {
  it('is refused before anything is written, by path, symlink or hard link, in every format (exportCapture)', async () => {
    const input = capture('own.pcapng');
    const before = readFileSync(input);
    const link = join(tmp, 'own-link.pcapng');
    symlinkSync(input, link);
    const hard = join(tmp, 'own-hard.pcapng');
    linkSync(input, hard);
    const { analyzer } = await analyzeFiles([{ path: input }]);
    for (const out of [input, join(tmp, '.', 'own.pcapng'), link, hard]) {
      for (const format of ['pcapng', 'json', 'har'] as const) {
        const e = await rejection(exportCapture([{ path: input }], analyzer, { format, out }));
        expect(isTapscopeError(e, 'E_EXPORT'), `${out} ${format}: ${String(e)}`).toBe(true);
        expect((e as Error).message).toContain(out);
        expect((e as Error).message).toMatch(/made from/);
      }
    }
    expect(readFileSync(input).equals(before)).toBe(true);
    // (nothing was created beside it either)
    expect(readdirSync(tmp).filter((f) => f.startsWith('.own'))).toEqual([]);
  });

  it('is refused for a session\'s own capture through the app\'s exportSession, which keeps working elsewhere', async () => {
    const input = capture('session-own.pcapng');
    const before = readFileSync(input);
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'svc-store')) });
    const s = await svc.openFile({ path: input });
    const e = await rejection(svc.exportSession({ sessionId: s.id, format: 'json', path: input }));
    expect(isTapscopeError(e, 'E_EXPORT'), String(e)).toBe(true);
    expect(readFileSync(input).equals(before)).toBe(true);
    const ok = await svc.exportSession({ sessionId: s.id, format: 'json', path: join(tmp, 'session-own.jsonl') });
    expect(ok.bytes).toBeGreaterThan(0);
    expect((await svc.queryFlows({ sessionId: s.id, offset: 0, limit: 1 })).total).toBeGreaterThan(0);
  });

  it('is refused by the CLI, also for a gzip capture\'s original and a key log; the files stay as they were', () => {
    const input = capture('cli-own.pcapng');
    const before = readFileSync(input);
    const r = cli(['export', input, '--format', 'pcapng', '--out', input]);
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr, 'E_EXPORT')).toContain(input);
    expect(readFileSync(input).equals(before)).toBe(true);
    const gz = join(tmp, 'cli-own.pcapng.gz');
    writeFileSync(gz, gzipSync(before));
    const gzBefore = readFileSync(gz);
    const g = cli(['export', gz, '--format', 'json', '--out', gz]);
    expect(g.status).toBe(1);
    expect(oneLine(g.stderr, 'E_EXPORT')).toContain(gz);
    expect(readFileSync(gz).equals(gzBefore)).toBe(true);
    const keys = join(tmp, 'cli-own.keys');
    writeFileSync(keys, `CLIENT_RANDOM ${'ab'.repeat(32)} ${'cd'.repeat(48)}\n`);
    const k = cli(['export', input, '--format', 'har', '--keylog', keys, '--out', keys]);
    expect(k.status).toBe(1);
    expect(oneLine(k.stderr, 'E_EXPORT')).toContain(keys);
  });
});

describe('an export that cannot be written whole', () => {
  it('to /dev/full: E_DISK_FULL naming it, and its file descriptor closed', async () => {
    const input = capture('full.pcapng');
    const { analyzer } = await analyzeFiles([{ path: input }]);
    const fds = openFds();
    for (const format of ['pcapng', 'json'] as const) {
      const e = await rejection(exportCapture([{ path: input }], analyzer, { format, out: '/dev/full' }));
      expect(isTapscopeError(e, 'E_DISK_FULL'), String(e)).toBe(true);
      expect((e as Error).message).toMatch(/^cannot write \/dev\/full: no space left on device/);
    }
    expect(openFds()).toBe(fds);
    // (a special file is written in place: /dev/null still takes an export)
    expect((await exportCapture([{ path: input }], analyzer, { format: 'json', out: '/dev/null' })).bytes).toBeGreaterThan(0);
    const r = cli(['export', input, '--format', 'json', '--out', '/dev/full']);
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr, 'E_DISK_FULL')).toContain('/dev/full');
  });

  it('that outgrows what may be written: one line naming the path, the file that was there kept, no partial file', () => {
    const input = capture('big.pcapng');
    const dir = join(tmp, 'limited');
    mkdirSync(dir);
    const out = join(dir, 'export.pcapng');
    writeFileSync(out, 'the previous export');
    // why prlimit: a file size limit fails the write (EFBIG; Node ignores SIGXFSZ) as a full disk does, without a
    // file system to fill; the fixture's pcapng export is larger than 8 KiB
    const r = cli(['export', input, '--format', 'pcapng', '--out', out], { prefix: ['prlimit', '--fsize=8192'] });
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr, 'E_DISK_FULL')).toContain(out);
    expect(readFileSync(out, 'utf8')).toBe('the previous export');
    expect(readdirSync(dir)).toEqual(['export.pcapng']);
    const fresh = join(dir, 'fresh.pcapng');
    const j = cli(['export', input, '--format', 'pcapng', '--out', fresh], { prefix: ['prlimit', '--fsize=8192'] });
    expect(j.status).toBe(1);
    expect(readdirSync(dir)).toEqual(['export.pcapng']);
    // (and without the limit the same export replaces the file whole)
    const ok = cli(['export', input, '--format', 'pcapng', '--out', out]);
    expect([ok.status, ok.stderr]).toEqual([0, expect.stringMatching(/^wrote /)]);
    expect(readFileSync(out).subarray(0, 4).readUInt32LE(0)).toBe(0x0a0d0d0a);
    expect(readdirSync(dir)).toEqual(['export.pcapng']);
  });

  it('to standard output that is full: one line, not a crash', () => {
    const input = capture('stdout-full.pcapng');
    const r = spawnSync('sh', ['-c', `"${process.execPath}" --import tsx "${join(ROOT, 'src/cli/main.ts')}" export "${input}" --format json --out - > /dev/full`], {
      encoding: 'utf8', cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(tmp, 'home') },
    });
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr, 'E_DISK_FULL')).toMatch(/standard output/);
  });
});

describe('an export stopped by a signal (Ctrl-C)', () => {
  /** A valid capture of about `mb` MiB: the fixture's sections one after another. */
  function bigCapture(name: string, mb: number): string {
    const one = readFileSync(FIXTURE);
    const p = join(tmp, name);
    writeFileSync(p, Buffer.concat(Array.from({ length: Math.ceil((mb << 20) / one.length) }, () => one)));
    return p;
  }

  it('exportCapture stops at its signal: rejects with its reason, the file that was there kept, no temporary file left', async () => {
    const input = bigCapture('abort.pcapng', 12);
    const { analyzer } = await analyzeFiles([{ path: input }]);
    const dir = join(tmp, 'aborted');
    mkdirSync(dir);
    const out = join(dir, 'x.pcapng');
    writeFileSync(out, 'the previous export');
    for (const format of ['pcapng', 'har'] as const) {
      const stop = new AbortController();
      let stoppedAt = 0;
      let reportsAfter = 0;
      // (for pcapng, at its first progress report, 4 MiB into the capture; HAR is written at once, and stops before it is put in place)
      if (format === 'har') stop.abort('SIGINT');
      const e = await rejection(exportCapture([{ path: input }], analyzer, { format, out, signal: stop.signal, onProgress: (done, total) => {
        if (stop.signal.aborted) reportsAfter++;
        else if (done < total) {
          stoppedAt = done;
          stop.abort('SIGINT');
        }
      } }));
      expect([format, e]).toEqual([format, 'SIGINT']);
      // (a pcapng export stops where it is: it reports no more progress, nor its end)
      if (format === 'pcapng') expect([stoppedAt > 0, reportsAfter]).toEqual([true, 0]);
      expect(readdirSync(dir)).toEqual(['x.pcapng']);
      expect(readFileSync(out, 'utf8')).toBe('the previous export');
    }
  });

  it('the CLI interrupted while it writes (to a file, or to standard output) removes what it was writing, and ends by the signal as before', async () => {
    const input = bigCapture('ctrl-c.pcapng', 40);
    for (const [toStdout, signal] of [[false, 'SIGINT'], [true, 'SIGTERM']] as const) {
      const dir = join(tmp, `ctrl-c-${signal}`);
      const scratch = join(dir, 'tmp');
      mkdirSync(scratch, { recursive: true });
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'export', input, '--format', 'pcapng', '--out', toStdout ? '-' : join(dir, 'x.pcapng')], {
        cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(tmp, 'home'), HOME: tmp, TMPDIR: scratch }, stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      const closed = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (code, sig) => r([code, sig])));
      // the export's files: its temporary file beside the output, or standard output's folder and the file in it
      const exportFiles = (): string[] => [
        ...readdirSync(dir).filter((n) => n.startsWith('.x.pcapng.tapscope-')).map((n) => join(dir, n)),
        ...readdirSync(scratch).filter((n) => n.startsWith('tapscope-export-')).flatMap((n) => [join(scratch, n), ...readdirSync(join(scratch, n)).map((f) => join(scratch, n, f))]),
      ];
      const writing = (): boolean => exportFiles().some((f) => f.endsWith('.tmp') && statSync(f, { throwIfNoEntry: false })?.size);
      for (let waited = 0; !writing(); waited += 50) {
        if (waited > 120_000) throw new Error(`no export being written: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill(signal);
      expect(await closed, stderr).toEqual([null, signal]);
      expect(exportFiles()).toEqual([]);
      expect(readdirSync(dir)).toEqual(['tmp']);
    }
  });
});

describe('a capture file that cannot be read', () => {
  it('a directory: named, E_FILE_UNREADABLE, wherever it is read from', async () => {
    const dir = join(tmp, 'adir.pcapng');
    mkdirSync(dir);
    for (const e of [await rejection(readBlocks(dir, () => undefined)), await rejection(Promise.resolve().then(() => isGzip(dir)))]) {
      expect(isTapscopeError(e, 'E_FILE_UNREADABLE'), String(e)).toBe(true);
      expect((e as Error).message).toBe(`${dir} is a directory, not a capture file`);
    }
    const r = cli(['flows', dir]);
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr, 'E_FILE_UNREADABLE')).toContain(dir);
  });

  it('a session whose capture file became a directory: one line naming it', async () => {
    const file = capture('became-dir.pcapng');
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'home', 'sessions')) });
    const s = await svc.openFile({ path: file });
    rmSync(file);
    mkdirSync(file);
    for (const args of [['flows', s.id], ['export', s.id, '--format', 'json', '--out', join(tmp, 'became-dir.json')]]) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(oneLine(r.stderr, 'E_FILE_(UNREADABLE|NOT_FOUND)')).toContain(file);
    }
    expect(existsSync(join(tmp, 'became-dir.json'))).toBe(false);
  });

  it('without permission to read it: "permission denied" naming it (run as another user)', () => {
    const file = capture('noread.pcapng');
    chmodSync(file, 0o000);
    // why another user: root reads a file whatever its mode
    const asUser = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    for (const args of [['flows', file], ['export', file, '--format', 'json', '--out', join(tmp, 'noread.json')]]) {
      const r = spawnSync(asUser[0] ?? process.execPath, [...asUser.slice(1), ...(asUser.length ? [process.execPath] : []), '--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
        encoding: 'utf8', cwd: ROOT, env: { ...process.env, HOME: tmp, TAPSCOPE_HOME: join(tmp, 'nobody-home') },
      });
      expect(r.status, r.stderr).toBe(1);
      expect(oneLine(r.stderr, 'E_FILE_UNREADABLE')).toBe(`tapscope: ${file} could not be opened: permission denied (E_FILE_UNREADABLE)`);
    }
  });
});

describe('a file that is no capture', () => {
  it('is named in the error: not a capture, empty, from standard input, gzip-compressed', () => {
    const junk = join(tmp, 'junk.pcapng');
    writeFileSync(junk, 'GET / HTTP/1.1\r\n\r\n');
    const empty = join(tmp, 'empty.pcapng');
    writeFileSync(empty, '');
    const gz = join(tmp, 'junk.pcapng.gz');
    writeFileSync(gz, gzipSync(readFileSync(junk)));
    const cases: [string[], Buffer | undefined, string, string][] = [
      [['flows', junk], undefined, 'E_PCAPNG_MALFORMED', `tapscope: not a pcapng or pcap file (${junk} has no section header block or pcap magic) at offset 0`],
      [['flows', empty], undefined, 'E_PCAPNG_TRUNCATED', `tapscope: ${empty} is empty (0 bytes)`],
      [['flows', '-'], readFileSync(junk), 'E_PCAPNG_MALFORMED', 'tapscope: not a pcapng or pcap file (standard input has no section header block or pcap magic) at offset 0'],
      [['export', gz, '--format', 'json', '--out', join(tmp, 'junk.json')], undefined, 'E_PCAPNG_MALFORMED', `tapscope: not a pcapng or pcap file (${gz} has no section header block or pcap magic) at offset 0`],
    ];
    for (const [args, input, code, message] of cases) {
      const r = cli(args, { input });
      expect(r.status, args.join(' ')).toBe(1);
      expect(oneLine(r.stderr, code)).toBe(`${message} (${code})`);
    }
    expect(existsSync(join(tmp, 'junk.json'))).toBe(false);
  });
});
