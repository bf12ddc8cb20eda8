// HTTP/1 lines ended by a bare LF (RFC 9112 §2.2: "a recipient MAY recognize a single LF as a line terminator and
// ignore any preceding CR"): start lines, header fields, the empty line ending a head, chunk-size lines and trailers,
// alone or mixed with CRLF in one message, read as their CRLF twins are, in every chunk size. A CR alone still ends no
// line. End to end, the capture a reviewer reported (a GET and its 200, every line LF-ended: app http, but no
// exchange) through the analyzer, cross-checked with tshark.
import { describe, it, expect } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Http1Parser, type HttpMessage } from '../../src/dissect/http1.js';
import { analyzeCapture, CaptureBuilder, tcpConversation } from './core-packet-builder.js';

// A keep-alive connection's two directions, CRLF-ended as senders should: a body by Content-Length, an obs-fold, a
// chunked body with an extension and a trailer, a HEAD, an interim 100, a status line without reason and a response
// running to the close. (No body holds a CRLF: LF-ended twins are made by replacing every CRLF.)
const requests = [
  'GET /len?x=1 HTTP/1.1\r\nHost: a.test\r\nUser-Agent: t\r\n\r\n',
  'POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world',
  'HEAD /len HTTP/1.1\r\nHost: a.test\r\n\r\n',
  'PUT /up HTTP/1.1\r\nHost: a.test\r\nX-Folded: one\r\n two\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n7;ext=1\r\ned body\r\n0\r\nX-Trailer: yes\r\n\r\n',
  'GET /close HTTP/1.0\r\n\r\n',
].join('');
const methods = ['GET', 'POST', 'HEAD', 'PUT', 'GET'];
const responses = [
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nshort',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world',
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n',
  'HTTP/1.1 204\r\nTransfer-Encoding: chunked\r\n\r\n',
  'HTTP/1.0 200 OK\r\nServer: x\r\n\r\nto the end',
].join('');

/** The messages without their times (which follow the chunks), bodies as text. */
function summary(msgs: HttpMessage[]): unknown[] {
  return msgs.map((m) => ({ ...m, ts: undefined, endTs: undefined, body: m.body.toString('latin1') }));
}

/** The messages of one direction's bytes `wire` pushed `chunk` bytes at a time; `response`: told the requests' methods first. */
function parse(wire: string, chunk = wire.length, response = false): unknown[] {
  const p = new Http1Parser();
  if (response) for (const m of methods) p.expectResponseTo(m);
  const data = Buffer.from(wire, 'latin1');
  const out: HttpMessage[] = [];
  for (let o = 0; o < data.length; o += chunk) out.push(...p.push(data.subarray(o, o + chunk), o));
  out.push(...p.end());
  return summary(out);
}

const lfOnly = (s: string): string => s.replace(/\r\n/g, '\n');
/**
 * Every other line end made a bare LF, from the first (`first`) or the second; but a chunk's data ends as its size line
 * did (the parser takes a bare LF there only after a size line that ended in one).
 */
function mixed(s: string, first: boolean): string {
  let n = first ? 0 : 1;
  let dataEnd: string | null = null;
  const lines = s.split('\r\n');
  return lines.map((line, i) => {
    if (i === lines.length - 1) return line;
    const end = dataEnd ?? (n++ % 2 === 0 ? '\n' : '\r\n');
    // (in these streams only chunk-size lines are hex digits alone)
    dataEnd = dataEnd === null && /^[1-9a-f][0-9a-f]*(;.*)?$/i.test(line) ? end : null;
    return line + end;
  }).join('');
}

