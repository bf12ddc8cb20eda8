// A pcapng export of a capture whose TLS connection had both ends hooked: each direction's decrypted records are in the
// capture twice (the writer's copy and the reader's, on the same exported-PDU addresses and ports). The export keeps one
// copy each way, so that tshark's HPACK decoder reads every header block once and decodes the headers that were sent;
// the writer's, unless its copy lost more bytes to the helper's record limit. Every other block goes out as it came.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureBuilder, fixtureClientHello, tcpConversation, tls12ServerHello } from './core-packet-builder.js';
import { END_HEADERS, END_STREAM, HEADERS, SETTINGS, addIdx, addNew, frame, indexed, litIdx } from './export-h2-frames.js';
import { H2_PREFACE } from '../../src/dissect/http2.js';
import { buildExportedPdu } from '../../src/pcapng/exported-pdu.js';
import { encodeEpb, tsFromMs } from '../../src/pcapng/writer.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { exportCapture } from '../../src/export/index.js';

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsr-copies-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

const SERVER = { ip: '10.231.0.2', port: 443 };
const CLIENT_PID = 100;
const SERVER_PID = 200;

// Three requests and answers; each block after the first adds to its side's HPACK table and refers to an entry an
// earlier block added, past the ones added since: a block read twice shifts those indexes.
const requests = [
  Buffer.concat([indexed(2), indexed(7), litIdx(4, '/one'), addIdx(1, 'both.test'), addNew('x-trace', 't-1')]),
  Buffer.concat([indexed(2), indexed(7), litIdx(4, '/two'), indexed(63), addNew('x-two', 'c-2')]),
  Buffer.concat([indexed(2), indexed(7), litIdx(4, '/three'), indexed(63), indexed(64)]),
];
const answers = [
  Buffer.concat([indexed(8), addNew('x-served-by', 'one'), addIdx(31, 'text/plain')]),
  Buffer.concat([indexed(8), addNew('x-two', 's-2')]),
  Buffer.concat([indexed(8), indexed(63), indexed(64)]),
];
const SENT = [
  ':method=GET,:scheme=https,:path=/one,:authority=both.test,x-trace=t-1', ':status=200,x-served-by=one,content-type=text/plain',
  ':method=GET,:scheme=https,:path=/two,:authority=both.test,x-two=c-2', ':status=200,x-two=s-2',
  ':method=GET,:scheme=https,:path=/three,x-trace=t-1,:authority=both.test', ':status=200,content-type=text/plain,x-served-by=one',
];

/** A decrypted record as the helper writes it: `lost` bytes of it cut by its record limit (trunc=1). */
function record(b: CaptureBuilder, src: { ip: string; port: number }, dst: { ip: string; port: number }, dir: 'in' | 'out', pid: number, bytes: Buffer, lost = 0): void {
  const kept = bytes.subarray(0, bytes.length - lost);
  const pdu = buildExportedPdu('http2', src, dst, kept);
  const comment = `tapscope-tls pid=${pid} tid=${pid} comm=${pid === CLIENT_PID ? 'curl' : 'node'} lib=openssl fn=${dir === 'out' ? 'SSL_write' : 'SSL_read'} dir=${dir} len=${bytes.length} trunc=${lost ? 1 : 0}`;
  b.ts += 1;
  b.raw(encodeEpb({ interfaceId: b.iface('tapscope-tls', 252), ...tsFromMs(b.ts), data: pdu, origLen: pdu.length + lost, flags: dir === 'out' ? 2 : 1, comments: [comment] }));
}

/**
 * One TLS connection carrying the exchanges above as records; `hooked`: whose hooks wrote them (each end writes its
 * writes and its reads: with both, every record twice, the reader's right after the writer's; 'both, server reads':
 * the server's writes were not seen). `lostC2s`: bytes the client's copy of its second request lost to the record limit.
 */
