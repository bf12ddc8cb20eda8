// TLS decryption with a key log: the NSS key log format (SSLKEYLOGFILE) that curl, Firefox, Chrome, Python's
// ssl, Node's 'keylog' event, Go's KeyLogWriter, GnuTLS, NSS and rustls write, and that Wireshark reads
// (tls.keylog_file, or a pcapng Decryption Secrets Block). With the secrets of a connection its TLS records are
// decrypted here: TLS 1.3 (every suite but the CCM ones), TLS 1.2's AEAD suites (AES-GCM, ChaCha20-Poly1305) and
// AES-CBC suites (HMAC-SHA1/SHA256/SHA384, MAC-then-encrypt or encrypt-then-MAC: older servers, Java 8's defaults), and
// TLS 1.0's and 1.1's AES-CBC suites (devices and servers that never moved on).
// This is what gives plaintext for the libraries no hook reaches (Java's JSSE with a key log agent, rustls).
//
// Record protection follows RFC 8446 §5.2–5.3 and §7.1 (TLS 1.3), RFC 5246 §5, §6.2.3.2–6.2.3.3 with RFC 5288,
// RFC 7905 (TLS 1.2 AEAD), RFC 7366 (encrypt-then-MAC), and RFC 2246 and RFC 4346 (TLS 1.0, 1.1: their PRF, TLS 1.0's
// chained IVs).
import { createDecipheriv, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TapscopeError } from '../errors.js';
import type { EarlyDataStatus } from '../model/flow.js';
import { MAX_RECORD, cipherName, tlsVersionName } from './tls.js';

/** The secrets a key log holds for one connection (by its ClientHello's random). */
export interface ConnectionSecrets {
  /** TLS 1.2 and below: the 48-byte master secret (CLIENT_RANDOM) */
  master?: Buffer;
  clientHandshake?: Buffer;
  serverHandshake?: Buffer;
  /** TLS 1.3 application traffic secrets (CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0) */
  client0?: Buffer;
  server0?: Buffer;
  /** TLS 1.3 early data (0-RTT) the client sent on a resumed session (CLIENT_EARLY_TRAFFIC_SECRET) */
  clientEarly?: Buffer;
}

const LABELS: Record<string, keyof ConnectionSecrets | null> = {
  CLIENT_RANDOM: 'master',
  CLIENT_HANDSHAKE_TRAFFIC_SECRET: 'clientHandshake',
  SERVER_HANDSHAKE_TRAFFIC_SECRET: 'serverHandshake',
  CLIENT_TRAFFIC_SECRET_0: 'client0',
  SERVER_TRAFFIC_SECRET_0: 'server0',
  CLIENT_EARLY_TRAFFIC_SECRET: 'clientEarly',
  // (known, not needed to read application data)
  EXPORTER_SECRET: null,
  EARLY_EXPORTER_SECRET: null,
};

const HEX = /^[0-9a-fA-F]+$/;

/** A key log's secrets by client random; lines are added from files or from a capture's Decryption Secrets Blocks. */
export class KeyLog {
  private readonly byRandom = new Map<string, ConnectionSecrets>();
  /** the lines that gave them, by client random (hex, lower case): what an export embeds for its flows */
  private readonly linesOf = new Map<string, string[]>();
  /** lines skipped: labels this reader has no use for (RSA premaster lines, unknown labels) */
  skipped = 0;

  /** Connections the log has secrets for. */
  get size(): number {
    return this.byRandom.size;
  }