describe('bare LF line ends read as CRLF ones', () => {
  it('an LF-only request stream: start lines, headers, folding, empty lines, chunk sizes and trailers', () => {
    const got = parse(lfOnly(requests)) as HttpMessage[];
    expect(got.map((m) => `${m.method} ${m.path} ${m.version}`)).toEqual(['GET /len?x=1 HTTP/1.1', 'POST /echo HTTP/1.1', 'HEAD /len HTTP/1.1', 'PUT /up HTTP/1.1', 'GET /close HTTP/1.0']);
    expect(got[0]!.headers).toEqual([['Host', 'a.test'], ['User-Agent', 't']]);
    expect(got[1]!.body).toBe('hello world');
    expect(got[3]!.headers).toEqual([['Host', 'a.test'], ['X-Folded', 'one two'], ['Transfer-Encoding', 'chunked'], ['X-Trailer', 'yes']]);
    expect(got[3]!.body).toBe('chunked body');
    expect(got).toEqual(parse(requests));
  });

  it('an LF-only response stream: status lines (one without reason), 100 Continue, HEAD and close framing', () => {
    const got = parse(lfOnly(responses), undefined, true) as HttpMessage[];
    expect(got.map((m) => [m.status, m.reason, m.body])).toEqual([[200, 'OK', 'short'], [100, 'Continue', ''], [201, 'Created', 'hello world'], [200, 'OK', ''], [204, '', ''], [200, 'OK', 'to the end']]);
    expect(got).toEqual(parse(responses, undefined, true));
  });

  it('CRLF and LF mixed in one message, either way round, in every chunk size', () => {
    const refRequests = parse(requests);
    const refResponses = parse(responses, undefined, true);
    for (const first of [true, false]) {
      const q = mixed(requests, first);
      const r = mixed(responses, first);
      // (chunks of every size put a head's end, "\n\r\n" or "\r\n\n", across two pushes at every position)
      for (let size = 1; size <= 48; size++) {
        expect(parse(q, size), `requests, ${size}-byte chunks`).toEqual(refRequests);
        expect(parse(r, size, true), `responses, ${size}-byte chunks`).toEqual(refResponses);
      }
      for (const size of [1, 7, 64]) expect(parse(lfOnly(requests), size)).toEqual(refRequests);
    }
  });

  it('chunked: LF-only size lines, data ended by LF or CRLF, trailers, and the response after it framed right', () => {
    const wire = 'HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n7;ext=1\n world!\r\nA\n, and more\n0\nX-Trailer: yes\r\nX-Other: 2\n\n' +
      'HTTP/1.1 200 OK\nContent-Length: 2\n\nok';
    for (const size of [wire.length, 1, 3]) {
      const got = parse(wire, size) as HttpMessage[];
      expect(got.map((m) => [m.status, m.body, m.bodyTruncated])).toEqual([[200, 'hello world!, and more', false], [200, 'ok', false]]);
      expect(got[0]!.headers).toEqual([['Transfer-Encoding', 'chunked'], ['X-Trailer', 'yes'], ['X-Other', '2']]);
    }
    // after a CRLF size line an LF after the data is a wrong size (data "ab\r"), not a line end: the body broke off there
    // (its message still answers its request), and the next response is looked for
    const wrong = 'HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\r\nab\r\n0\r\n\r\nHTTP/1.1 204 No Content\n\n';
    expect((parse(wrong) as HttpMessage[]).map((m) => [m.status, m.bodyTruncated, m.malformed !== undefined])).toEqual([[200, true, true], [204, false, false]]);
  });

  it('after a gap, parsing resumes at an LF-ended request or status line', () => {
    const q = new Http1Parser();
    expect(q.push(Buffer.from('POST /a HTTP/1.1\nContent-Length: 100\n\nabc'), 1)).toEqual([]);
    expect(q.gap().map((m) => [m.path, m.bodyTruncated])).toEqual([['/a', true]]);
    expect(q.push(Buffer.from('rest of a body\nGET /next HTTP/1.1\nHost: n\n\n'), 2).map((m) => [m.path, m.headers])).toEqual([['/next', [['Host', 'n']]]]);
    const r = new Http1Parser();
    r.gap();
    expect(r.push(Buffer.from('rest of a body\nHTTP/1.1 204\n\n'), 3).map((m) => m.status)).toEqual([204]);
  });
});