function connection(b: CaptureBuilder, port: number, hooked: 'both' | 'both, server reads' | 'client', lostC2s = 0): void {
  const client = { ip: '10.231.0.1', port };
  const c2s = [Buffer.concat([H2_PREFACE, SETTINGS, frame(HEADERS, END_HEADERS | END_STREAM, 1, requests[0]!)]), frame(HEADERS, END_HEADERS | END_STREAM, 3, requests[1]!), frame(HEADERS, END_HEADERS | END_STREAM, 5, requests[2]!)];
  const s2c = [Buffer.concat([SETTINGS, frame(HEADERS, END_HEADERS | END_STREAM, 1, answers[0]!)]), frame(HEADERS, END_HEADERS | END_STREAM, 3, answers[1]!), frame(HEADERS, END_HEADERS | END_STREAM, 5, answers[2]!)];
  tcpConversation(b, client, SERVER, [fixtureClientHello()], [tls12ServerHello()], {
    afterTurn: () => {
      for (let i = 0; i < 3; i++) {
        record(b, client, SERVER, 'out', CLIENT_PID, c2s[i]!, i === 1 ? lostC2s : 0);
        if (hooked !== 'client') record(b, client, SERVER, 'in', SERVER_PID, c2s[i]!);
        if (hooked === 'both') record(b, SERVER, client, 'out', SERVER_PID, s2c[i]!);
        record(b, SERVER, client, 'in', CLIENT_PID, s2c[i]!);
      }
    },
  });
}

async function exported(b: CaptureBuilder, name: string): Promise<{ source: string; out: string }> {
  const source = join(tmp, `${name}.pcapng`);
  writeFileSync(source, b.build());
  const { analyzer } = await analyzeFiles([{ path: source }]);
  const out = join(tmp, `${name}-export.pcapng`);
  await exportCapture([{ path: source }], analyzer, { format: 'pcapng', out, includeSecrets: true });
  return { source, out };
}

/** The header blocks tshark decodes in a file, each as name=value pairs. */
function tsharkHeaders(file: string): string[] {
  const t = spawnSync('tshark', ['-r', file, '-Y', 'http2.type == 1', '-T', 'fields', '-E', 'occurrence=a', '-e', 'http2.header.name', '-e', 'http2.header.value'], { encoding: 'utf8' });
  expect(t.status, t.stderr).toBe(0);
  return t.stdout.trim().split('\n').map((l) => {
    const [names, values] = l.split('\t');
    return names!.split(',').map((n, i) => `${n}=${values!.split(',')[i]}`).join(',');
  });
}

/** The packet blocks of a file: what each carried and said (records by their comment), in order. */
function packets(file: string): string[] {
  return parseBuffer(readFileSync(file)).flatMap((x) => (x.type === 'epb' ? [`${x.tsHigh}/${x.tsLow} ${x.origLen} ${x.flags} ${x.comments.join('|')} ${x.data.toString('hex')}`] : []));
}

describe('a pcapng export of a connection both of whose ends were hooked', () => {
  it('keeps one copy of each direction\'s records, the writer\'s: tshark decodes the headers that were sent, once each', async () => {
    const b = new CaptureBuilder();
    connection(b, 45001, 'both');
    const { source, out } = await exported(b, 'both');
    // (the capture as recorded: every block read twice, so later ones decode to other headers)
    expect(tsharkHeaders(source)).not.toEqual(SENT);
    expect(tsharkHeaders(out)).toEqual(SENT);
    // every other block as it came, the readers' copies left out
    expect(packets(out)).toEqual(packets(source).filter((p) => !p.includes('fn=SSL_read')));
    expect(packets(out).filter((p) => p.includes('fn=SSL_write'))).toHaveLength(6);
  });

  it('keeps the reader\'s copy of a direction whose writer\'s copy lost bytes to the record limit, or has none; one end hooked, every record', async () => {
    const b = new CaptureBuilder();
    connection(b, 45002, 'both', 10);
    connection(b, 45003, 'client');
    connection(b, 45004, 'both, server reads');
    const { out } = await exported(b, 'mixed');
    const kept = packets(out).filter((p) => p.includes('tapscope-tls')).map((p) => /pid=(\d+) .*fn=(\w+) dir=(\w+)/.exec(p)!.slice(1).join(' '));
    // port 45002: its requests from the server's reads, its answers from the server's writes; 45003: the client's, all;
    // 45004: its requests from the client's writes, its answers from the client's reads
    const each = (pair: string[]): string[] => Array.from({ length: 3 }, () => pair).flat();
    expect(kept).toEqual([
      ...each([`${SERVER_PID} SSL_read in`, `${SERVER_PID} SSL_write out`]),
      ...each([`${CLIENT_PID} SSL_write out`, `${CLIENT_PID} SSL_read in`]),
      ...each([`${CLIENT_PID} SSL_write out`, `${CLIENT_PID} SSL_read in`]),
    ]);
  });
});
