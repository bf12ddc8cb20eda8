// FoxIO JA4 computed from the ClientHello fields tshark dissected (its own fields, not tapscope's parser): an independent
// check of the core's JA4, for TLS over TCP (tshark's tls.* fields, prefix "t") and DTLS (dtls.* fields, prefix "d").
import { createHash } from 'node:crypto';

const isGrease = (v: number): boolean => (v & 0x0f0f) === 0x0a0a && (v >> 8) === (v & 0xff);
const hex4 = (v: number): string => v.toString(16).padStart(4, '0');
const sha12 = (s: string): string => (s ? createHash('sha256').update(s).digest('hex').slice(0, 12) : '000000000000');

/** The tshark fields ja4FromTshark reads, of protocol `p` (tls or dtls), for `-T fields -E occurrence=a -E aggregator=,`. */
export function ja4Fields(p: 'tls' | 'dtls'): string[] {
  return ['handshake.ciphersuite', 'handshake.extension.type', 'handshake.extensions.supported_version', 'handshake.sig_hash_alg', 'handshake.sig_hash_alg_len',
    'handshake.extensions_alpn_str', 'handshake.version'].map((f) => `${p}.${f}`);
}

/** JA4 of one ClientHello row (field name -> tshark's text) of protocol `p`. */
export function ja4FromTshark(row: Record<string, string>, p: 'tls' | 'dtls' = 'tls'): string {
  const nums = (k: string): number[] => (row[`${p}.${k}`] ? row[`${p}.${k}`]!.split(',').filter(Boolean).map((x) => Number(x)) : []);
  const ciphers = nums('handshake.ciphersuite').filter((c) => !isGrease(c));
  const allExts = nums('handshake.extension.type');
  const exts = allExts.filter((e) => !isGrease(e));
  const versions = nums('handshake.extensions.supported_version').filter((v) => !isGrease(v));
  // (DTLS's version numbers run backwards: its highest is the smallest)
  const v = versions.length ? (p === 'dtls' ? Math.min(...versions) : Math.max(...versions)) : Number(row[`${p}.handshake.version`]);
  const vname: Record<number, string> = { 0x0304: '13', 0x0303: '12', 0x0302: '11', 0x0301: '10', 0x0300: 's3', 0xfeff: 'd1', 0xfefd: 'd2', 0xfefc: 'd3' };
  const alpn = (row[`${p}.handshake.extensions_alpn_str`] ?? '').split(',')[0] ?? '';
  const a = `${p === 'dtls' ? 'd' : 't'}${vname[v] ?? '00'}${exts.includes(0) ? 'd' : 'i'}${String(Math.min(ciphers.length, 99)).padStart(2, '0')}${String(Math.min(exts.length, 99)).padStart(2, '0')}${alpn ? `${alpn[0]}${alpn[alpn.length - 1]}` : '00'}`;
  const b = sha12(ciphers.map(hex4).sort().join(','));
  // why: tshark lists signature_algorithms (13) and signature_algorithms_cert (50) values in one field; JA4
  // uses only extension 13, so split the list by each extension's length, in wire order.
  const allSigs = nums('handshake.sig_hash_alg');
  const sigLens = nums('handshake.sig_hash_alg_len').map((n) => n / 2);
  const sigExts = allExts.filter((e) => e === 13 || e === 50);
  let sigs: string[] = [];
  let at = 0;
  sigExts.forEach((e, i) => {
    const n = sigLens[i] ?? 0;
    if (e === 13) sigs = allSigs.slice(at, at + n).map(hex4);
    at += n;
  });
  const extList = exts.filter((e) => e !== 0 && e !== 0x10).map(hex4).sort().join(',');
  const c = sha12(sigs.length ? `${extList}_${sigs.join(',')}` : extList);
  return `${a}_${b}_${c}`;
}
