// The helper's --keylog: a key log on the node, followed from its end while the helper captures (on loopback here),
// its new lines written as decryption secrets blocks. What a file does while it is followed: lines come in pieces,
// comments and blank lines, a line far too long to be a key log line, the file truncated (emptied by hand, or a
// rotation that copies and truncates), the file replaced (a rotation that renames, a client that writes it anew).
// The stream stays a valid pcapng that tshark reads. A key log the helper cannot read stops it before it writes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBuffer, type PcapngBlock } from '../../src/pcapng/index.js';
import { run } from '../lib/lab.js';
import { HELPER, startHelper } from '../lib/helper-process.js';

type Dsb = Extract<PcapngBlock, { type: 'dsb' }>;

const line = (label: string, random: string, secret: string): string => `${label} ${random.repeat(32)} ${secret.repeat(48)}`;
const A = line('CLIENT_RANDOM', '0a', '1a');
const B = line('CLIENT_RANDOM', '0b', '1b');
const C = line('CLIENT_HANDSHAKE_TRAFFIC_SECRET', '0c', '1c');
const D = line('CLIENT_RANDOM', '0d', '1d');
const E = line('CLIENT_RANDOM', '0e', '1e');
const F = line('CLIENT_RANDOM', '0f', '1f');

let dir = '';
let out = '';
let stderr = '';
let dsbs: Dsb[] = [];
/** the lines of the secrets blocks, in order */
let lines: string[] = [];

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsc-helper-kl-'));
  const keys = join(dir, 'keys.log');
  writeFileSync(keys, `${A}\n`);
  out = join(dir, 'out.pcapng');
  const h = await startHelper(null, ['--mode', 'afpacket', '--iface', 'lo', '--duration', '5', '--keylog', keys], out);
  // pieces, comments, blank and CRLF lines
  appendFileSync(keys, `${B.slice(0, 20)}`);
  await pause(250);
  appendFileSync(keys, `${B.slice(20)}\n# a comment\n\n${C}\r\n`);
  await pause(250);
  // a line of 5000 bytes: skipped whole, the line after it kept
  appendFileSync(keys, `${'x'.repeat(3000)}`);
  await pause(250);
  appendFileSync(keys, `${'y'.repeat(2000)}\n${D}\n`);
  await pause(250);
  // emptied, then written again from its start
  truncateSync(keys, 0);
  await pause(250);
  appendFileSync(keys, `${E}\n`);
  await pause(250);
  // replaced by another file (a rotation by rename): the new file is read from its start
  const fresh = join(dir, 'keys.log.new');
  writeFileSync(fresh, `${F}\n`);
  renameSync(fresh, keys);
  expect(await h.exited).toBe(0);
  stderr = h.stderr();
  dsbs = parseBuffer(readFileSync(out)).filter((b): b is Dsb => b.type === 'dsb');
  lines = dsbs.map((d) => d.data.toString('utf8')).join('').split('\n').filter((l) => l);
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('helper --keylog', () => {
  it('writes the lines appended while it captures, whole, without comments, blank lines or carriage returns', () => {
    expect(dsbs.length).toBeGreaterThan(1);
    for (const d of dsbs) expect(d.secretsType).toBe(0x544c534b);
    expect(lines).toEqual([B, C, D, E, F]);
  });

  it('leaves out the lines from before it started', () => {
    expect(lines).not.toContain(A);
  });

  it('skips a line far too long to be a key log line, and says so', () => {
    expect(lines.some((l) => l.includes('xxx') || l.includes('yyy'))).toBe(false);
    expect(stderr).toContain('a line of more than 1024 bytes is no key log line; skipped');
  });

  it('follows a truncated file from its start, and a file that replaced it from the new one\'s start', () => {
    expect(stderr).toContain('was truncated; following it from its start');
    expect(stderr).toContain('was replaced; following the new file from its start');
    expect(stderr).toMatch(/keylogLines=5\b/);
  });

  it('writes a stream tshark reads', async () => {
    const r = await run('tshark', ['-r', out, '-q']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('stops before it writes anything when a key log cannot be read', async () => {
    const r = await run(HELPER, ['--mode', 'afpacket', '--iface', 'lo', '--duration', '1', '--keylog', join(dir, 'missing.log')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read key log ${join(dir, 'missing.log')}: No such file or directory`);
    expect(r.stdout).toBe('');
    const notFile = await run(HELPER, ['--mode', 'afpacket', '--iface', 'lo', '--duration', '1', '--keylog', dir]);
    expect(notFile.code).toBe(1);
    expect(notFile.stderr).toContain('is not a regular file');
  });
});
