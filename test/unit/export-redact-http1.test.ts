// HTTP/1 secret redaction in pcapng exports across packets: a secret header split at every byte offset over
// two TCP segments or two decrypted records (both directions), retransmitted, out-of-order and cut segments,
// and a crafted capture checked with tshark.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PacketRedactor } from '../../src/export/index.js';
import { lineStartState, scanHttp1 } from '../../src/export/redact.js';
import { buildExportedPdu } from '../../src/pcapng/exported-pdu.js';
import { decodePacket } from '../../src/flows/decode.js';
import { CaptureBuilder, ethernet, ipPacket } from './core-packet-builder.js';
import { exportBothWays } from './export-capture.js';

const CLIENT = { ip: '10.232.9.1', port: 40100 };
const SERVER = { ip: '10.232.9.2', port: 80 };
const REQUEST = Buffer.from('GET /a HTTP/1.1\r\nHost: h.test\r\nAuthorization: Bearer s3cr3t-token\r\nCOOKIE:a=1; b=2\r\n'
  + 'X-Other: keep\r\nproxy-AUTHORIZATION :  Basic cHJveHk=\r\n\r\n', 'latin1');
const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nset-cookie: sid=resp-secret; Path=/\r\nSet-Cookie: two=more-secret\r\n'
  + 'Content-Length: 2\r\n\r\nok', 'latin1');
const SECRETS = ['s3cr3t', 'a=1', 'cHJveHk', 'resp-secret', 'more-secret'];
const LINK_ETHERNET = 1;
const LINK_UPPER_PDU = 252;

type End = { ip: string; port: number };

function segment(src: End, dst: End, seq: number, payload: Buffer, flags = 0x18): Buffer {
  return ethernet(ipPacket('tcp', { src: src.ip, dst: dst.ip, sport: src.port, dport: dst.port, seq, flags, payload }));
}

function payloadOf(frame: Buffer): Buffer {
  return decodePacket(LINK_ETHERNET, frame)!.payload;
}

/** Feeds SYN + the segments of one direction; returns the redacted payloads in order. */
function redactTcp(src: End, dst: End, pieces: { seq: number; data: Buffer }[], isn = 1000): Buffer[] {
  const r = new PacketRedactor();
  r.packet(LINK_ETHERNET, segment(src, dst, isn, Buffer.alloc(0), 0x02), 's');
  return pieces.map((p) => {
    const frame = segment(src, dst, p.seq, p.data);
    const out = r.packet(LINK_ETHERNET, frame, 's');
    expect(out.length).toBe(frame.length);
    return payloadOf(out);
  });
}

function splitAt(msg: Buffer, cuts: number[], isn = 1000): { seq: number; data: Buffer }[] {
  const bounds = [0, ...cuts, msg.length];
  return bounds.slice(0, -1).map((a, i) => ({ seq: isn + 1 + a, data: msg.subarray(a, bounds[i + 1]) }));
}

/** The oracle: the whole message scanned in one piece from its start. */
function redactHttp1Bytes(msg: Buffer): Buffer | null {
  return scanHttp1(lineStartState(), msg);
}

function leaked(bufs: Buffer[]): string[] {
  const text = Buffer.concat(bufs).toString('latin1');
  return SECRETS.filter((s) => text.includes(s));
}