describe('a CR alone ends no line', () => {
  it('inside a header or trailer value it is part of the value', () => {
    const [m] = parse('GET /cr HTTP/1.1\nX-A: a\rB: c\nHost: h\n\n') as HttpMessage[];
    expect(m!.headers).toEqual([['X-A', 'a\rB: c'], ['Host', 'h']]);
    const [t] = parse('HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\nX-T: 1\rY: 2\n\n') as HttpMessage[];
    expect([t!.body, t!.headers]).toEqual(['ok', [['Transfer-Encoding', 'chunked'], ['X-T', '1\rY: 2']]]);
  });

  it('where the empty line should be it is no end of the head: the line it begins is a header line that is none', () => {
    // (as a server reads it: nginx and Node answer /a 400 and read no /b)
    expect((parse('GET /a HTTP/1.1\nHost: a\n\rGET /b HTTP/1.1\n\n') as HttpMessage[]).map((m) => [m.path, m.malformed])).toEqual([
      ['/a', '1 of its header lines is none (no colon, or no name): not read'],
    ]);
  });
});

describe('end to end: the reported capture (every line LF-ended)', () => {
  const client = { ip: '10.0.0.1', port: 40000 };
  const server = { ip: '10.0.0.2', port: 80 };
  // (the reviewer's exchange, byte for byte, then a second one on the same connection with CRLF and LF mixed)
  const c2s = ['GET /lf HTTP/1.1\nHost: lf.test\n\n', 'GET /two HTTP/1.1\r\nHost: lf.test\n\r\n'].map((s) => Buffer.from(s));
  const s2c = ['HTTP/1.1 200 OK\nContent-Length: 0\n\n', 'HTTP/1.1 404 Not Found\nContent-Length: 2\r\n\nno'].map((s) => Buffer.from(s));
  const capture = (): Buffer => {
    const b = new CaptureBuilder();
    tcpConversation(b, client, server, c2s, s2c);
    return b.build();
  };

  it('the flow lists both exchanges, paired, with their headers and bodies', () => {
    const a = analyzeCapture(capture(), { end: true, options: { details: true } });
    const [f] = a.flows();
    expect(f!.app).toBe('http');
    expect(f!.http).toEqual([{ method: 'GET', host: 'lf.test', path: '/lf', status: 200 }, { method: 'GET', host: 'lf.test', path: '/two', status: 404 }]);
    expect(a.exchangesOf(f!.id).map((e) => [e.requestHeaders, e.responseHeaders, e.responseBody])).toEqual([
      [[['Host', 'lf.test']], [['Content-Length', '0']], null],
      [[['Host', 'lf.test']], [['Content-Length', '2']], 'no'],
    ]);
  });

  it.skipIf(spawnSync('tshark', ['--version']).status !== 0)('tshark reads the same requests and statuses from it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsd-h1lf-'));
    try {
      const file = path.join(dir, 'lf.pcapng');
      fs.writeFileSync(file, capture());
      const out = execFileSync('tshark', ['-r', file, '-Y', 'http', '-T', 'fields', '-e', 'http.request.method', '-e', 'http.request.uri', '-e', 'http.host', '-e', 'http.response.code'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const rows = out.trim().split('\n').map((l) => l.split('\t'));
      const theirs = { requests: rows.filter((r) => r[0]).map((r) => `${r[0]} ${r[2]} ${r[1]}`), statuses: rows.filter((r) => r[3]).map((r) => Number(r[3])) };
      const f = analyzeCapture(capture(), { end: true }).flows()[0]!;
      expect(theirs).toEqual({ requests: f.http.map((h) => `${h.method} ${h.host} ${h.path}`), statuses: f.http.map((h) => h.status) });
      expect(theirs.requests).toEqual(['GET lf.test /lf', 'GET lf.test /two']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