  /**
   * Adds the lines of a key log. `source` names it in errors. Comments (#) and blank lines are skipped, and so are
   * lines with labels it does not use; a line with a known label whose values are not hex of the right length is an
   * error (E_KEYLOG), with its line number: a key log cut or mangled in a copy would otherwise decrypt nothing, silently.
   * Returns how many lines gave secrets. `firstLine`: the number of the text's first line in its file.
   */
  add(text: string, source: string, firstLine = 1): number {
    let used = 0;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const parts = line.split(/\s+/);
      const label = parts[0]!;
      if (!(label in LABELS)) {
        this.skipped++;
        continue;
      }
      const [, random, secret] = parts;
      const secretLen = label === 'CLIENT_RANDOM' ? 48 : null;
      if (parts.length !== 3 || !HEX.test(random!) || random!.length !== 64 || !HEX.test(secret!) || secret!.length % 2 !== 0 ||
        (secretLen !== null ? secret!.length !== secretLen * 2 : ![64, 96].includes(secret!.length))) {
        const n = firstLine + i;
        throw new TapscopeError('E_KEYLOG', `${source}: line ${n} is not a key log line: "${label} <64 hex digits of the client random> <${secretLen !== null ? '96 hex digits of the master secret' : 'the secret in hex (32 or 48 bytes)'}>" expected`, { line: n });
      }
      const key = random!.toLowerCase();
      const field = LABELS[label];
      const known = this.linesOf.get(key);
      // (a line seen before adds nothing: a session's keys.log and the secrets block written into its capture hold the same)
      if (known) { if (!known.includes(line)) known.push(line); }
      else this.linesOf.set(key, [line]);
      used++;
      if (field === null || field === undefined) continue;
      let s = this.byRandom.get(key);
      if (!s) this.byRandom.set(key, (s = {}));
      s[field] = Buffer.from(secret!, 'hex');
    }
    return used;
  }

  /** The secrets for the connection whose ClientHello carried `random` (32 bytes). */
  get(random: Buffer): ConnectionSecrets | undefined {
    return this.byRandom.size === 0 ? undefined : this.byRandom.get(random.toString('hex'));
  }

  /** The key log lines of the connections with these client randoms (hex), as a key log file's text. */
  linesFor(randoms: Iterable<string>): string {
    const out: string[] = [];
    for (const r of randoms) out.push(...(this.linesOf.get(r) ?? []));
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }
}

/**
 * Key log files (--keylog, a session's), read into one (`into` when given; null without any). A file that is missing,
 * unreadable or holds no TLS secrets is an error: a key log that decrypts nothing would otherwise look like traffic
 * that was not there.
 */
export function readKeyLogs(paths: string[], into?: KeyLog): KeyLog | null {
  if (paths.length === 0) return into ?? null;
  const log = into ?? new KeyLog();
  for (const p of paths) readKeyLogFile(p, log);
  return log;
}

/** The error for a key log file that cannot be opened or read: missing (E_FILE_NOT_FOUND), else E_KEYLOG with why. */
export function keyLogReadError(path: string, e: unknown): TapscopeError {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new TapscopeError('E_FILE_NOT_FOUND', `no such key log: ${path}`);
  return new TapscopeError('E_KEYLOG', `cannot read the key log ${path}: ${(e as Error).message}`);
}

/** One key log file added to `log` (errors as readKeyLogs says); returns its text. */
export function readKeyLogFile(path: string, log: KeyLog = new KeyLog()): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw keyLogReadError(path, e);
  }
  if (log.add(text, path) === 0) {
    throw new TapscopeError('E_KEYLOG', `${path} holds no TLS secrets: a key log has lines such as "CLIENT_RANDOM <client random> <master secret>" or "CLIENT_TRAFFIC_SECRET_0 …" (SSLKEYLOGFILE)`);
  }
  return text;
}

export type Aead = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
type MacHash = 'sha1' | 'sha256' | 'sha384';

export interface Suite {
  name: string;
  /** null: a CBC suite (see mac) */
  aead: Aead | null;
  keyLen: number;
  /** the PRF's or HKDF's hash */
  hash: 'sha256' | 'sha384';
  /** a CBC suite's record MAC (HMAC with this hash); null for AEAD suites */
  mac?: MacHash;
}

const AES128 = { aead: 'aes-128-gcm', keyLen: 16, hash: 'sha256' } as const;
const AES256 = { aead: 'aes-256-gcm', keyLen: 32, hash: 'sha384' } as const;
const CHACHA = { aead: 'chacha20-poly1305', keyLen: 32, hash: 'sha256' } as const;