describe('HTTP/1 redaction across packets', () => {
  it('masks a secret header split at every byte offset over two TCP segments, both directions, exactly as in one piece', () => {
    for (const [msg, src, dst] of [[REQUEST, CLIENT, SERVER], [RESPONSE, SERVER, CLIENT]] as const) {
      const whole = redactHttp1Bytes(msg)!;
      expect(leaked([whole])).toEqual([]);
      for (let cut = 1; cut < msg.length; cut++) {
        const out = Buffer.concat(redactTcp(src, dst, splitAt(msg, [cut])));
        expect(out.toString('latin1'), `cut at ${cut}`).toBe(whole.toString('latin1'));
      }
    }
  });

  it('masks a secret split over three segments at every pair of offsets around the Authorization line', () => {
    const whole = redactHttp1Bytes(REQUEST)!;
    const at = REQUEST.indexOf('Authorization');
    const lineEnd = REQUEST.indexOf('\r\n', at) + 2;
    for (let a = at - 1; a < lineEnd; a++) {
      for (let b = a + 1; b <= lineEnd; b++) {
        const out = Buffer.concat(redactTcp(CLIENT, SERVER, splitAt(REQUEST, [a, b])));
        expect(out.toString('latin1'), `cuts ${a},${b}`).toBe(whole.toString('latin1'));
      }
    }
  });

  it('masks a secret split at every offset over two decrypted records (sequence space by record offset), both directions', () => {
    for (const [msg, src, dst] of [[REQUEST, CLIENT, SERVER], [RESPONSE, SERVER, CLIENT]] as const) {
      const whole = redactHttp1Bytes(msg)!;
      for (let cut = 1; cut < msg.length; cut++) {
        const r = new PacketRedactor();
        const parts = [msg.subarray(0, cut), msg.subarray(cut)].map((piece) => {
          const pdu = buildExportedPdu('data', src, dst, piece);
          const out = r.packet(LINK_UPPER_PDU, pdu, 's');
          expect(out.length).toBe(pdu.length);
          return out.subarray(pdu.length - piece.length);
        });
        expect(Buffer.concat(parts).toString('latin1'), `cut at ${cut}`).toBe(whole.toString('latin1'));
      }
    }
  });

  it('masks retransmitted segments like the original, whether they repeat a segment, start mid-way or arrive later', () => {
    const at = REQUEST.indexOf('Bearer') + 3;
    const pieces = splitAt(REQUEST, [at]);
    const whole = redactHttp1Bytes(REQUEST)!;
    const second = pieces[1]!;
    const out = redactTcp(CLIENT, SERVER, [pieces[0]!, second, second, pieces[0]!,
      // a retransmission that starts mid-value where no packet began: scanned conservatively
      { seq: second.seq + 2, data: second.data.subarray(2) }]);
    expect(leaked(out)).toEqual([]);
    expect(Buffer.concat(out.slice(0, 2)).toString('latin1')).toBe(whole.toString('latin1'));
    expect(out[2]!.equals(out[1]!)).toBe(true);
    expect(out[3]!.equals(out[0]!)).toBe(true);
    // the first line of the unplaced retransmission is masked (its start in the stream is unknown)
    expect(out[4]!.toString('latin1')).toMatch(/^x+\r\n/);
  });

  it('masks out-of-order segments: the one that fills the gap from where the gap began, the early one conservatively', () => {
    const a = REQUEST.indexOf('Author') + 4;
    const b = REQUEST.indexOf('COOKIE') + 3;
    const [p1, p2, p3] = splitAt(REQUEST, [a, b]);
    const out = redactTcp(CLIENT, SERVER, [p1!, p3!, p2!]);
    expect(leaked(out)).toEqual([]);
    const whole = redactHttp1Bytes(REQUEST)!;
    // p1 and the gap filler p2 are exact; p3 (seen before p2) has its unfinished first line masked
    expect(Buffer.concat([out[0]!, out[2]!]).toString('latin1')).toBe(whole.subarray(0, b).toString('latin1'));
    expect(out[1]!.toString('latin1').startsWith(`${'x'.repeat('KIE:a=1; b=2'.length)}\r\nX-Other: keep\r\n`)).toBe(true);
  });

  it('starts at a line start when a direction is first seen at a request line, and conservatively anywhere else', () => {
    const r = new PacketRedactor();
    const mid = REQUEST.indexOf('rization');
    // no SYN seen: the first packet begins mid-name of the Authorization header
    const out = payloadOf(r.packet(LINK_ETHERNET, segment(CLIENT, SERVER, 5000, REQUEST.subarray(mid)), 's'));
    expect(leaked([out])).toEqual([]);
    const r2 = new PacketRedactor();
    const fresh = payloadOf(r2.packet(LINK_ETHERNET, segment(CLIENT, SERVER, 7000, REQUEST), 's'));
    expect(fresh.toString('latin1')).toBe(redactHttp1Bytes(REQUEST)!.toString('latin1'));
    // TLS bytes seen mid-stream are left alone (a control byte ends the conservative run at once)
    const tls = Buffer.from([0x17, 0x03, 0x03, 0x00, 0x05, 0x41, 0x42, 0x43, 0x44, 0x45]);
    expect(r2.packet(LINK_ETHERNET, segment(SERVER, CLIENT, 9000, tls), 's').equals(segment(SERVER, CLIENT, 9000, tls))).toBe(true);
  });

  it('treats bytes after a segment the capture cut short as of unknown position', () => {
    const cut = REQUEST.indexOf('Bearer') - 2;
    const r = new PacketRedactor();
    r.packet(LINK_ETHERNET, segment(CLIENT, SERVER, 1000, Buffer.alloc(0), 0x02), 's');
    const full = segment(CLIENT, SERVER, 1001, REQUEST.subarray(0, cut + 2));
    // snaplen cut: the ': ' after the name is missing from the capture, the value comes in the next segment
    r.packet(LINK_ETHERNET, full.subarray(0, full.length - 2), 's', full.length);
    const rest = payloadOf(r.packet(LINK_ETHERNET, segment(CLIENT, SERVER, 1001 + cut + 2, REQUEST.subarray(cut + 2)), 's'));
    expect(leaked([rest])).toEqual([]);
  });
});

