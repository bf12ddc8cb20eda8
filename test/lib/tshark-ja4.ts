// FoxIO JA4 computed from the ClientHello fields tshark dissected (its own fields, not tapscope's parser): an independent
// check of the core's JA4, for TLS over TCP (tshark's tls.* fields, prefix "t"), QUIC ("q") and DTLS (dtls.* fields,
// prefix "d"). scripts/gen-fingerprints.mjs checks every fingerprint it records against it too.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';

const isGrease = (v: number): boolean => (v & 0x0f0f) === 0x0a0a && (v >> 8) === (v & 0xff);
const hex4 = (v: number): string => v.toString(16).padStart(4, '0');
const sha12 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 12);
const alnum = (c: string): boolean => /^[0-9A-Za-z]$/.test(c);

/** A ClientHello's values as tshark read them, GREASE values included (ja4FromHello drops them). */
export interface TsharkHello {
  ciphers: number[];
  /** extension types, in wire order */
  extensions: number[];
  /** the signature_algorithms extension's (13) values only, in wire order */
  signatureAlgorithms: number[];
  supportedVersions: number[];
  /** the hello's legacy version field, for a hello without supported_versions */
  helloVersion: number;
  /** the first ALPN protocol, '' without ALPN */
  alpn: string;
}

const VERSIONS: Record<number, string> = { 0x0304: '13', 0x0303: '12', 0x0302: '11', 0x0301: '10', 0x0300: 's3', 0xfeff: 'd1', 0xfefd: 'd2', 0xfefc: 'd3' };

/** JA4 of a hello as the FoxIO spec assembles it. */
export function ja4FromHello(h: TsharkHello, transport: 'tcp' | 'quic' | 'dtls'): string {
  const ciphers = h.ciphers.filter((c) => !isGrease(c));
  const exts = h.extensions.filter((e) => !isGrease(e));
  const sigs = h.signatureAlgorithms.filter((s) => !isGrease(s));
  const versions = h.supportedVersions.filter((v) => !isGrease(v));
  // (DTLS's version numbers run backwards: its highest is the smallest)
  const v = versions.length ? (transport === 'dtls' ? Math.min(...versions) : Math.max(...versions)) : h.helloVersion;
  // (an ALPN value whose first or last character is not alphanumeric gives the first and last hex digits of its bytes)
  const a = h.alpn;
  const hexAlpn = Buffer.from(a, 'latin1').toString('hex');
  const alpn = a === '' ? '00' : alnum(a[0]!) && alnum(a.at(-1)!) ? `${a[0]}${a.at(-1)}` : `${hexAlpn[0]}${hexAlpn.at(-1)}`;
  const n2 = (n: number): string => String(Math.min(n, 99)).padStart(2, '0');
  const prefix = transport === 'quic' ? 'q' : transport === 'dtls' ? 'd' : 't';
  const ja4a = `${prefix}${VERSIONS[v] ?? '00'}${exts.includes(0) ? 'd' : 'i'}${n2(ciphers.length)}${n2(exts.length)}${alpn}`;
  const cipherList = ciphers.map(hex4).sort().join(',');
  // (SNI and ALPN are left out of the sorted extensions)
  const extList = exts.filter((e) => e !== 0 && e !== 0x10).map(hex4).sort().join(',');
  const ja4b = cipherList === '' ? '000000000000' : sha12(cipherList);
  const ja4c = extList === '' ? '000000000000' : sha12(sigs.length ? `${extList}_${sigs.map(hex4).join(',')}` : extList);
  return `${ja4a}_${ja4b}_${ja4c}`;
}

const JA4_FIELDS = ['handshake.ciphersuite', 'handshake.extension.type', 'handshake.extensions.supported_version', 'handshake.extensions_alpn_str', 'handshake.version'];

/** A ClientHello as tshark dissected it, and the JA4 of tshark's fields. */
export interface TsharkClientHello {
  /** the client's port (tcp.srcport or udp.srcport) */
  port: number;
  transport: 'tcp' | 'quic' | 'dtls';
  /** tshark's text of each field asked for, by tshark's name (of protocol p: tls.* or dtls.*) */
  row: Record<string, string>;
  ja4: string;
}

/** The values of `key` anywhere below `node` (tshark's JSON tree), inside a subtree whose label starts with `gate`. */
function collect(node: unknown, key: string, gate: string, inside: boolean, out: string[]): string[] {
  if (Array.isArray(node)) {
    for (const n of node) collect(n, key, gate, inside, out);
  } else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === key && inside) out.push(...(Array.isArray(v) ? v.map(String) : [String(v)]));
      else collect(v, key, gate, inside || k.startsWith(gate), out);
    }
  }
  return out;
}

/**
 * Every ClientHello of protocol `p` in `file` (tls: over TCP and in QUIC's Initials; dtls), in packet order, with
 * the `fields` asked for (tshark's names) and its JA4 from tshark's own fields. `decode`: tshark's -d options.
 */
export function tsharkClientHellos(file: string, p: 'tls' | 'dtls', opts: { decode?: string[]; fields?: string[] } = {}): TsharkClientHello[] {
  const ja4Names = JA4_FIELDS.map((f) => `${p}.${f}`);
  const fields = ['tcp.srcport', 'udp.srcport', ...ja4Names, ...(opts.fields ?? []).filter((f) => !ja4Names.includes(f))];
  const filter = `${p}.handshake.type == 1`;
  const tshark = (args: string[]): string => execFileSync('tshark', ['-r', file, ...(opts.decode ?? []), '-Y', filter, ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20 });
  const lines = tshark(['-T', 'fields', ...fields.flatMap((f) => ['-e', f]), '-E', 'separator=\t', '-E', 'aggregator=,', '-E', 'occurrence=a'])
    .split('\n').filter(Boolean);
  // why: tshark's sig_hash_alg field also holds the values of signature_algorithms_cert (50) and delegated_credentials
  // (34); JA4 takes only the signature_algorithms extension's (FoxIO-LLC/ja4#41), so they are read from the tree, the
  // same packets in the same order
  const packets = JSON.parse(tshark(['-T', 'json', '--no-duplicate-keys'])) as { _source: { layers: Record<string, unknown> } }[];
  if (packets.length !== lines.length) throw new Error(`tshark listed ${lines.length} ClientHellos as fields and ${packets.length} as a tree in ${file}`);
  return lines.map((line, i) => {
    const cells = line.split('\t');
    const row = Object.fromEntries(fields.map((f, k) => [f, cells[k] ?? '']));
    const layers = packets[i]!._source.layers;
    const sigs = collect(layers[p] ?? layers.quic, `${p}.handshake.sig_hash_alg`, 'Extension: signature_algorithms (', false, []);
    const nums = (s: string | undefined): number[] => (s ? s.split(',').filter(Boolean).map(Number) : []);
    const tcp = row['tcp.srcport'] !== '';
    const transport = tcp ? 'tcp' : p === 'dtls' ? 'dtls' : 'quic';
    const ja4 = ja4FromHello({
      ciphers: nums(row[`${p}.handshake.ciphersuite`]), extensions: nums(row[`${p}.handshake.extension.type`]), signatureAlgorithms: sigs.map(Number),
      supportedVersions: nums(row[`${p}.handshake.extensions.supported_version`]), helloVersion: nums(row[`${p}.handshake.version`])[0] ?? 0,
      alpn: (row[`${p}.handshake.extensions_alpn_str`] ?? '').split(',')[0] ?? '',
    }, transport);
    return { port: Number(tcp ? row['tcp.srcport'] : row['udp.srcport']), transport, row, ja4 };
  });
}
