// DNS dissector with real queries from Node's resolver (c-ares) to a tiny DNS server on loopback:
// UDP, then TCP after a truncated UDP answer (2-byte length prefix), answers and rcodes; then messages with a record
// that cannot be read (compression pointers that loop, lead forward or out of the message), read up to it as tshark does.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { beginsDnsMessage, parseDns } from '../../src/dissect/dns.js';
import { CaptureBuilder, analyzeCapture, tcpConversation } from './core-packet-builder.js';
import { compileFilter } from '../../src/filter/index.js';

const seen: { transport: 'udp' | 'tcp'; payload: Buffer; reply: Buffer }[] = [];
let udp: dgram.Socket;
let tcp: net.Server;
let port = 0;

function answer(query: Buffer, truncate: boolean): Buffer {
  const q = dnsPacket.decode(query);
  const name = q.questions?.[0]?.name ?? '';
  if (name.startsWith('missing')) {
    return dnsPacket.encode({ id: q.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED | 3, questions: q.questions, answers: [] } as never);
  }
  return dnsPacket.encode({
    id: q.id, type: 'response', flags: truncate ? dnsPacket.TRUNCATED_RESPONSE : 0, questions: q.questions,
    answers: truncate ? [] : [
      { type: 'CNAME', name, ttl: 60, data: 'real.example.test' },
      { type: 'A', name: 'real.example.test', ttl: 60, data: '10.206.0.7' },
      { type: 'A', name: 'real.example.test', ttl: 60, data: '10.206.0.8' },
    ],
  });
}

beforeAll(async () => {
  tcp = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const reply = answer(buf.subarray(2, 2 + buf.readUInt16BE(0)), false);
        const framed = Buffer.concat([Buffer.from([reply.length >> 8, reply.length & 0xff]), reply]);
        seen.push({ transport: 'tcp', payload: buf, reply: framed });
        s.end(framed);
      }
    });
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  port = (tcp.address() as net.AddressInfo).port;
  udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const reply = answer(msg, q.questions?.[0]?.name.startsWith('big') ?? false);
    seen.push({ transport: 'udp', payload: msg, reply });
    udp.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', r));
});
afterAll(() => {
  udp.close();
  tcp.close();
});

function resolver(): Resolver {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  return r;
}

describe('DNS over UDP', () => {
  it('parses a real A query and its answer', async () => {
    const addrs = await resolver().resolve4('www.example.test');
    expect(addrs).toEqual(['10.206.0.7', '10.206.0.8']);
    const ex = seen.find((s) => s.transport === 'udp' && dnsPacket.decode(s.payload).questions?.[0]?.name === 'www.example.test')!;
    const q = parseDns(ex.payload, false)!;
    expect(q.qr).toBe(false);
    expect(q.questions).toEqual([{ name: 'www.example.test', type: 'A' }]);
    const a = parseDns(ex.reply, false)!;
    expect(a.qr).toBe(true);
    expect(a.id).toBe(q.id);
    expect(a.rcode).toBe('NOERROR');
    expect(a.answers).toEqual([
      { name: 'www.example.test', type: 'CNAME', data: 'real.example.test' },
      { name: 'real.example.test', type: 'A', data: '10.206.0.7' },
      { name: 'real.example.test', type: 'A', data: '10.206.0.8' },
    ]);
  });
  it('NXDOMAIN rcode', async () => {
    await expect(resolver().resolve4('missing.example.test')).rejects.toThrow();
    const ex = seen.find((s) => dnsPacket.decode(s.payload).questions?.[0]?.name === 'missing.example.test')!;
    expect(parseDns(ex.reply, false)!.rcode).toBe('NXDOMAIN');
  });
});