describe('any order of segments', () => {
  it('never lets a secret through: random cuts, duplicates, reordering and overlapping retransmissions (seeded)', () => {
    let seed = 42;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    for (let round = 0; round < 400; round++) {
      const cuts = [...new Set(Array.from({ length: 1 + rnd(6) }, () => 1 + rnd(REQUEST.length - 1)))].sort((a, b) => a - b);
      const pieces = splitAt(REQUEST, cuts);
      const sent = [...pieces];
      // retransmissions: a whole piece again, or a stretch that starts and ends anywhere
      for (let k = rnd(4); k > 0; k--) {
        const a = rnd(REQUEST.length - 1);
        const b = a + 1 + rnd(REQUEST.length - a - 1);
        sent.splice(rnd(sent.length + 1), 0, rnd(2) ? pieces[rnd(pieces.length)]! : { seq: 1001 + a, data: REQUEST.subarray(a, b) });
      }
      // reorder a few neighbours
      for (let k = rnd(3); k > 0 && sent.length > 1; k--) {
        const i = rnd(sent.length - 1);
        [sent[i], sent[i + 1]] = [sent[i + 1]!, sent[i]!];
      }
      const out = redactTcp(CLIENT, SERVER, sent);
      // every packet on its own, and the stream a receiver rebuilds (first copy of each byte wins, or the last)
      expect(out.flatMap((o) => leaked([o])), `round ${round}`).toEqual([]);
      for (const order of [[...sent.keys()], [...sent.keys()].reverse()]) {
        const stream = Buffer.alloc(REQUEST.length);
        const have = new Set<number>();
        for (const i of order) {
          for (let k = 0; k < out[i]!.length; k++) {
            const at = sent[i]!.seq - 1001 + k;
            if (!have.has(at)) { have.add(at); stream[at] = out[i]![k]!; }
          }
        }
        expect(leaked([stream]), `round ${round}`).toEqual([]);
      }
    }
  });
});