/** The cipher suites this reader decrypts, by their code. */
const SUITES = new Map<number, Suite>([
  [0x1301, { name: 'TLS_AES_128_GCM_SHA256', ...AES128 }],
  [0x1302, { name: 'TLS_AES_256_GCM_SHA384', ...AES256 }],
  [0x1303, { name: 'TLS_CHACHA20_POLY1305_SHA256', ...CHACHA }],
  [0xc02b, { name: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', ...AES128 }],
  [0xc02f, { name: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', ...AES128 }],
  [0x009c, { name: 'TLS_RSA_WITH_AES_128_GCM_SHA256', ...AES128 }],
  [0x009e, { name: 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256', ...AES128 }],
  [0xc02c, { name: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', ...AES256 }],
  [0xc030, { name: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', ...AES256 }],
  [0x009d, { name: 'TLS_RSA_WITH_AES_256_GCM_SHA384', ...AES256 }],
  [0x009f, { name: 'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384', ...AES256 }],
  [0xcca8, { name: 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', ...CHACHA }],
  [0xcca9, { name: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', ...CHACHA }],
  [0xccaa, { name: 'TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256', ...CHACHA }],
]);

/** A TLS 1.3 cipher suite (the AEAD ones QUIC uses) by its code; null for others. */
export function suite13(code: number): Suite | null {
  return code >= 0x1301 && code <= 0x1303 ? SUITES.get(code)! : null;
}

/**
 * A TLS 1.2 AES-CBC suite from its IANA name (TLS_<key exchange>_WITH_AES_<128|256>_CBC_<SHA|SHA256|SHA384>): its key
 * length and record MAC; the PRF is SHA-384's for the _SHA384 suites, SHA-256's for the others (RFC 5246 §5, RFC 5289).
 */
function cbcSuite(code: number): Suite | null {
  const name = cipherName(code);
  const m = /^TLS_[A-Z0-9_]+_WITH_AES_(128|256)_CBC_(SHA|SHA256|SHA384)$/.exec(name);
  if (!m) return null;
  const mac = m[2] === 'SHA' ? 'sha1' : m[2] === 'SHA256' ? 'sha256' : 'sha384';
  return { name, aead: null, keyLen: Number(m[1]) / 8, hash: mac === 'sha384' ? 'sha384' : 'sha256', mac };
}

const MAC_LEN: Record<MacHash, number> = { sha1: 20, sha256: 32, sha384: 48 };

/** HKDF-Expand (RFC 5869 §2.3). */
function hkdfExpand(hash: string, prk: Buffer, info: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let i = 1, n = 0; n < length; i++) {
    t = createHmac(hash, prk).update(t).update(info).update(Buffer.of(i)).digest();
    out.push(t);
    n += t.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** HKDF-Expand-Label (RFC 8446 §7.1), with an empty context. */
export function expandLabel(hash: string, secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.of(length >> 8, length & 0xff, full.length), full, Buffer.of(0)]);
  return hkdfExpand(hash, secret, info, length);
}

/** P_hash (RFC 5246 §5): HMAC-`hash` of `secret` over A(i) + seed, to `length` bytes. */
function pHash(hash: string, secret: Buffer, seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let a = seed;
  for (let n = 0; n < length;) {
    a = createHmac(hash, secret).update(a).digest();
    const block = createHmac(hash, secret).update(a).update(seed).digest();
    out.push(block);
    n += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** The TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed). */
export function prf12(hash: string, secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  return pHash(hash, secret, Buffer.concat([Buffer.from(label, 'latin1'), seed]), length);
}

/**
 * The TLS 1.0 and 1.1 PRF (RFC 2246 §5, RFC 4346 §5): P_MD5 of the secret's first half XOR P_SHA-1 of its second half
 * (halves that share the middle byte when its length is odd).
 */
export function prf10(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  const s = Buffer.concat([Buffer.from(label, 'latin1'), seed]);
  const half = Math.ceil(secret.length / 2);
  const md5 = pHash('md5', secret.subarray(0, half), s, length);
  const sha1 = pHash('sha1', secret.subarray(secret.length - half), s, length);
  for (let i = 0; i < length; i++) md5[i]! ^= sha1[i]!;
  return md5;
}

/** One direction's record protection: its key, its IV (TLS 1.3: the whole nonce base; TLS 1.2 GCM: the 4-byte salt), its next sequence number. */
interface Protection {
  key: Buffer;
  iv: Buffer;
  seq: bigint;
  /** TLS 1.3: the traffic secret the key and IV came from (a KeyUpdate derives the next from it) */
  secret: Buffer | null;
  /** a CBC suite's MAC key */
  macKey?: Buffer;
  /** a CBC suite: whether its records are encrypt-then-MAC (RFC 7366); null until a record told */
  etm?: boolean | null;
  /**
   * TLS 1.0's CBC IV, which its records do not carry: the key block's for the first record, then each record's last
   * ciphertext block (RFC 2246 §6.2.3.2); absent for TLS 1.1 and 1.2, whose records begin with their IV
   */
  chain?: Buffer;
}

function protection13(suite: Suite, secret: Buffer): Protection {
  return { key: expandLabel(suite.hash, secret, 'key', suite.keyLen), iv: expandLabel(suite.hash, secret, 'iv', 12), seq: 0n, secret };
}

/** iv XOR the sequence number, left-padded to the IV's length (TLS 1.3; TLS 1.2 ChaCha20). */
export function xorNonce(iv: Buffer, seq: bigint): Buffer {
  const n = Buffer.from(iv);
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(seq);
  for (let i = 0; i < 8; i++) n[n.length - 8 + i]! ^= s[i]!;
  return n;
}

/** AEAD open; null when the record does not authenticate under these keys. */
export function open(aead: Aead, key: Buffer, nonce: Buffer, aad: Buffer, sealed: Buffer): Buffer | null {
  if (sealed.length < 16) return null;
  const d = createDecipheriv(aead, key, nonce, { authTagLength: 16 } as never) as ReturnType<typeof createDecipheriv> & {
    setAAD(b: Buffer, o?: { plaintextLength: number }): void; setAuthTag(b: Buffer): void;
  };
  d.setAAD(aad, { plaintextLength: sealed.length - 16 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const head = d.update(sealed.subarray(0, sealed.length - 16));
  try {
    const tail = d.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    return null;
  }
}

/** What a connection's handshake told: both randoms, the version and cipher suite the server chose. */
export interface HandshakeParams {
  clientRandom: Buffer;
  serverRandom: Buffer;
  /** the negotiated version (0x0304: TLS 1.3) */
  version: number;
  cipher: number;
}

/** The key log has all the secrets a connection of this version needs (both traffic secrets; TLS 1.2: the master). */
export function secretsComplete(s: ConnectionSecrets | null | undefined, version: number): boolean {
  if (!s) return false;
  return version === 0x0304 ? s.client0 !== undefined && s.server0 !== undefined : s.master !== undefined;
}

/** A connection's record decryption: one per direction, made from its secrets and handshake. */
export type DirectionKeys =
  /** early: the client's early data (0-RTT) */
  | { tls13: true; suite: Suite; app: Protection | null; handshake: Protection | null; early: Protection | null }
  | { tls13: false; suite: Suite; protection: Protection };

/**
 * Both directions' keys from the secrets and the handshake; a string says why there are none (a person reads it:
 * "the key log has no TLS 1.3 traffic secrets for it", "its cipher suite (0x000a) is not one decrypted here ...").
 */
export function connectionKeys(secrets: ConnectionSecrets, hs: HandshakeParams): { c2s: DirectionKeys; s2c: DirectionKeys } | string {
  const suite = SUITES.get(hs.cipher) ?? cbcSuite(hs.cipher);
  if (!suite) return `its cipher suite (0x${hs.cipher.toString(16).padStart(4, '0')}) is not one decrypted here (AES-GCM, ChaCha20-Poly1305 and AES-CBC suites are)`;
  if (hs.version === 0x0304) {
    if (hs.cipher >> 8 !== 0x13) return `${suite.name} is no TLS 1.3 suite`;
    if (!secrets.client0 && !secrets.server0) return 'the key log has no TLS 1.3 traffic secrets for it (CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0)';
    const hashLen = suite.hash === 'sha384' ? 48 : 32;
    for (const s of [secrets.client0, secrets.server0, secrets.clientHandshake, secrets.serverHandshake]) {
      if (s && s.length !== hashLen) return `its secrets are ${s.length} bytes, not the ${hashLen} of ${suite.name}'s hash`;
    }
    const p = (s: Buffer | undefined): Protection | null => (s ? protection13(suite, s) : null);
    // (early data is under the resumed session's suite: the server's only when it accepts it, RFC 8446 §4.2.10; one of
    // another hash is early data the server declined, not read)
    const early = secrets.clientEarly?.length === hashLen ? p(secrets.clientEarly) : null;
    return {
      c2s: { tls13: true, suite, app: p(secrets.client0), handshake: p(secrets.clientHandshake), early },
      s2c: { tls13: true, suite, app: p(secrets.server0), handshake: p(secrets.serverHandshake), early: null },
    };
  }
  const tls10 = hs.version === 0x0301 || hs.version === 0x0302;
  if (hs.version !== 0x0303 && !tls10) return `${tlsVersionName(hs.version)} is not decrypted here (TLS 1.0 to 1.3 are)`;
  // (TLS 1.3's suites are its own; the AEAD suites and the CBC suites with SHA-256/384 MACs came with TLS 1.2)
  if (hs.cipher >> 8 === 0x13 || (tls10 && suite.mac !== 'sha1')) return `${suite.name} is no suite of ${tlsVersionName(hs.version)}`;
  if (!secrets.master) return 'the key log has no master secret for it (CLIENT_RANDOM)';
  const seed = Buffer.concat([hs.serverRandom, hs.clientRandom]);
  if (suite.mac) {
    // (RFC 5246 §6.3: MAC keys, then encryption keys, then TLS 1.0's IVs: TLS 1.1's and 1.2's CBC records carry theirs)
    const [m, k] = [MAC_LEN[suite.mac], suite.keyLen];
    const ivs = hs.version === 0x0301 ? 2 * 16 : 0;
    const block = tls10 ? prf10(secrets.master, 'key expansion', seed, 2 * m + 2 * k + ivs)
      : prf12(suite.hash, secrets.master, 'key expansion', seed, 2 * m + 2 * k);
    const cbc = (macAt: number, keyAt: number, ivAt: number): Protection => {
      const p: Protection = { key: block.subarray(keyAt, keyAt + k), iv: Buffer.alloc(0), seq: 0n, secret: null, macKey: block.subarray(macAt, macAt + m), etm: null };
      if (ivs > 0) p.chain = block.subarray(ivAt, ivAt + 16);
      return p;
    };
    return {
      c2s: { tls13: false, suite, protection: cbc(0, 2 * m, 2 * m + 2 * k) },
      s2c: { tls13: false, suite, protection: cbc(m, 2 * m + k, 2 * m + 2 * k + 16) },
    };
  }
  const ivLen = suite.aead === 'chacha20-poly1305' ? 12 : 4;
  const block = prf12(suite.hash, secrets.master, 'key expansion', seed, 2 * suite.keyLen + 2 * ivLen);
  const k = suite.keyLen;
  return {
    c2s: { tls13: false, suite, protection: { key: block.subarray(0, k), iv: block.subarray(2 * k, 2 * k + ivLen), seq: 0n, secret: null } },
    s2c: { tls13: false, suite, protection: { key: block.subarray(k, 2 * k), iv: block.subarray(2 * k + ivLen, 2 * k + 2 * ivLen), seq: 0n, secret: null } },
  };
}

const CT_CCS = 20;
const CT_ALERT = 21;
const CT_HANDSHAKE = 22;
const CT_APPDATA = 23;
const HS_END_OF_EARLY_DATA = 5;
const HS_ENCRYPTED_EXTENSIONS = 8;
const HS_KEY_UPDATE = 24;
const EXT_EARLY_DATA = 42;
/** TLS 1.3 records that may be the handshake's (keys not known to this log) before the application's first */
const MAX_UNREAD_HANDSHAKE = 32;
/** bytes kept while the server's hello (and so the keys) is not known yet */
const MAX_WAITING = 256 * 1024;

/** The plaintext of one direction's records, as they come; `failed` says why it stopped. */
export class RecordDecryptor {
  private keys: DirectionKeys | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** TLS 1.2: a ChangeCipherSpec was seen, the records after it are protected */
  private protected12 = false;
  private unread = 0;
  /** application data records decrypted */
  records = 0;
  /** why decryption stopped */
  private failure: string | null = null;
  /** the direction's stream stopped being read (a gap, a limit): its records after that cannot be told */
  private stopped = false;
  /**
   * The client's early data (TLS 1.3 0-RTT): records opened with its key, their plaintext held until the client's
   * EndOfEarlyData tells the server took them (a client sends none for early data the server declined, RFC 8446 §4.5);
   * records before the handshake's that opened with no key while the handshake's key was there (early data not read);
   * what became of them (null while the handshake goes on).
   */
  private readonly earlyIn = { records: 0, plain: [] as Buffer[], bytes: 0, unread: 0, outcome: null as 'accepted' | 'rejected' | null };
  /** The server's direction: whether its EncryptedExtensions accepted the client's early data (null: not read). */
  acceptedEarly: boolean | null = null;

  /**
   * `wait`: how many bytes of records it keeps before it has keys, and what it waits for (the server's hello; a followed
   * key log's secrets, which come after the handshake).
   */
  constructor(
    private readonly onPlaintext: (data: Buffer) => void,
    private readonly wait: { bytes: number; for: string } = { bytes: MAX_WAITING, for: "the server's hello" },
  ) {}

  /**
   * Why the direction's plaintext is not (or not all) here: decryption stopped, or (TLS 1.3) none of its protected
   * records so far opened with the key log's secrets; null while it goes well.
   */
  get failed(): string | null {
    if (this.failure !== null) return this.failure;
    return this.unread > 0 ? `none of its ${this.unread} protected records opened with the key log's secrets (secrets of another connection, or altered)` : null;
  }

  /**
   * The client's direction: its early data, when it sent some; `accepted`: the server's direction's acceptedEarly (for
   * early data not read, whether that lost the client's plaintext).
   */
  earlyData(accepted: boolean | null): EarlyDataStatus | null {
    const e = this.earlyIn;
    if (e.outcome === 'accepted') return { status: 'decrypted', records: e.records, reason: null };
    if (e.outcome === 'rejected' || (e.unread > 0 && accepted === false)) return { status: 'rejected', records: e.records + e.unread, reason: null };
    if (e.unread === 0) return null;
    const k = this.keys?.tls13 ? this.keys : null;
    const why = k?.early ? "did not open with the key log's CLIENT_EARLY_TRAFFIC_SECRET (secrets of another connection, or altered)"
      : 'the key log has no CLIENT_EARLY_TRAFFIC_SECRET for it (of the hash of its cipher suite)';
    return { status: 'not-decrypted', records: e.unread, reason: why };
  }

  /** The direction's keys are known (both hellos were read). */
  get hasKeys(): boolean {
    return this.keys !== null;
  }

  /** The direction's keys, once both hellos are known: the records kept so far are read. */
  setKeys(keys: DirectionKeys): void {
    if (this.keys || this.failure) return;
    this.keys = keys;
    this.drain();
  }

  /** Stops for good, with the reason (the other direction's hello told no keys, a gap in the stream). */
  fail(reason: string): void {
    if (this.failure === null) this.failure = reason;
    this.stopped = true;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** The direction's next bytes, from the start of its stream on. */
  push(bytes: Buffer): void {
    if (this.stopped || bytes.length === 0) return;
    // (a copy: the chunk may be a view of the reader's buffer)
    this.pending.push(Buffer.from(bytes));
    this.pendingBytes += bytes.length;
    if (!this.keys) {
      if (this.pendingBytes > this.wait.bytes) this.fail(`its records came before ${this.wait.for}, more than ${this.wait.bytes >> 10} KiB`);
      return;
    }
    this.drain();
  }

  private drain(): void {
    if (this.pending.length === 0) return;
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    let at = 0;
    while (!this.stopped && buf.length - at >= 5) {
      const type = buf[at]!;
      const len = buf.readUInt16BE(at + 3);
      if (type < CT_CCS || type > CT_APPDATA || buf[at + 1] !== 3 || len > MAX_RECORD) {
        this.fail(`its stream is not TLS records at byte ${at} of what was kept (record type ${type}, length ${len})`);
        return;
      }
      if (buf.length - at < 5 + len) break;
      this.record(type, buf.subarray(at, at + 5), buf.subarray(at + 5, at + 5 + len));
      at += 5 + len;
    }
    if (this.stopped) return;
    buf = buf.subarray(at);
    this.pending = buf.length > 0 ? [buf] : [];
    this.pendingBytes = buf.length;
  }

  private record(type: number, header: Buffer, body: Buffer): void {
    const k = this.keys!;
    if (k.tls13) {
      // (hellos, the compatibility ChangeCipherSpec and plain alerts travel unprotected)
      if (type !== CT_APPDATA) return;
      if (this.unread >= 0) {
        // the handshake's records come first, under keys of their own: the application's first record is the first
        // that opens with the application keys at sequence 0 (an AEAD tag does not pass under the wrong key); the
        // client's early data comes before them all, under its own
        const app = k.app ? this.open13(k.app, header, body) : null;
        if (app === null) {
          const hs = k.handshake ? this.open13(k.handshake, header, body) : null;
          if (hs !== null) {
            k.handshake!.seq++;
            this.endEarly();
            if (this.acceptedEarly === null) this.acceptedEarly = encryptedExtensionsEarly(hs);
            return;
          }
          const early = k.early && this.earlyIn.outcome === null ? this.open13(k.early, header, body) : null;
          if (early !== null) { k.early!.seq++; this.earlyRecord(early); return; }
          if (!k.app) { this.fail('the key log has no traffic secret for this direction'); return; }
          if (++this.unread > MAX_UNREAD_HANDSHAKE) this.fail(`none of its first ${MAX_UNREAD_HANDSHAKE} protected records opened with the key log's secrets (secrets of another connection, or altered)`);
          // (the handshake's records are few: a direction whose records never open says so, see failed)
          return;
        }
        this.endEarly();
        this.unread = -1;
        k.app!.seq++;
        this.inner13(k, app);
        return;
      }
      const plain = this.open13(k.app!, header, body);
      if (plain === null) { this.fail(`record ${k.app!.seq} did not authenticate with the key log's secrets`); return; }
      k.app!.seq++;
      this.inner13(k, plain);
      return;
    }
    if (type === CT_CCS) { this.protected12 = true; return; }
    if (!this.protected12) return;
    const p = k.protection;
    const plain = this.open12(k.suite, p, type, header, body);
    if (plain === null) { this.fail(`record ${p.seq} did not authenticate with the key log's master secret`); return; }
    p.seq++;
    if (type === CT_APPDATA && plain.length > 0) {
      this.records++;
      this.onPlaintext(plain);
    }
  }

  /**
   * A record of the client's early data, opened: application data is held (see earlyIn), its EndOfEarlyData hands
   * it on.
   */
  private earlyRecord(plain: Buffer): void {
    const e = this.earlyIn;
    const inner = innerPlaintext(plain);
    if (inner?.type === CT_APPDATA) {
      e.records++;
      if (e.bytes + inner.content.length > MAX_WAITING) { this.fail(`its early data (0-RTT) is over ${MAX_WAITING >> 10} KiB, more than is kept`); return; }
      e.plain.push(inner.content);
      e.bytes += inner.content.length;
    } else if (inner?.type === CT_HANDSHAKE && inner.content[0] === HS_END_OF_EARLY_DATA) {
      e.outcome = 'accepted';
      this.records += e.records;
      for (const b of e.plain) if (b.length > 0) this.onPlaintext(b);
      e.plain = [];
    }
  }

  /**
   * The handshake's keys opened a record of the client's: early data not ended by its EndOfEarlyData was declined; records
   * before that opened with no key were early data not read (counted once the handshake's key told them apart).
   */
  private endEarly(): void {
    const e = this.earlyIn;
    if (e.outcome !== null) return;
    if (e.records > 0) e.outcome = 'rejected';
    e.plain = [];
    if (this.keys?.tls13 && this.keys.handshake && this.unread > 0) {
      e.unread = this.unread;
      this.unread = 0;
    }
  }

  private open13(p: Protection, header: Buffer, body: Buffer): Buffer | null {
    return open(this.keys!.suite.aead!, p.key, xorNonce(p.iv, p.seq), header, body);
  }

  /** TLS 1.3's inner plaintext: content, its type, zero padding. */
  private inner13(k: Extract<DirectionKeys, { tls13: true }>, plain: Buffer): void {
    const inner = innerPlaintext(plain);
    if (!inner) { this.fail('a protected record held no content type'); return; }
    const { type, content } = inner;
    if (type === CT_APPDATA) {
      this.records++;
      if (content.length > 0) this.onPlaintext(content);
    } else if (type === CT_HANDSHAKE) {
      // post-handshake messages: NewSessionTicket (skipped), KeyUpdate (the direction's next keys)
      for (let at = 0; at + 4 <= content.length;) {
        const len = content.readUIntBE(at + 1, 3);
        if (content[at] === HS_KEY_UPDATE) {
          const next = expandLabel(k.suite.hash, k.app!.secret!, 'traffic upd', k.app!.secret!.length);
          k.app = protection13(k.suite, next);
        }
        at += 4 + len;
      }
    } else if (type !== CT_ALERT) {
      this.fail(`a protected record held content type ${type}`);
    }
  }

  private open12(suite: Suite, p: Protection, type: number, header: Buffer, body: Buffer): Buffer | null {
    if (suite.aead === null) return openCbc(suite, p, type, header, body);
    const explicit = suite.aead === 'chacha20-poly1305' ? 0 : 8;
    if (body.length < explicit + 16) return null;
    const nonce = explicit === 0 ? xorNonce(p.iv, p.seq) : Buffer.concat([p.iv, body.subarray(0, 8)]);
    return open(suite.aead, p.key, nonce, pseudoHeader(p.seq, type, header, body.length - explicit - 16), body.subarray(explicit));
  }
}

/** earlyDataTaken of the handshake messages in the server's first protected record (`plain`, opened); null when it holds none. */
function encryptedExtensionsEarly(plain: Buffer): boolean | null {
  const inner = innerPlaintext(plain);
  return inner?.type === CT_HANDSHAKE ? earlyDataTaken(inner.content) : null;
}

/**
 * Whether a server took a client's early data, from its handshake messages (`hs`, from their start: over TCP a
 * record's, in QUIC its Handshake packets' CRYPTO stream): true when its EncryptedExtensions, the first, has the
 * early_data extension (RFC 8446 §4.2.10), false when it has not; null before that message has come whole.
 */
export function earlyDataTaken(hs: Buffer): boolean | null {
  if (hs.length < 6 || hs[0] !== HS_ENCRYPTED_EXTENSIONS) return null;
  const msgEnd = 4 + hs.readUIntBE(1, 3);
  if (hs.length < msgEnd) return null;
  const extEnd = Math.min(msgEnd, 6 + hs.readUInt16BE(4));
  for (let at = 6; at + 4 <= extEnd; at += 4 + hs.readUInt16BE(at + 2)) {
    if (hs.readUInt16BE(at) === EXT_EARLY_DATA) return true;
  }
  return false;
}

/** A TLS 1.3 record's inner plaintext (RFC 8446 §5.2): its content and type, the zero padding after them dropped; null when it is all zeros. */
function innerPlaintext(plain: Buffer): { type: number; content: Buffer } | null {
  let end = plain.length;
  while (end > 0 && plain[end - 1] === 0) end--;
  return end === 0 ? null : { type: plain[end - 1]!, content: plain.subarray(0, end - 1) };
}

/**
 * What a TLS 1.0-1.2 record's MAC, or its AEAD's additional data, covers ahead of the content (RFC 5246 §6.2.3.1,
 * §6.2.3.3): its sequence number, type, version (from its header) and a length.
 */
function pseudoHeader(seq: bigint, type: number, header: Buffer, length: number): Buffer {
  const h = Buffer.alloc(13);
  h.writeBigUInt64BE(seq, 0);
  h[8] = type;
  header.copy(h, 9, 1, 3);
  h.writeUInt16BE(length, 11);
  return h;
}

/**
 * A TLS 1.1 or 1.2 CBC record (RFC 5246 §6.2.3.2): its explicit IV, then the ciphertext of content, MAC and padding
 * (TLS 1.0: no IV, see Protection.chain); or with encrypt-then-MAC (RFC 7366) the MAC after the ciphertext, over IV and
 * ciphertext. Which one a connection uses is told by its first record (the Finished): the one whose MAC verifies. Null
 * when the record does not verify.
 */
function openCbc(suite: Suite, p: Protection, type: number, header: Buffer, body: Buffer): Buffer | null {
  const macLen = p.macKey!.length;
  // (the IV's block and one of ciphertext; TLS 1.0's records carry no IV)
  const least = p.chain ? 16 : 32;
  const mac = (length: number, data: Buffer): Buffer =>
    createHmac(suite.mac!, p.macKey!).update(pseudoHeader(p.seq, type, header, length)).update(data).digest();
  if (p.etm !== false) {
    const sealed = body.subarray(0, Math.max(0, body.length - macLen));
    if (sealed.length >= least && sealed.length % 16 === 0 && mac(sealed.length, sealed).equals(body.subarray(sealed.length))) {
      const plain = cbcDecrypt(suite, p, sealed);
      if (plain === null) return null;
      p.etm = true;
      return plain;
    }
    if (p.etm === true) return null;
  }
  if (body.length < least || body.length % 16 !== 0) return null;
  const plain = cbcDecrypt(suite, p, body);
  if (plain === null || plain.length < macLen) return null;
  const content = plain.subarray(0, plain.length - macLen);
  if (!mac(content.length, content).equals(plain.subarray(content.length))) return null;
  p.etm = false;
  return content;
}

/**
 * AES-CBC of `sealed` (its first block the IV; TLS 1.0: the IV chained from the record before, which this record's
 * last block then replaces), its padding (RFC 5246 §6.2.3.2) removed; null when its length byte says more than there
 * is. (The MAC is what tells the record is whole: the padding's bytes are not checked one by one.)
 */
function cbcDecrypt(suite: Suite, p: Protection, sealed: Buffer): Buffer | null {
  const iv = p.chain ?? sealed.subarray(0, 16);
  const d = createDecipheriv(`aes-${suite.keyLen * 8}-cbc`, p.key, iv).setAutoPadding(false);
  const out = Buffer.concat([d.update(p.chain ? sealed : sealed.subarray(16)), d.final()]);
  // (a record that does not verify stops the direction: the chain need not survive it)
  if (p.chain) p.chain = Buffer.from(sealed.subarray(sealed.length - 16));
  const pad = out[out.length - 1]!;
  return pad + 1 > out.length ? null : out.subarray(0, out.length - 1 - pad);
}

/**
 * The random of the hello at the start of a direction's TLS stream (record header, handshake header, version, then
 * the 32 random bytes); null when the stream does not begin with a ClientHello or ServerHello record that long.
 */
export function helloRandom(stream: Buffer): Buffer | null {
  if (stream.length < 43 || stream[0] !== CT_HANDSHAKE || stream[1] !== 3 || (stream[5] !== 1 && stream[5] !== 2)) return null;
  return Buffer.from(stream.subarray(11, 43));
}

