// The key log reader and TLS record decryption, on real OpenSSL connections (Python's ssl over memory BIOs: both
// directions' bytes as they would cross the wire, and the client's SSLKEYLOGFILE lines).
import { execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { KeyLog, RecordDecryptor, connectionKeys, expandLabel, helloRandom, prf10, prf12 } from '../../src/dissect/tls-keylog.js';
import { parseServerHello } from '../../src/dissect/tls.js';
import { isTapscopeError } from '../../src/errors.js';
import { makePairCert, tlsPair, type TlsPair, type TlsPairVersion } from '../lib/tls-memory-pair.js';

type Pair = TlsPair;
let dir = '';
const pair = (version: TlsPairVersion, cipher: string, noEncryptThenMac = false): Pair => tlsPair(dir, version, cipher, { noEncryptThenMac });

/** Both directions decrypted with the pair's key log, fed in pieces of `piece` bytes (0: whole). */
function decrypt(p: Pair, keylogText = p.keylog, piece = 0): { c2s: string; s2c: string; dc: RecordDecryptor; ds: RecordDecryptor; keys: ReturnType<typeof connectionKeys> | null } {
  const log = new KeyLog();
  log.add(keylogText, 'test.keys');
  const out = { c2s: [] as Buffer[], s2c: [] as Buffer[] };
  const dc = new RecordDecryptor((b) => out.c2s.push(b));
  const ds = new RecordDecryptor((b) => out.s2c.push(b));
  const feed = (d: RecordDecryptor, b: Buffer): void => {
    if (piece === 0) d.push(b);
    else for (let i = 0; i < b.length; i += piece) d.push(b.subarray(i, i + piece));
  };
  // (the client's stream first, as a capture gives it before the server's hello is read)
  feed(dc, p.c2s);
  const secrets = log.get(helloRandom(p.c2s)!);
  const sh = parseServerHello(p.s2c);
  let keys: ReturnType<typeof connectionKeys> | null = null;
  if (secrets && sh && sh !== 'incomplete') {
    keys = connectionKeys(secrets, { clientRandom: helloRandom(p.c2s)!, serverRandom: helloRandom(p.s2c)!, version: sh.selectedVersion, cipher: sh.cipher });
    if (typeof keys !== 'string') {
      dc.setKeys(keys.c2s);
      ds.setKeys(keys.s2c);
    }
  }
  feed(ds, p.s2c);
  return { c2s: Buffer.concat(out.c2s).toString('latin1'), s2c: Buffer.concat(out.s2c).toString('latin1'), dc, ds, keys };
}

const REQUESTS = 'GET /first HTTP/1.1\r\nHost: keylog.test\r\n\r\nGET /second HTTP/1.1\r\nHost: keylog.test\r\n\r\n';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tapscope-keylog-'));
  makePairCert(dir);
});

