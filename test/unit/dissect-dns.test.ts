// DNS dissector with real queries from Node's resolver (c-ares) to a tiny DNS server on loopback:
// UDP, then TCP after a truncated UDP answer (2-byte length prefix), answers and rcodes.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { parseDns } from '../../src/dissect/dns.js';

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
