// The PROXY protocol header (HAProxy's, versions 1 and 2): what a load balancer or proxy that relays TCP sends the
// server before the client's bytes, naming the client it relays for. An ingress behind AWS's NLB, HAProxy,
// nginx or Envoy with it turned on sees every connection begin with one; the client's TLS or HTTP follows it.
// Without reading it such a connection was "unknown": no TLS hello fields, no library verdict, no HTTP.
// Spec: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt
import { isIPv4, isIPv6 } from 'node:net';
import { INCOMPLETE } from './db-prelude.js';
import { ipv4ToString, ipv6ToString } from '../util/ip.js';
import type { Endpoint, ProxiedFor } from '../model/flow.js';

export interface ProxyHeader extends Pick<ProxiedFor, 'authority' | 'alpn' | 'tls'> {
  version: 1 | 2;
  /**
   * The connection the proxy relays: its client (src) and the address it reached (dst); null when the header names
   * none (v1 UNKNOWN, v2 LOCAL, as health checks send, or an address family other than IPv4 and IPv6)
   */
  src: Endpoint | null;
  dst: Endpoint | null;
  /** the header's length: the relayed client's bytes begin after it */
  length: number;
}

const V1_PREFIX = 'PROXY ';
/** v1's longest line, CRLF included (spec 2.1) */
const V1_MAX = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** the signature, the version and command, the family and transport, the address block's length */
const V2_FIXED = 16;

/**
 * The PROXY header a client's stream begins with; INCOMPLETE: its first bytes could still be one (too few to
 * tell, or a header cut off); null: the stream does not begin with one, or begins with one that is malformed.
 */
export function proxyHeader(buf: Buffer): ProxyHeader | typeof INCOMPLETE | null {
  if (buf.length === 0) return INCOMPLETE;
  if (buf[0] === 0x50) return v1(buf);
  if (buf[0] === 0x0d) return v2(buf);
  return null;
}

/** Whether buf starts with `prefix`; INCOMPLETE when buf is a prefix of it. */
function starts(buf: Buffer, prefix: Buffer | string): boolean | typeof INCOMPLETE {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) {
    const want = typeof prefix === 'string' ? prefix.charCodeAt(i) : prefix[i];
    if (buf[i] !== want) return false;
  }
  return n < prefix.length ? INCOMPLETE : true;
}

/** "PROXY TCP4 198.51.100.7 10.0.0.5 51234 443\r\n", "PROXY TCP6 ...", "PROXY UNKNOWN[ ...]\r\n" */
function v1(buf: Buffer): ProxyHeader | typeof INCOMPLETE | null {
  const s = starts(buf, V1_PREFIX);
  if (s !== true) return s === INCOMPLETE ? INCOMPLETE : null;
  const lf = buf.indexOf(0x0a, V1_PREFIX.length);
  if (lf < 0 || lf >= V1_MAX) return buf.length < V1_MAX && lf < 0 ? INCOMPLETE : null;
  if (buf[lf - 1] !== 0x0d) return null;
  const words = buf.toString('latin1', V1_PREFIX.length, lf - 1).split(' ');
  const length = lf + 1;
  if (words[0] === 'UNKNOWN') return { version: 1, src: null, dst: null, length };
  if (words.length !== 5 || (words[0] !== 'TCP4' && words[0] !== 'TCP6')) return null;
  const [fam, sip, dip, sport, dport] = words as [string, string, string, string, string];
  const isIp = fam === 'TCP4' ? isIPv4 : isIPv6;
  const sp = port(sport);
  const dp = port(dport);
  if (!isIp(sip) || !isIp(dip) || sp < 0 || dp < 0) return null;
  return { version: 1, src: { ip: sip, port: sp }, dst: { ip: dip, port: dp }, length };
}

/** A v1 port: decimal, no leading zero, 0-65535; -1 otherwise. */
function port(text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return -1;
  const n = Number(text);
  return n <= 0xffff ? n : -1;
}

