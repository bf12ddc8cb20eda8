// DTLS (RFC 6347, RFC 9147) over UDP: the hellos of a handshake, read from the records of its first datagrams. A DTLS
// record has a 13-byte header (type, version, epoch, sequence number, length); a handshake message in it a 12-byte one
// (type, length, message sequence, fragment offset, fragment length), a message possibly cut into fragments across
// records and datagrams. The ClientHello carries a cookie after its session id (empty at first; the server may answer a
// HelloVerifyRequest with one, and the client then sends its hello again with it). With the cookie taken out, DTLS's
// hellos are TLS's, and tls.ts reads them: SNI, ALPN, versions, cipher, JA3 and JA4 (the "d" prefix).
import { MAX_HELLO, parseClientHelloBody, parseServerHelloBody, type ClientHello, type ServerHello } from './tls.js';
import { InOrder } from '../util/in-order.js';

const CT_HANDSHAKE = 22;
const HS_CLIENT_HELLO = 1;
const HS_SERVER_HELLO = 2;
const RECORD_HEADER = 13;
const HS_HEADER = 12;

/** DTLS 1.0, 1.2 and 1.3's record versions (DTLS 1.3 keeps 1.2's in its records). */
function dtlsVersion(v: number): boolean {
  return v === 0xfeff || v === 0xfefd || v === 0xfefc;
}

/** True when a datagram begins with a DTLS handshake record of epoch 0 holding (the start of) a ClientHello. */
export function looksLikeDtlsClientHello(d: Buffer): boolean {
  return d.length >= RECORD_HEADER + HS_HEADER && d[0] === CT_HANDSHAKE && dtlsVersion(d.readUInt16BE(1)) && d.readUInt16BE(3) === 0 &&
    d[RECORD_HEADER] === HS_CLIENT_HELLO;
}

/** One side's handshake messages of epoch 0, put together from their fragments (in any order) by message sequence. */
export class DtlsHandshake {
  // (a message's bytes as its fragments bring them: memory follows the bytes received, not the length a fragment
  // declares; 8 fragments of 12 bytes each declaring a 64 KiB message once took a megabyte a flow)
  private readonly messages = new Map<number, { type: number; length: number; run: InOrder }>();

  /** The handshake fragments in a datagram's epoch-0 records; records of other types and epochs are passed over. */
  push(d: Buffer): void {
    for (let at = 0; at + RECORD_HEADER <= d.length;) {
      const type = d[at]!;
      const epoch = d.readUInt16BE(at + 3);
      const len = d.readUInt16BE(at + 11);
      const end = Math.min(d.length, at + RECORD_HEADER + len);
      if (!dtlsVersion(d.readUInt16BE(at + 1))) return;
      if (type === CT_HANDSHAKE && epoch === 0) this.fragments(d, at + RECORD_HEADER, end);
      at = end;
    }
  }

  private fragments(d: Buffer, at: number, end: number): void {
    while (at + HS_HEADER <= end) {
      const type = d[at]!;
      const length = d.readUIntBE(at + 1, 3);
      const seq = d.readUInt16BE(at + 4);
      const offset = d.readUIntBE(at + 6, 3);
      const fragLen = d.readUIntBE(at + 9, 3);
      const from = at + HS_HEADER;
      // (a message longer than a hello can be is not kept: TLS's bound)
      if (length > MAX_HELLO || offset + fragLen > length || from + fragLen > end) return;
      let m = this.messages.get(seq);
      if (!m && this.messages.size < 8) {
        m = { type, length, run: new InOrder() };
        this.messages.set(seq, m);
      }
      if (m && m.type === type && m.length === length && fragLen > 0) m.run.add(offset, d.subarray(from, from + fragLen));
      at = from + fragLen;
    }
  }

  /** The first whole message of `type` (its body), or null while none is whole. */
  private message(type: number): Buffer | null {
    for (const m of this.messages.values()) if (m.type === type && m.run.end === m.length) return m.run.bytes();
    return null;
  }

  /** The ClientHello as TLS's (the cookie taken out); null when it is not whole yet or not one. */
  clientHello(): ClientHello | null {
    const body = this.message(HS_CLIENT_HELLO);
    // (version 2, random 32, session id, cookie)
    if (!body || body.length < 35) return null;
    const sid = 35 + body[34]!;
    if (sid >= body.length) return null;
    const afterCookie = sid + 1 + body[sid]!;
    if (afterCookie > body.length) return null;
    const tlsBody = Buffer.concat([body.subarray(0, sid), body.subarray(afterCookie)]);
    // (as a TLS hello's, with its 4-byte handshake header)
    return tlsBody.length + 4 > MAX_HELLO ? null : parseClientHelloBody(tlsBody, 0, tlsBody.length);
  }

  /** The ServerHello (its body is TLS's); null when it is not whole yet or not one. */
  serverHello(): ServerHello | null {
    const body = this.message(HS_SERVER_HELLO);
    return body ? parseServerHelloBody(body, 0, body.length) : null;
  }
}
