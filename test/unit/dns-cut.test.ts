// DNS messages as a capture can give them: cut short (a snap length, the first fragment of a datagram), asking several
// questions, asked in mixed case (0x20 encoding) and answered in lower. Compared with what the messages hold.
import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { parseDns } from '../../src/dissect/dns.js';
import { CaptureBuilder, analyzeCapture } from './core-packet-builder.js';

const C = { ip: '10.62.0.1', port: 41000 };
const S = { ip: '10.62.0.53', port: 53 };

function response(questions: { name: string; type: string }[], answers: { name: string; type: string; data: unknown }[], id = 7): Buffer {
  return dnsPacket.encode({ id, type: 'response', flags: dnsPacket.RECURSION_DESIRED, questions, answers: answers.map((a) => ({ ...a, ttl: 60 })) } as never);
}

const SPF = 'v=spf1 include:_spf.example ~all';
const full = (): Buffer => response([{ name: 'snap.example', type: 'ANY' }], [
  { name: 'snap.example', type: 'A', data: '10.0.0.1' }, { name: 'snap.example', type: 'A', data: '10.0.0.2' },
  { name: 'snap.example', type: 'TXT', data: SPF },
]);

describe('a DNS message cut short', () => {
  it('lists only the answers that came whole, and says it was cut, at every length the cut can leave', () => {
    const msg = full();
    const whole = parseDns(msg, false)!;
    expect(whole.cut).toBe(false);
    expect(whole.answers.map((a) => a.data)).toEqual(['10.0.0.1', '10.0.0.2', SPF]);
    for (let len = 12; len < msg.length; len++) {
      const m = parseDns(msg.subarray(0, len), false);
      if (m === null) continue;
      expect(m.cut, `cut at ${len}`).toBe(true);
      // (a cut answer is never listed: each listed one is one of the whole message's, in order)
      expect(whole.answers.slice(0, m.answers.length), `cut at ${len}`).toEqual(m.answers);
      expect(m.answers.some((a) => a.type === 'TXT'), `cut at ${len}`).toBe(false);
    }
    // (the two A records are whole 1 byte before the TXT record ends)
    expect(parseDns(msg.subarray(0, msg.length - 1), false)!.answers.map((a) => a.data)).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('the flow says so, and a filter on the cut text finds nothing', () => {
    const b = new CaptureBuilder();
    b.udp({ src: C.ip, dst: S.ip, sport: C.port, dport: S.port, payload: dnsPacket.encode({ id: 7, type: 'query', questions: [{ name: 'snap.example', type: 'ANY' }] } as never) });
    b.udp({ src: S.ip, dst: C.ip, sport: S.port, dport: C.port, payload: full().subarray(0, full().length - 20) });
    const [f] = analyzeCapture(b.build()).flows();
    expect(f!.dns).toEqual([{ id: 7, query: 'snap.example', type: 'ANY', rcode: 'NOERROR', answers: ['A 10.0.0.1', 'A 10.0.0.2'], cut: true }]);
  });
});

describe('questions', () => {
  it('each question of a message is an entry, with the answers of its name', () => {
    const b = new CaptureBuilder();
    const questions = [{ name: 'a.example', type: 'A' }, { name: 'b.example', type: 'AAAA' }];
    b.udp({ src: C.ip, dst: S.ip, sport: C.port, dport: S.port, payload: dnsPacket.encode({ id: 9, type: 'query', questions } as never) });
    b.udp({ src: S.ip, dst: C.ip, sport: S.port, dport: C.port, payload: response(questions, [
      { name: 'a.example', type: 'CNAME', data: 'c.example' }, { name: 'c.example', type: 'A', data: '1.2.3.4' }, { name: 'b.example', type: 'AAAA', data: '::1' },
    ], 9) });
    const [f] = analyzeCapture(b.build()).flows();
    expect(f!.dns).toEqual([
      { id: 9, query: 'a.example', type: 'A', rcode: 'NOERROR', answers: ['CNAME c.example', 'A 1.2.3.4'] },
      { id: 9, query: 'b.example', type: 'AAAA', rcode: 'NOERROR', answers: ['AAAA ::1'] },
    ]);
  });

  it('a query and its answer whose names differ in case only (0x20 encoding) are one entry', () => {
    for (const [asked, answered] of [['WwW.ExAmPlE.com', 'www.example.com'], ['www.example.com', 'WWW.example.COM']]) {
      const b = new CaptureBuilder();
      b.udp({ src: C.ip, dst: S.ip, sport: C.port, dport: S.port, payload: dnsPacket.encode({ id: 3, type: 'query', questions: [{ name: asked, type: 'A' }] } as never) });
      b.udp({ src: S.ip, dst: C.ip, sport: S.port, dport: C.port, payload: response([{ name: answered!, type: 'A' }], [{ name: answered!, type: 'A', data: '9.9.9.9' }], 3) });
      const [f] = analyzeCapture(b.build()).flows();
      expect(f!.dns).toEqual([{ id: 3, query: asked, type: 'A', rcode: 'NOERROR', answers: ['A 9.9.9.9'] }]);
    }
  });

  it('an mDNS query to its multicast group: the sender is the client (ports alike, the first packet\'s sender)', () => {
    const b = new CaptureBuilder();
    for (const src of ['192.168.1.9', '192.168.1.20']) {
      b.udp({ src, dst: '224.0.0.251', sport: 5353, dport: 5353, payload: dnsPacket.encode({ id: 0, type: 'query', questions: [{ name: 'printer.local', type: 'PTR' }] } as never) });
    }
    expect(analyzeCapture(b.build()).flows().map((f) => [f.src.ip, f.dst.ip])).toEqual([['192.168.1.9', '224.0.0.251'], ['192.168.1.20', '224.0.0.251']]);
  });
});