/** The binary header: signature, version 2 and command, family and transport, address block length, addresses, TLVs. */
function v2(buf: Buffer): ProxyHeader | typeof INCOMPLETE | null {
  const s = starts(buf, V2_SIGNATURE);
  if (s !== true) return s === INCOMPLETE ? INCOMPLETE : null;
  if (buf.length < V2_FIXED) return INCOMPLETE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return null;
  const command = verCmd & 0x0f;
  // (0: LOCAL, the proxy's own connection; 1: PROXY, a relayed one; the rest are undefined)
  if (command > 1) return null;
  const family = buf[13]! >> 4;
  const proto = buf[13]! & 0x0f;
  if (family > 3 || proto > 2) return null;
  const blockLength = buf.readUInt16BE(14);
  const length = V2_FIXED + blockLength;
  const addrLength = [0, 12, 36, 216][family]!;
  if (blockLength < addrLength) return null;
  if (buf.length < length) return INCOMPLETE;
  const tlvs = v2Tlvs(buf, V2_FIXED + addrLength, length);
  if (command === 0 || family === 0 || family === 3) return { version: 2, src: null, dst: null, length, ...tlvs };
  const a = V2_FIXED;
  if (family === 1) {
    return {
      version: 2, length, ...tlvs,
      src: { ip: ipv4ToString(buf, a), port: buf.readUInt16BE(a + 8) },
      dst: { ip: ipv4ToString(buf, a + 4), port: buf.readUInt16BE(a + 10) },
    };
  }
  return {
    version: 2, length, ...tlvs,
    src: { ip: ipv6ToString(buf, a), port: buf.readUInt16BE(a + 32) },
    dst: { ip: ipv6ToString(buf, a + 16), port: buf.readUInt16BE(a + 34) },
  };
}

const PP2_TYPE_ALPN = 0x01;
const PP2_TYPE_AUTHORITY = 0x02;
const PP2_TYPE_SSL = 0x20;
const PP2_SUBTYPE_SSL_VERSION = 0x21;
const PP2_SUBTYPE_SSL_CN = 0x22;
const PP2_SUBTYPE_SSL_CIPHER = 0x23;
/** PP2_TYPE_SSL's client field: the client connected over TLS */
const PP2_CLIENT_SSL = 0x01;
/** the longest value kept: a host name's (253), with room */
const TLV_TEXT_MAX = 255;

/** The TLVs in buf[at, end), each handed to `each` (type, value start, value end); false when they do not fit exactly. */
function walkTlvs(buf: Buffer, at: number, end: number, each: (type: number, start: number, stop: number) => void): boolean {
  while (at < end) {
    if (at + 3 > end) return false;
    const stop = at + 3 + buf.readUInt16BE(at + 1);
    if (stop > end) return false;
    each(buf[at]!, at + 3, stop);
    at = stop;
  }
  return true;
}

/** Printable text (a host name, a protocol or cipher name), or null. */
function tlvText(buf: Buffer, start: number, stop: number): string | null {
  if (stop === start || stop - start > TLV_TEXT_MAX) return null;
  for (let i = start; i < stop; i++) if (buf[i]! < 0x20 || buf[i]! > 0x7e) return null;
  return buf.toString('latin1', start, stop);
}

/**
 * What a v2 header's TLVs say of the relayed connection: the host name and application protocol the client asked for,
 * and its TLS when the proxy ended it (PP2_TYPE_SSL with the client's SSL flag). TLVs that do not fit the header are
 * not read (the header itself still is).
 */
function v2Tlvs(buf: Buffer, at: number, end: number): Pick<ProxyHeader, 'authority' | 'alpn' | 'tls'> {
  const out: Pick<ProxyHeader, 'authority' | 'alpn' | 'tls'> = {};
  const ok = walkTlvs(buf, at, end, (type, start, stop) => {
    if (type === PP2_TYPE_AUTHORITY) {
      const v = tlvText(buf, start, stop);
      if (v) out.authority = v;
    } else if (type === PP2_TYPE_ALPN) {
      const v = tlvText(buf, start, stop);
      if (v) out.alpn = v;
    } else if (type === PP2_TYPE_SSL && stop - start >= 5 && buf[start]! & PP2_CLIENT_SSL) {
      const tls: NonNullable<ProxyHeader['tls']> = { version: null, cipher: null, clientCertCn: null };
      // (after the client flags and the 4-byte verify result: sub-TLVs)
      walkTlvs(buf, start + 5, stop, (sub, s, e) => {
        if (sub === PP2_SUBTYPE_SSL_VERSION) tls.version = tlvText(buf, s, e);
        else if (sub === PP2_SUBTYPE_SSL_CIPHER) tls.cipher = tlvText(buf, s, e);
        else if (sub === PP2_SUBTYPE_SSL_CN) tls.clientCertCn = buf.toString('utf8', s, e) || null;
      });
      out.tls = tls;
    }
  });
  return ok ? out : {};
}
