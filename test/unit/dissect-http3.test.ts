// HTTP/3 with QPACK, on RFC 9204's own examples (Appendix B) and RFC 7541's Huffman example: a section with a static
// name reference, one referring to the encoder stream's inserts (also when it comes before them: blocked, then read),
// a response with a Huffman-coded literal, and a stream given up after a malformed section while the others go on.
import { describe, it, expect } from 'vitest';
import { Http3Connection } from '../../src/dissect/http3.js';
import type { HttpMessage } from '../../src/dissect/http1.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** An HTTP/3 frame: type, length (one-byte varints here), payload. */
const frame = (type: number, payload: Buffer): Buffer => Buffer.concat([Buffer.of(type, payload.length), payload]);
const HEADERS = 0x01;
const DATA = 0x00;
// RFC 9204 B.2: Set Dynamic Table Capacity 220; insert :authority=www.example.com, :path=/sample/path (static names)
const ENCODER = hex('02 3fbd01 c00f7777772e6578616d706c652e636f6d c10c2f73616d706c652f70617468');
// RFC 9204 B.2: Required Insert Count 2, Base 0; post-base indexes 0 and 1
const SECTION_DYNAMIC = hex('0381 10 11');

function fields(m: HttpMessage): [string, string][] {
  return m.headers;
}

describe('HTTP/3 and QPACK', () => {
  it('reads a request whose section names a static entry (RFC 9204 B.1) and its response, once each stream ends', () => {
    const h3 = new Http3Connection();
    const out: HttpMessage[] = [];
    // :path=/index.html by a literal with a static name reference; :method GET is static index 17
    h3.data(0, true, frame(HEADERS, hex('0000 d1 510b2f696e6465782e68746d6c')), false, 1, out);
    expect(out).toEqual([]);
    h3.data(0, true, Buffer.alloc(0), true, 1, out);
    // :status 200 (static 25) and server (static 92) = Huffman "www.example.com" (RFC 7541 C.4.1); a body
    h3.data(0, false, Buffer.concat([frame(HEADERS, hex('0000 d9 5f4d 8cf1e3c2e5f23a6ba0ab90f4ff')), frame(DATA, Buffer.from('hi'))]), true, 2, out);
    expect(out.map((m) => [m.kind, m.method, m.path, m.status, m.body.toString(), m.streamId])).toEqual([
      ['request', 'GET', '/index.html', undefined, '', 0],
      ['response', undefined, undefined, 200, 'hi', 0],
    ]);
    expect(fields(out[1]!)).toEqual([[':status', '200'], ['server', 'www.example.com']]);
  });

  it("decodes a section against the encoder stream's dynamic table (RFC 9204 B.2), also one that came before its inserts", () => {
    const inOrder = new Http3Connection();
    const out: HttpMessage[] = [];
    inOrder.data(2, true, ENCODER, false, 0, out);
    inOrder.data(4, true, frame(HEADERS, SECTION_DYNAMIC), true, 1, out);
    expect(out.map(fields)).toEqual([[[':authority', 'www.example.com'], [':path', '/sample/path']]]);

    const blocked = new Http3Connection();
    const later: HttpMessage[] = [];
    blocked.data(4, true, frame(HEADERS, SECTION_DYNAMIC), true, 1, later);
    expect(later).toEqual([]);
    // (the encoder stream in two pieces: an instruction cut in the middle waits for its rest)
    blocked.data(2, true, ENCODER.subarray(0, 10), false, 2, later);
    blocked.data(2, true, ENCODER.subarray(10), false, 2, later);
    expect(later.map((m) => [m.path, m.streamId])).toEqual([['/sample/path', 4]]);
  });

  it('gives up a stream whose section refers to an entry the table never had, and reads the next stream', () => {
    const h3 = new Http3Connection();
    const out: HttpMessage[] = [];
    // static index 99 is past the table's end
    h3.data(0, true, frame(HEADERS, hex('0000 ff24')), true, 1, out);
    h3.data(4, true, frame(HEADERS, hex('0000 d1 510b2f696e6465782e68746d6c')), true, 2, out);
    expect(out.map((m) => m.path)).toEqual(['/index.html']);
    expect(h3.failedStreams).toBe(1);
  });
});