describe('TLS key log decryption (real OpenSSL records)', () => {
  // (the CBC suites: HMAC-SHA1, -SHA256 and -SHA384, with RSA and ECDHE key exchange; encrypt-then-MAC, as OpenSSL
  // negotiates it, and MAC-then-encrypt; TLS 1.0's records chain their IVs, TLS 1.1's carry them)
  const cases: [TlsPairVersion, string, string, 'mac-then-encrypt'?][] = [
    ['1.3', 'TLS_AES_128_GCM_SHA256', 'TLS_AES_128_GCM_SHA256'],
    ['1.3', 'TLS_AES_256_GCM_SHA384', 'TLS_AES_256_GCM_SHA384'],
    ['1.3', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_CHACHA20_POLY1305_SHA256'],
    ['1.2', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'],
    ['1.2', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384'],
    ['1.2', 'ECDHE-RSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'],
    ['1.2', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA'],
    ['1.2', 'ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES256-SHA384'],
    ['1.2', 'AES128-SHA256', 'AES128-SHA256'],
    ['1.2', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA', 'mac-then-encrypt'],
    ['1.2', 'ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES256-SHA384', 'mac-then-encrypt'],
    ['1.2', 'AES256-SHA', 'AES256-SHA', 'mac-then-encrypt'],
    ['1.1', 'ECDHE-RSA-AES256-SHA', 'ECDHE-RSA-AES256-SHA'],
    ['1.1', 'AES128-SHA', 'AES128-SHA', 'mac-then-encrypt'],
    ['1.0', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA'],
    ['1.0', 'AES256-SHA', 'AES256-SHA', 'mac-then-encrypt'],
  ];
  for (const [version, cipher, expected, mte] of cases) {
    it(`TLS ${version} ${cipher}${mte ? ` (${mte})` : ''}: both directions' application data, whole and in 1..97-byte pieces`, () => {
      const p = pair(version, cipher, mte !== undefined);
      expect(p.cipher).toBe(expected);
      expect(p.version).toBe(version === '1.0' ? 'TLSv1' : `TLSv${version}`);
      for (const piece of [0, 1, 7, 97]) {
        const r = decrypt(p, p.keylog, piece);
        expect(r.dc.failed).toBeNull();
        expect(r.ds.failed).toBeNull();
        expect(r.c2s).toBe(REQUESTS);
        expect(r.s2c).toBe(p.answers.join(''));
        expect(r.dc.records).toBe(2);
        // (a CBC connection's records were read as the kind they are)
        const keys = r.keys as Exclude<ReturnType<typeof connectionKeys>, string>;
        const modes = [keys.c2s, keys.s2c].map((k) => (k.tls13 ? undefined : k.protection.etm));
        expect(modes).toEqual(/GCM|CHACHA/.test(cipher) ? [undefined, undefined] : mte ? [false, false] : [true, true]);
      }
    });
  }

  it('TLS 1.3 with the application secrets only (no handshake secrets): the handshake records are passed over', () => {
    const p = pair('1.3', '-');
    const only = p.keylog.split('\n').filter((l) => /^(CLIENT|SERVER)_TRAFFIC_SECRET_0 /.test(l)).join('\n');
    const r = decrypt(p, only);
    expect(r.c2s).toBe(REQUESTS);
    expect(r.s2c).toBe(p.answers.join(''));
  });

  it('secrets of another connection: nothing decrypted, and says why', () => {
    const p13 = pair('1.3', '-');
    const other13 = pair('1.3', '-');
    const mine = helloRandom(p13.c2s)!.toString('hex');
    const theirs = helloRandom(other13.c2s)!.toString('hex');
    // (the other connection's secrets filed under this one's random)
    const r = decrypt(p13, other13.keylog.replaceAll(theirs, mine));
    expect(r.c2s).toBe('');
    expect(r.dc.failed).toMatch(/^none of its \d+ protected records opened with the key log's secrets/);
    const p12 = pair('1.2', 'ECDHE-RSA-AES128-GCM-SHA256');
    const other12 = pair('1.2', 'ECDHE-RSA-AES128-GCM-SHA256');
    const r12 = decrypt(p12, other12.keylog.replaceAll(helloRandom(other12.c2s)!.toString('hex'), helloRandom(p12.c2s)!.toString('hex')));
    expect(r12.c2s).toBe('');
    expect(r12.dc.failed).toBe("record 0 did not authenticate with the key log's master secret");
  });

  it('a record altered on the way fails that direction from there, with the record named', () => {
    const p = pair('1.3', '-');
    const s2c = Buffer.from(p.s2c);
    s2c[s2c.length - 3]! ^= 1;
    const r = decrypt({ ...p, s2c });
    expect(r.ds.failed).toMatch(/^record \d+ did not authenticate/);
    expect(r.s2c).toBe(p.answers[0]);
    expect(r.c2s).toBe(REQUESTS);
    // (a CBC record's MAC, either kind: a byte of its ciphertext, of its MAC, or of its IV altered; TLS 1.0's records
    // carry no IV, and the last one is shorter: OpenSSL splits a TLS 1.0 record's first byte off, against BEAST)
    for (const version of ['1.2', '1.0'] as const) {
      for (const mte of [false, true]) {
        const q = pair(version, 'ECDHE-RSA-AES128-SHA', mte);
        for (const back of [3, 40, version === '1.0' ? 60 : 70]) {
          const bad = Buffer.from(q.s2c);
          bad[bad.length - back]! ^= 1;
          const rq = decrypt({ ...q, s2c: bad });
          expect(rq.ds.failed, `TLS ${version}, ${mte ? 'mac-then-encrypt' : 'encrypt-then-mac'}, byte -${back}`).toMatch(/^record \d+ did not authenticate/);
          expect(rq.s2c).toBe(q.answers[0]);
        }
      }
    }
  });

  it('no secrets for the connection, and keys that do not fit: said, not guessed', () => {
    const p12 = pair('1.2', 'ECDHE-RSA-AES128-GCM-SHA256');
    const p13 = pair('1.3', '-');
    const log = new KeyLog();
    log.add(p13.keylog, 'k');
    expect(log.get(helloRandom(p12.c2s)!)).toBeUndefined();
    const secrets13 = log.get(helloRandom(p13.c2s)!)!;
    const sh = parseServerHello(p12.s2c) as { cipher: number };
    // (a TLS 1.3 log's secrets for a TLS 1.2 handshake: no master secret)
    expect(connectionKeys(secrets13, { clientRandom: helloRandom(p12.c2s)!, serverRandom: helloRandom(p12.s2c)!, version: 0x0303, cipher: sh.cipher }))
      .toBe('the key log has no master secret for it (CLIENT_RANDOM)');
    // (3DES and RC4: not decrypted here)
    expect(connectionKeys(secrets13, { clientRandom: Buffer.alloc(32), serverRandom: Buffer.alloc(32), version: 0x0303, cipher: 0x000a }))
      .toMatch(/^its cipher suite \(0x000a\) is not one decrypted here/);
    // (a suite that came with TLS 1.2, in an older version's handshake; SSL 3.0, whose MAC is no HMAC)
    const master = { master: Buffer.alloc(48, 1) };
    const hs = { clientRandom: Buffer.alloc(32), serverRandom: Buffer.alloc(32) };
    expect(connectionKeys(master, { ...hs, version: 0x0301, cipher: 0x003c })).toBe('TLS_RSA_WITH_AES_128_CBC_SHA256 is no suite of TLS 1.0');
    expect(connectionKeys(master, { ...hs, version: 0x0302, cipher: 0xc02f })).toBe('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 is no suite of TLS 1.1');
    expect(connectionKeys(master, { ...hs, version: 0x0303, cipher: 0x1301 })).toBe('TLS_AES_128_GCM_SHA256 is no suite of TLS 1.2');
    expect(connectionKeys(master, { ...hs, version: 0x0300, cipher: 0x002f })).toBe('SSL 3.0 is not decrypted here (TLS 1.0 to 1.3 are)');
  });

  it('the records before the server hello wait for the keys; a stream that is no TLS stops with its offset', () => {
    const p = pair('1.2', 'ECDHE-RSA-AES128-GCM-SHA256');
    const got: Buffer[] = [];
    const d = new RecordDecryptor((b) => got.push(b));
    d.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
    expect(d.failed).toBeNull();
    const keys = decrypt(p).keys;
    if (!keys || typeof keys === 'string') throw new Error('no keys');
    d.setKeys(keys.c2s);
    expect(d.failed).toMatch(/^its stream is not TLS records at byte 0/);
    expect(got).toEqual([]);
  });
});

/** A TLS 1.3 record sealed as RFC 8446 §5.2 says (AES-128-GCM), for what no client here does on demand (KeyUpdate). */
function seal13(secret: Buffer, seq: number, type: number, content: Buffer): Buffer {
  const key = expandLabel('sha256', secret, 'key', 16);
  const nonce = expandLabel('sha256', secret, 'iv', 12);
  nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ seq) >>> 0, 8);
  const inner = Buffer.concat([content, Buffer.of(type)]);
  const header = Buffer.from([0x17, 0x03, 0x03, (inner.length + 16) >> 8, (inner.length + 16) & 0xff]);
  const c = createCipheriv('aes-128-gcm', key, nonce);
  c.setAAD(header);
  const body = Buffer.concat([c.update(inner), c.final(), c.getAuthTag()]);
  return Buffer.concat([header, body]);
}

describe('TLS 1.3 KeyUpdate', () => {
  it('the records after a KeyUpdate are read with the next traffic secret, from sequence 0', () => {
    const s0 = randomBytes(32);
    const s1 = expandLabel('sha256', s0, 'traffic upd', 32);
    const stream = Buffer.concat([
      seal13(s0, 0, 23, Buffer.from('before ')),
      // KeyUpdate (type 24, length 1, update_not_requested), then the old keys are done with
      seal13(s0, 1, 22, Buffer.from([24, 0, 0, 1, 0])),
      seal13(s1, 0, 23, Buffer.from('after ')),
      seal13(s1, 1, 23, Buffer.from('and on')),
    ]);
    const got: Buffer[] = [];
    const d = new RecordDecryptor((b) => got.push(b));
    const random = Buffer.alloc(32, 7);
    const log = new KeyLog();
    log.add(`CLIENT_TRAFFIC_SECRET_0 ${random.toString('hex')} ${s0.toString('hex')}\n`, 'k');
    const keys = connectionKeys(log.get(random)!, { clientRandom: random, serverRandom: Buffer.alloc(32), version: 0x0304, cipher: 0x1301 });
    if (typeof keys === 'string') throw new Error(keys);
    d.setKeys(keys.c2s);
    d.push(stream);
    expect(d.failed).toBeNull();
    expect(Buffer.concat(got).toString()).toBe('before after and on');
    expect(d.records).toBe(3);
  });
});

describe('key log lines', () => {
  it('reads the NSS format: comments, unknown labels skipped; lines kept per connection for an export', () => {
    const r = 'ab'.repeat(32);
    const log = new KeyLog();
    const n = log.add(`# comment\n\nCLIENT_RANDOM ${r.toUpperCase()} ${'11'.repeat(48)}\r\nRSA 0011223344556677 ${'22'.repeat(48)}\nEXPORTER_SECRET ${r} ${'33'.repeat(32)}\n`, 'k');
    expect(n).toBe(2);
    expect(log.skipped).toBe(1);
    expect(log.size).toBe(1);
    expect(log.get(Buffer.from(r, 'hex'))!.master).toEqual(Buffer.from('11'.repeat(48), 'hex'));
    expect(log.linesFor([r, 'cd'.repeat(32)])).toBe(`CLIENT_RANDOM ${r.toUpperCase()} ${'11'.repeat(48)}\nEXPORTER_SECRET ${r} ${'33'.repeat(32)}\n`);
    // (the same lines again, as a session's keys.log and the secrets block in its capture both hold them: kept once)
    log.add(`EXPORTER_SECRET ${r} ${'33'.repeat(32)}\nCLIENT_RANDOM ${r.toUpperCase()} ${'11'.repeat(48)}\n`, 'again');
    expect(log.linesFor([r])).toBe(`CLIENT_RANDOM ${r.toUpperCase()} ${'11'.repeat(48)}\nEXPORTER_SECRET ${r} ${'33'.repeat(32)}\n`);
  });

  it('a mangled line of a known label is an error with its line number', () => {
    for (const bad of [`CLIENT_RANDOM ${'ab'.repeat(31)} ${'11'.repeat(48)}`, `CLIENT_RANDOM ${'ab'.repeat(32)} ${'11'.repeat(47)}`,
      `SERVER_TRAFFIC_SECRET_0 ${'ab'.repeat(32)} xyz`, `CLIENT_TRAFFIC_SECRET_0 ${'ab'.repeat(32)}`]) {
      let err: unknown = null;
      try { new KeyLog().add(`# ok\n${bad}\n`, 'keys.txt'); } catch (e) { err = e; }
      expect(isTapscopeError(err, 'E_KEYLOG')).toBe(true);
      expect((err as Error).message).toMatch(/^keys\.txt: line 2 is not a key log line/);
    }
  });

  it('derivations match RFC 8448 and a TLS 1.2 PRF test vector', () => {
    // RFC 8448 §3 (simple 1-RTT): server handshake traffic secret -> its write key and IV
    const shts = Buffer.from('b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38', 'hex');
    expect(expandLabel('sha256', shts, 'key', 16).toString('hex')).toBe('3fce516009c21727d0f2e4e86ee403bc');
    expect(expandLabel('sha256', shts, 'iv', 12).toString('hex')).toBe('5d313eb2671276ee13000b30');
    // the TLS 1.2 PRF (SHA-256) vector published with the IETF TLS list's test vectors
    const out = prf12('sha256', Buffer.from('9bbe436ba940f017b17652849a71db35', 'hex'), 'test label', Buffer.from('a0ba9f936cda311827a6f796ffd5198c', 'hex'), 100);
    expect(out.subarray(0, 16).toString('hex')).toBe('e3f229ba727be17b8d122620557cd453');
    // the TLS 1.0/1.1 PRF against OpenSSL's (its TLS1-PRF with MD5-SHA1), for a secret of even and of odd length (the
    // halves then share the middle byte)
    for (const secret of [randomBytes(48), randomBytes(47)]) {
      const seed = randomBytes(64);
      const openssl = execFileSync('openssl', ['kdf', '-keylen', '104', '-kdfopt', 'digest:MD5-SHA1', '-kdfopt', `hexsecret:${secret.toString('hex')}`,
        '-kdfopt', `hexseed:${Buffer.concat([Buffer.from('key expansion'), seed]).toString('hex')}`, 'TLS1-PRF'], { encoding: 'utf8' });
      expect(prf10(secret, 'key expansion', seed, 104).toString('hex')).toBe(openssl.trim().replaceAll(':', '').toLowerCase());
    }
  });
});