describe('bounded state', () => {
  it('forgets the least recently used directions beyond 100k: their later packets are scanned conservatively', () => {
    const first = REQUEST.subarray(0, REQUEST.indexOf('rization'));
    const rest = REQUEST.subarray(first.length);
    const run = (others: number): string => {
      const r = new PacketRedactor();
      r.packet(LINK_ETHERNET, segment(CLIENT, SERVER, 1000, first), 's');
      for (let i = 0; i < others; i++) r.packet(LINK_ETHERNET, segment({ ip: '10.232.9.3', port: 1024 + (i % 60000) }, { ip: `10.232.${100 + Math.floor(i / 60000)}.4`, port: 80 }, 1, first), 's');
      return payloadOf(r.packet(LINK_ETHERNET, segment(CLIENT, SERVER, 1000 + first.length, rest), 's')).toString('latin1');
    };
    expect(run(10)).toMatch(/^rization: x{19}\r\n/);
    expect(run(100_000)).toMatch(/^x{29}\r\n/);
  });
});

describe('HTTP/1 redaction checked with tshark', () => {
  let tmp: string;
  beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsr-h1-')); });
  afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('leaves no secret in a capture whose headers straddle segments and records, and tshark still dissects both', async () => {
    const b = new CaptureBuilder();
    const at = REQUEST.indexOf('Authorization') + 5;
    const sat = RESPONSE.indexOf('Set-Cookie') + 2;
    let cseq = 1000;
    let sseq = 5000;
    const C = { src: CLIENT.ip, dst: SERVER.ip, sport: CLIENT.port, dport: SERVER.port };
    const S = { src: SERVER.ip, dst: CLIENT.ip, sport: SERVER.port, dport: CLIENT.port };
    b.tcp({ ...C, seq: cseq++, flags: 0x02 }).tcp({ ...S, seq: sseq++, ack: cseq, flags: 0x12 }).tcp({ ...C, seq: cseq, ack: sseq, flags: 0x10 });
    for (const piece of [REQUEST.subarray(0, at), REQUEST.subarray(at)]) { b.tcp({ ...C, seq: cseq, ack: sseq, payload: piece }); cseq += piece.length; }
    for (const piece of [RESPONSE.subarray(0, sat), RESPONSE.subarray(sat)]) { b.tcp({ ...S, seq: sseq, ack: cseq, payload: piece }); sseq += piece.length; }
    const tc = { ip: CLIENT.ip, port: 40101 };
    const ts = { ip: SERVER.ip, port: 443 };
    for (const piece of [REQUEST.subarray(0, at), REQUEST.subarray(at)]) b.tls(tc, ts, 'out', piece, { pid: 7, comm: 'client', lib: 'openssl' });
    const { redacted: red, all } = await exportBothWays(b, tmp, 'split');
    const fields = ['-T', 'fields', '-e', 'http.request.method', '-e', 'http.host', '-e', 'http.authorization', '-e', 'http.cookie', '-e', 'http.set_cookie'];
    const t = spawnSync('tshark', ['-r', red, '-Y', 'http', ...fields], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
    const rows = t.stdout.split('\n').map((l) => l.trimEnd()).filter(Boolean);
    // the TCP request, reassembled by tshark, and the response; tshark does not join records, so the decrypted
    // request shows only its first record (method and host)
    expect(rows.sort()).toEqual([
      `\t\t\t\t${'x'.repeat('sid=resp-secret; Path=/'.length)},${'x'.repeat('two=more-secret'.length)}`,
      'GET\th.test',
      `GET\th.test\t${'x'.repeat('Bearer s3cr3t-token'.length)}\txxxxxxxx`,
    ]);
    expect(leaked([readFileSync(red)])).toEqual([]);
    const t2 = spawnSync('tshark', ['-r', all, '-Y', 'http', ...fields], { encoding: 'utf8' });
    expect(t2.stdout).toContain('GET\th.test\tBearer s3cr3t-token\ta=1; b=2');
    expect(leaked([readFileSync(all)])).toEqual(SECRETS);
  });
});
