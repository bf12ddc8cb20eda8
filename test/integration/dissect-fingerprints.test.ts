// Runs scripts/gen-fingerprints.mjs against the real TLS clients on this machine (in its own network
// namespace, tsd-fp): every client's JA3/JA4 must agree with tshark, and the committed table
// (resources/fingerprints/ja4.json) must still describe these clients — if a package update changed
// a fingerprint, this fails and says to regenerate. A run with a failed client (no hello, a JA3/JA4 tshark
// disagrees with) writes nothing; FP_ONLY refuses the committed table; every entry records its origin.
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ja4Entries } from '../../src/verdict/ja4-table.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const isRoot = process.getuid?.() === 0;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsd-fptest-'));
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
  spawnSync('ip', ['netns', 'del', 'tsd-fp']);
});

interface Origin { host: string; kernel: string; machine: string; run: string }
interface Entry { ja4: string; library: string; client: string; origin?: Origin }
interface Table { host?: string; mergedFrom?: string[]; entries: Entry[] }
const readTable = (file: string): Table => JSON.parse(fs.readFileSync(file, 'utf8')) as Table;
const COMMITTED = path.join(ROOT, 'resources/fingerprints/ja4.json');

describe('committed fingerprint table', () => {
  it('records an origin for every entry, and its consumer still reads every entry', () => {
    const t = readTable(COMMITTED);
    for (const e of t.entries) {
      expect(e.origin, `${e.client} has no origin`).toBeDefined();
      for (const k of ['host', 'kernel', 'machine', 'run'] as const) expect(typeof e.origin![k], `${e.client} origin.${k}`).toBe('string');
    }
    expect(ja4Entries().length).toBe(t.entries.length);
  });
});

