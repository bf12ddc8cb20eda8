// Runs scripts/gen-fingerprints.mjs against the real TLS clients on this machine (in its own network
// namespace, tsd-fp): every client's JA3/JA4 must agree with tshark, and the committed table
// (resources/fingerprints/ja4.json) must still describe these clients — if a package update changed
// a fingerprint, this fails and says to regenerate.
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const isRoot = process.getuid?.() === 0;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsd-fptest-'));
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
  spawnSync('ip', ['netns', 'del', 'tsd-fp']);
});

interface Entry { ja4: string; library: string; client: string }

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
});