describe('DNS over TCP (after a truncated UDP answer)', () => {
  it('parses the length-prefixed query and answer', async () => {
    const addrs = await resolver().resolve4('big.example.test');
    expect(addrs).toEqual(['10.206.0.7', '10.206.0.8']);
    const ex = seen.find((s) => s.transport === 'tcp')!;
    const q = parseDns(ex.payload, true)!;
    expect(q.questions).toEqual([{ name: 'big.example.test', type: 'A' }]);
    expect(parseDns(ex.reply, true)!.answers.map((a) => a.data)).toEqual(['real.example.test', '10.206.0.7', '10.206.0.8']);
    // the same bytes read as UDP are not DNS (the length prefix shifts everything)
    expect(parseDns(ex.reply, false)?.answers.length ?? 0).not.toBe(3);
  });
  it('incomplete or garbage input is null', () => {
    expect(parseDns(Buffer.from([0, 40, 1, 2, 3]), true)).toBeNull();
    expect(parseDns(Buffer.from([0]), true)).toBeNull();
    expect(parseDns(Buffer.from('not a dns message at all!!'), false)).toBeNull();
    expect(parseDns(Buffer.alloc(5), false)).toBeNull();
  });
  it('counts the message cannot hold are no DNS, read no further (not made into arrays of each count and failed)', () => {
    const header = (qd: number, an: number): Buffer => Buffer.from([0, 7, 1, 0, qd >> 8, qd & 0xff, an >> 8, an & 0xff, 0, 0, 0, 0]);
    // (the least question: the root name, type A, class IN; the least record: the root, type NULL, IN, TTL 0, no data)
    const question = Buffer.from('000001' + '0001', 'hex');
    const record = Buffer.from('00000a0001' + '00000000' + '0000', 'hex');
    expect(parseDns(Buffer.concat([header(1, 0), question]), false)?.questions).toEqual([{ name: '.', type: 'A' }]);
    expect(parseDns(Buffer.concat([header(0, 1), record]), false)?.answers).toHaveLength(1);
    expect(parseDns(Buffer.concat([header(1, 1), question, record]), false)?.answers).toHaveLength(1);
    const decode = vi.spyOn(dnsPacket, 'decode');
    try {
      // (a byte short of each)
      expect(parseDns(Buffer.concat([header(1, 0), question.subarray(1)]), false)).toBeNull();
      expect(parseDns(Buffer.concat([header(1, 1), question, record.subarray(1)]), false)).toBeNull();
      // (garbage on port 53: 65535 questions in 1400 bytes)
      expect(parseDns(Buffer.alloc(1400, 0xff), false)).toBeNull();
      expect(parseDns(Buffer.concat([Buffer.from([0x05, 0x78]), Buffer.alloc(1400, 0x41)]), true)).toBeNull();
      expect(decode).not.toHaveBeenCalled();
    } finally {
      decode.mockRestore();
    }
  });
});

describe('record types rendered as text', () => {
  it('MX, TXT, AAAA, SRV', () => {
    const buf = dnsPacket.encode({
      id: 7, type: 'response', questions: [{ type: 'ANY', name: 'x.test' }],
      answers: [
        { type: 'MX', name: 'x.test', data: { preference: 10, exchange: 'mail.x.test' } },
        { type: 'TXT', name: 'x.test', data: ['v=spf1', '-all'] },
        { type: 'AAAA', name: 'x.test', data: 'fd00::1' },
        { type: 'SRV', name: '_h._tcp.x.test', data: { priority: 1, weight: 2, port: 443, target: 't.x.test' } },
      ],
    } as never);
    expect(parseDns(buf, false)!.answers.map((a) => a.data)).toEqual(['10 mail.x.test', 'v=spf1 -all', 'fd00::1', '1 2 443 t.x.test']);
  });
});

// A message written byte by byte: its header, questions and records as given (names as raw bytes, compression pointers too).
const label = (...labels: string[]): Buffer => Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
const pointer = (to: number): Buffer => Buffer.from([0xc0 | (to >> 8), to & 0xff]);
const u16s = (...v: number[]): Buffer => Buffer.concat(v.map((x) => Buffer.from([x >> 8, x & 0xff])));
const header = (id: number, flags: number, qd: number, an: number, ns = 0, ar = 0): Buffer => u16s(id, flags, qd, an, ns, ar);
const question = (name: Buffer, type = 1): Buffer => Buffer.concat([name, u16s(type, 1)]);
const rr = (name: Buffer, type: number, data: Buffer): Buffer => Buffer.concat([name, u16s(type, 1, 0, 60, data.length), data]);
const A = (...ip: number[]): Buffer => Buffer.from(ip);

