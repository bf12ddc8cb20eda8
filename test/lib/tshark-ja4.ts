// FoxIO JA4 computed from the ClientHello fields tshark dissected (its own fields, not tapscope's parser): an independent
// check of the core's JA4, for TLS over TCP (tshark's tls.* fields, prefix "t"), QUIC ("q") and DTLS (dtls.* fields,
// prefix "d"). scripts/gen-fingerprints.mjs checks every fingerprint it records with ja4FromHello too.
import { createHash } from 'node:crypto';

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

/** The tshark fields ja4FromTshark reads, of protocol `p` (tls or dtls), for `-T fields -E occurrence=a -E aggregator=,`. */
export function ja4Fields(p: 'tls' | 'dtls'): string[] {
  return ['handshake.ciphersuite', 'handshake.extension.type', 'handshake.extensions.supported_version', 'handshake.sig_hash_alg', 'handshake.sig_hash_alg_len',
    'handshake.extensions_alpn_str', 'handshake.version'].map((f) => `${p}.${f}`);
}

/** JA4 of one ClientHello row (field name -> tshark's text, the fields of ja4Fields) of protocol `p`, over TCP or UDP. */
export function ja4FromTshark(row: Record<string, string>, p: 'tls' | 'dtls' = 'tls'): string {
  const nums = (k: string): number[] => (row[`${p}.${k}`] ? row[`${p}.${k}`]!.split(',').filter(Boolean).map((x) => Number(x)) : []);
  const extensions = nums('handshake.extension.type');
  // why: tshark lists signature_algorithms (13) and signature_algorithms_cert (50) values in one field; JA4
  // uses only extension 13, so split the list by each extension's length, in wire order.
  const allSigs = nums('handshake.sig_hash_alg');
  const sigLens = nums('handshake.sig_hash_alg_len').map((n) => n / 2);
  let signatureAlgorithms: number[] = [];
  let at = 0;
  extensions.filter((e) => e === 13 || e === 50).forEach((e, i) => {
    const n = sigLens[i] ?? 0;
    if (e === 13) signatureAlgorithms = allSigs.slice(at, at + n);
    at += n;
  });
  return ja4FromHello({
    ciphers: nums('handshake.ciphersuite'), extensions, signatureAlgorithms, supportedVersions: nums('handshake.extensions.supported_version'),
    helloVersion: Number(row[`${p}.handshake.version`]), alpn: (row[`${p}.handshake.extensions_alpn_str`] ?? '').split(',')[0] ?? '',
  }, p === 'dtls' ? 'dtls' : 'tcp');
}