describe.skipIf(!isRoot)('fingerprint generation with real clients', () => {
  it('agrees with tshark for every client and matches the committed table', () => {
    const r = spawnSync(process.execPath, ['scripts/gen-fingerprints.mjs', '--out', path.join(work, 'ja4.json'), '--fixtures-dir', work], {
      cwd: ROOT, encoding: 'utf8', timeout: 170_000,
      // chromium is slow to start and has no stable JA3; the rest cover every library once
      env: { ...process.env, FP_ONLY: 'curl,openssl-s_client,python-urllib,node-https,wget,gnutls-cli,openssl-s_client-dtls,gnutls-cli-dtls,java-httpclient,go-net-http,nss-tstclnt' },
    });
    expect(r.status, r.stderr).toBe(0);
    const live = (JSON.parse(fs.readFileSync(path.join(work, 'ja4.json'), 'utf8')) as { entries: Entry[] }).entries;
    const committed = (JSON.parse(fs.readFileSync(path.join(ROOT, 'resources/fingerprints/ja4.json'), 'utf8')) as { entries: Entry[] }).entries;
    expect(new Set(live.map((e) => e.library))).toEqual(new Set(['openssl', 'gnutls', 'java-jsse', 'go-crypto-tls', 'nss']));
    // a client named with its version ("openssl s_client 3.0.22", "java 17.0.21.1 HttpClient") is matched by name
    // alone when this machine has another point release than the one the table was made with: its fingerprint must
    // still be the committed one
    const family = (client: string): string => client.replace(/ \d+(\.\d+)+(?= |$)/, '');
    for (const e of live) {
      const c = committed.find((x) => x.client === e.client) ?? committed.find((x) => family(x.client) === family(e.client));
      expect(c, `${e.client} is missing from resources/fingerprints/ja4.json: re-run scripts/gen-fingerprints.mjs --fixtures`).toBeDefined();
      expect(c!.ja4, `${e.client} fingerprint changed: re-run scripts/gen-fingerprints.mjs --fixtures`).toBe(e.ja4);
      expect(c!.library).toBe(e.library);
    }
    // (DTLS's fingerprints too: the d prefix)
    expect(live.filter((e) => e.ja4.startsWith('d')).map((e) => e.library).sort()).toEqual(['gnutls', 'openssl']);
    // the namespace and its hosts file are gone afterwards
    expect(fs.existsSync('/etc/netns/tsd-fp')).toBe(false);
  });

  it('refuses FP_ONLY to the default table and fixtures without --merge, touching neither', () => {
    // (a copy of the script in its own tree, so its default table and fixtures are the copy's even if it wrote them)
    const tree = path.join(work, 'tree');
    fs.mkdirSync(path.join(tree, 'scripts'), { recursive: true });
    fs.mkdirSync(path.join(tree, 'resources/fingerprints'), { recursive: true });
    fs.mkdirSync(path.join(tree, 'test'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'scripts/gen-fingerprints.mjs'), path.join(tree, 'scripts/gen-fingerprints.mjs'));
    for (const d of ['src', 'node_modules', 'test/lib']) fs.symlinkSync(path.join(ROOT, d), path.join(tree, d));
    const table = path.join(tree, 'resources/fingerprints/ja4.json');
    fs.copyFileSync(COMMITTED, table);
    const run = (args: string[]) => spawnSync(process.execPath, [path.join(tree, 'scripts/gen-fingerprints.mjs'), ...args], {
      cwd: tree, encoding: 'utf8', timeout: 60_000, env: { ...process.env, FP_ONLY: 'curl', TMPDIR: work },
    });
    const noOut = run([]);
    expect(noOut.status, noOut.stderr).not.toBe(0);
    expect(noOut.stderr).toMatch(/FP_ONLY .*--out FILE, or --merge/);
    const fixtures = run(['--out', path.join(work, 'fponly.json'), '--fixtures']);
    expect(fixtures.status, fixtures.stderr).not.toBe(0);
    expect(fixtures.stderr).toMatch(/FP_ONLY .*--fixtures-dir DIR/);
    expect(fs.readFileSync(table, 'utf8')).toBe(fs.readFileSync(COMMITTED, 'utf8'));
    expect(fs.existsSync(path.join(work, 'fponly.json'))).toBe(false);
    expect(fs.existsSync(path.join(tree, 'test/fixtures'))).toBe(false);
  });

  it('fails naming the client and writes nothing when a client sends no ClientHello', () => {
    // (outside tsd-fp, in a bare network namespace, curl cannot resolve the server's name: no hello)
    const out = path.join(work, 'nohello.json');
    const r = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" --import tsx scripts/gen-fingerprints.mjs --inside --out "$1" --fixtures-dir "$2"',
      process.execPath, out, path.join(work, 'nohello-fixtures')], {
      cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, FP_ONLY: 'curl,openssl-s_client-dtls', TMPDIR: work },
    });
    expect(r.stderr).toMatch(/openssl-s_client-dtls: hello captured/);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/FAILED curl: no ClientHello/);
    expect(r.stderr).toMatch(/client\(s\) failed \(curl\): wrote nothing/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(path.join(work, 'nohello-fixtures'))).toBe(false);
  });

  it('fails and writes nothing when tshark disagrees with a JA3', () => {
    // (a tshark that reports every JA3 hash as zeros)
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    const real = spawnSync('sh', ['-c', 'command -v tshark'], { encoding: 'utf8' }).stdout.trim();
    fs.writeFileSync(path.join(bin, 'tshark'), `#!/bin/sh
case " $* " in
  *" fields "*) ${real} "$@" | sed -E 's/\\b[0-9a-f]{32}\\b/00000000000000000000000000000000/g' ;;
  *) exec ${real} "$@" ;;
esac
`, { mode: 0o755 });
    const out = path.join(work, 'mismatch.json');
    const r = spawnSync(process.execPath, ['scripts/gen-fingerprints.mjs', '--out', out], {
      cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, FP_ONLY: 'curl', TMPDIR: work, PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    expect(r.stderr).toMatch(/curl: MISMATCH .* vs tshark \S+ 0{32}/);
    expect(r.status, r.stderr).toBe(1);
    expect(fs.existsSync(out)).toBe(false);
    expect(r.stderr).toMatch(/FAILED curl: JA3\/JA4 disagrees with tshark/);
  });

  it('records each entry\'s origin and keeps the older entries\' origin through --merge', () => {
    const committed = readTable(COMMITTED);
    const out = path.join(work, 'merge.json');
    // an entry from before entries had an origin (the table's host string is this machine's: equal strings may be
    // another machine), and one from another machine with its origin
    const other: Origin = { host: committed.host!, kernel: '5.10.0-other', machine: '0123456789ab', run: '2026-01-01T00:00:00.000Z' };
    const legacy = { ja4: 't13d0000h2_000000000000_000000000001', ja3: null, library: 'openssl', libraryVersion: '1', client: 'legacy client', source: 'captured' };
    const foreign = { ...legacy, ja4: 't13d0000h2_000000000000_000000000002', client: 'foreign client', origin: other };
    fs.writeFileSync(out, JSON.stringify({ generatedBy: 'scripts/gen-fingerprints.mjs', host: committed.host, entries: [legacy, foreign] }));
    const r = spawnSync(process.execPath, ['scripts/gen-fingerprints.mjs', '--merge', '--out', out], {
      cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, FP_ONLY: 'curl', TMPDIR: work },
    });
    expect(r.status, r.stderr).toBe(0);
    const t = readTable(out);
    expect(t.entries.map((e) => e.client)).toEqual(['legacy client', 'foreign client', expect.stringMatching(/^curl /)]);
    expect(t.entries[0]!.origin).toEqual({ host: committed.host, kernel: 'unrecorded', machine: 'unrecorded', run: 'unrecorded' });
    expect(t.entries[1]!.origin).toEqual(other);
    const mine = t.entries[2]!.origin!;
    expect(mine.kernel).toBe(os.release());
    expect(mine.machine).toMatch(/^[0-9a-f]{12}$/);
    expect(mine.machine).not.toBe(other.machine);
    expect(Number.isNaN(Date.parse(mine.run))).toBe(false);
    expect(t.mergedFrom).toContain(committed.host);
  });
});