describe('a message with a record that cannot be read: its header, questions and the records before it, malformed', () => {
  const loop = (): Buffer => {
    // (a response to loop.test: a good A record, then one whose name points at itself)
    const head = Buffer.concat([header(3, 0x8180, 1, 2), question(label('loop', 'test')), rr(pointer(12), 1, A(1, 2, 3, 4))]);
    return Buffer.concat([head, rr(pointer(head.length), 1, A(5, 6, 7, 8))]);
  };
  it('a compression pointer that loops', () => {
    expect(parseDns(loop(), false)).toEqual({
      id: 3, qr: true, questions: [{ name: 'loop.test', type: 'A' }], answers: [{ name: 'loop.test', type: 'A', data: '1.2.3.4' }], rcode: 'NOERROR', cut: false, malformed: true,
    });
    // (over TCP too)
    const msg = loop();
    expect(parseDns(Buffer.concat([u16s(msg.length), msg]), true)).toMatchObject({ questions: [{ name: 'loop.test' }], malformed: true });
  });
  it('a pointer that leads forward is followed, as tshark does (dns-packet refuses it): the message is whole', () => {
    // (the question's name points at the answer's data, a name)
    const at = 12 + 2 + 4 + 2 + 10;
    const msg = Buffer.concat([header(7, 0x8180, 1, 1), question(pointer(at), 5), rr(pointer(12), 5, label('target', 'test'))]);
    expect(parseDns(msg, false)).toEqual({
      id: 7, qr: true, questions: [{ name: 'target.test', type: 'CNAME' }], answers: [{ name: 'target.test', type: 'CNAME', data: 'target.test' }],
      rcode: 'NOERROR', cut: false, malformed: false,
    });
  });
  it('a pointer out of the message, a label of a reserved type, a name past 255 bytes, a bad name inside a record\'s data', () => {
    const q = question(label('x', 'test'));
    const good = rr(pointer(12), 1, A(9, 9, 9, 9));
    const bad = [rr(pointer(0x3fff), 1, A(1, 1, 1, 1)), rr(Buffer.from([0x41, 0x61, 0]), 1, A(1, 1, 1, 1)),
      rr(label(...Array.from({ length: 5 }, () => 'l'.repeat(60))), 1, A(1, 1, 1, 1)), rr(pointer(12), 5, pointer(0x3fff))];
    for (const b of bad) {
      const m = parseDns(Buffer.concat([header(4, 0x8180, 1, 3), q, good, b, good]), false);
      // (not cut: every byte of it came)
      expect(m).toMatchObject({ questions: [{ name: 'x.test' }], answers: [{ data: '9.9.9.9' }], cut: false, malformed: true });
      expect(m!.answers).toHaveLength(1);
    }
    // (a bad question: the header alone)
    for (const name of [pointer(12), Buffer.from([0x81, 0x61, 0])]) {
      expect(parseDns(Buffer.concat([header(5, 0x0100, 1, 0), question(name)]), false)).toMatchObject({ id: 5, qr: false, questions: [], malformed: true });
    }
  });
  it('a bad record after the answers (authority, additional): every answer, malformed', () => {
    const msg = Buffer.concat([header(6, 0x8180, 1, 1, 0, 1), question(label('y', 'test')), rr(pointer(12), 1, A(2, 2, 2, 2)), rr(pointer(0x3fff), 1, A(3, 3, 3, 3))]);
    expect(parseDns(msg, false)).toMatchObject({ answers: [{ data: '2.2.2.2' }], malformed: true });
  });
  it('a message taken for the first in a connection taken up in the middle must still read whole', () => {
    const msg = loop();
    expect(beginsDnsMessage(Buffer.concat([u16s(msg.length), msg]), true)).toBe(false);
  });
  it('the flow lists the question and the answers before the bad record', () => {
    const b = new CaptureBuilder();
    b.udp({ src: '10.63.0.53', dst: '10.63.0.1', sport: 53, dport: 41003, payload: loop() });
    const [f] = analyzeCapture(b.build()).flows();
    expect([f!.app, f!.dns]).toEqual(['dns', [{ id: 3, query: 'loop.test', type: 'A', rcode: 'NOERROR', answers: ['A 1.2.3.4'], malformed: true }]]);
    // (a filter finds it: dns.malformed, absent from flows without DNS)
    const good = new CaptureBuilder();
    good.udp({ src: '10.63.0.53', dst: '10.63.0.1', sport: 53, dport: 41004, payload: Buffer.concat([header(8, 0x8180, 1, 1), question(label('ok', 'test')), rr(pointer(12), 1, A(4, 4, 4, 4))]) });
    const flows = [f!, ...analyzeCapture(good.build()).flows(), { ...f!, id: 'no-dns', app: 'http', dns: undefined }];
    expect(['dns.malformed', 'dns.malformed == false', '!dns.malformed'].map((e) => flows.filter(compileFilter(e)).map((x) => x.app)))
      .toEqual([['dns'], ['dns'], ['dns', 'http']]);
  });
  it('records read one at a time (their owner names pointing forward) cost about what the same records read whole do (timed, printed)', () => {
    // (90 A records in one datagram, each owner name a pointer to a name: the first additional record's after them all,
    // or the question's before them; then an OPT, as resolvers add)
    const message = (forward: boolean): Buffer => {
      const q = question(label('b'));
      const end = 12 + q.length + 90 * 16;
      const records = Array.from({ length: 90 }, (_, i) => rr(pointer(forward ? end : 12), 1, A(10, 0, 0, i)));
      const opt = Buffer.concat([Buffer.from([0]), u16s(41, 1232, 0, 0, 0)]);
      return Buffer.concat([header(1, 0x8180, 1, 90, 0, 2), q, ...records, rr(label('b'), 1, A(10, 1, 1, 1)), opt]);
    };
    const time = (m: Buffer): number => {
      for (let i = 0; i < 200; i++) parseDns(m, false);
      const t = process.hrtime.bigint();
      for (let i = 0; i < 2000; i++) parseDns(m, false);
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    const [back, fwd] = [message(false), message(true)];
    for (const m of [back, fwd]) {
      expect(parseDns(m, false)).toEqual({
        id: 1, qr: true, questions: [{ name: 'b', type: 'A' }], answers: Array.from({ length: 90 }, (_, i) => ({ name: 'b', type: 'A', data: `10.0.0.${i}` })),
        rcode: 'NOERROR', cut: false, malformed: false,
      });
    }
    const [b, f] = [time(back), time(fwd)];
    console.log(`DNS, 90 records: forward pointers ${(f / 2).toFixed(1)} µs, backward ${(b / 2).toFixed(1)} µs a message, ratio ${(f / b).toFixed(1)}`);
    // why: each record tried by dns-packet first, refused (an Error and its stack each), took 12 to 15 times as long
    expect(f / b).toBeLessThan(4);
  });
});

describe('LLMNR (RFC 4795): DNS\'s format on port 5355', () => {
  const query = Buffer.concat([header(9, 0x0000, 1, 0), question(label('winhost'))]);
  const answer = Buffer.concat([header(9, 0x8000, 1, 1), question(label('winhost')), rr(pointer(12), 1, A(10, 0, 0, 7))]);
  it('a query to the multicast group, and the unicast answer from 5355 (two flows), are read as DNS', () => {
    const b = new CaptureBuilder();
    b.udp({ src: '10.64.0.1', dst: '224.0.0.252', sport: 45009, dport: 5355, payload: query });
    b.udp({ src: '10.64.0.7', dst: '10.64.0.1', sport: 5355, dport: 45009, payload: answer });
    const flows = analyzeCapture(b.build()).flows();
    expect(flows.map((f) => [f.app, f.dns])).toEqual([
      ['dns', [{ id: 9, query: 'winhost', type: 'A', rcode: null, answers: [] }]],
      ['dns', [{ id: 9, query: 'winhost', type: 'A', rcode: 'NOERROR', answers: ['A 10.0.0.7'] }]],
    ]);
  });
  it('over TCP too (a length before each message, as DNS over TCP)', () => {
    const b = new CaptureBuilder();
    const framed = (m: Buffer): Buffer => Buffer.concat([u16s(m.length), m]);
    tcpConversation(b, { ip: '10.64.0.1', port: 45010 }, { ip: '10.64.0.7', port: 5355 }, [framed(query)], [framed(answer)]);
    const [f] = analyzeCapture(b.build(), { end: true }).flows();
    expect([f!.app, f!.dns]).toEqual(['dns', [{ id: 9, query: 'winhost', type: 'A', rcode: 'NOERROR', answers: ['A 10.0.0.7'] }]]);
  });
});
