// A TCP connection's stream as the capture gives it, not as it was sent: a segment the capture lost, a FIN that comes
// before a segment sent again, data in a SYN (TCP Fast Open), a port reused without its close captured. Each compared
// with what tshark shows for the same packets (the cases a reviewer found; see the commit).
import { describe, expect, it } from 'vitest';
import { CaptureBuilder, analyzeCapture } from './core-packet-builder.js';

const C = { ip: '10.61.0.1', port: 40000 };
const S = { ip: '10.61.0.2', port: 80 };
const SYN = 0x02;
const ACK = 0x10;
const PSH_ACK = 0x18;
const FIN_ACK = 0x11;

/** One side's segments by hand: `send` gives the next bytes (or, with `lose`, skips them: a segment the capture lost). */
class Side {
  constructor(private readonly b: CaptureBuilder, private readonly from: typeof C, private readonly to: typeof C, public seq: number) {}
  other: Side | null = null;

  private seg(flags: number, seq: number, payload?: Buffer): void {
    this.b.tcp({ src: this.from.ip, dst: this.to.ip, sport: this.from.port, dport: this.to.port, seq, ack: this.other?.seq ?? 0, flags, payload });
  }

  syn(payload?: Buffer, ack = false): void {
    this.seg(ack ? SYN | ACK : SYN, this.seq, payload);
    this.seq = (this.seq + 1 + (payload?.length ?? 0)) >>> 0;
  }

  /** The next bytes; returns their sequence number (for sending them again). */
  send(text: string, lose = false): number {
    const at = this.seq;
    if (!lose) this.seg(PSH_ACK, at, Buffer.from(text));
    this.seq = (this.seq + text.length) >>> 0;
    return at;
  }

  again(at: number, text: string): void {
    this.seg(PSH_ACK, at, Buffer.from(text));
  }

  /** An ACK of everything the other side sent. */
  ack(): void {
    this.seg(ACK, this.seq);
  }

  /** A reset of the connection, at this side's next number, acknowledging nothing (RST alone). */
  reset(): void {
    this.seg(0x04, this.seq);
  }

  /** A reset answering the other side (RST and ACK), as a port refuses a connection. */
  refuse(): void {
    this.seg(0x14, 0);
  }

  fin(): void {
    this.seg(FIN_ACK, this.seq);
    this.seq = (this.seq + 1) >>> 0;
  }
}

/** The client's and the server's sides of one connection, before any segment. */
function sides(b: CaptureBuilder, isn: [number, number]): { b: CaptureBuilder; c: Side; s: Side } {
  const c = new Side(b, C, S, isn[0]);
  const s = new Side(b, S, C, isn[1]);
  c.other = s;
  s.other = c;
  return { b, c, s };
}

/** A connection after its handshake. */
function connection(b = new CaptureBuilder(), isn: [number, number] = [1000, 5000]): { b: CaptureBuilder; c: Side; s: Side } {
  const conn = sides(b, isn);
  conn.c.syn();
  conn.s.syn(undefined, true);
  return conn;
}

const req = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`;
const res = (body: string): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
type Ex = [string | null, number | null];
const exchanges = (buf: Buffer): Ex[][] => analyzeCapture(buf, { end: true }).flows().map((f) => f.http.map((h) => [h.path, h.status]));

describe('a segment the capture lost', () => {
  it('a lost request: the requests after it are read, each with its own answer; the lost one\'s answer is alone', () => {
    const { b, c, s } = connection();
    for (let i = 0; i < 4; i++) {
      c.send(req(`/r${i}`), i === 1);
      s.send(res(`body${i}`));
    }
    c.fin();
    s.fin();
    expect(exchanges(b.build())).toEqual([[['/r0', 200], [null, 200], ['/r2', 200], ['/r3', 200]]]);
  });

  it('a lost answer: its request has none, and each later request has its own', () => {
    const { b, c, s } = connection();
    for (let i = 0; i < 4; i++) {
      c.send(req(`/r${i}`));
      s.send(res(`body${i}`), i === 1);
    }
    c.fin();
    s.fin();
    const statuses = analyzeCapture(b.build(), { end: true }).flows()[0]!.http.map((h) => [h.path, h.status]);
    expect(statuses).toEqual([['/r0', 200], ['/r1', null], ['/r2', 200], ['/r3', 200]]);
  });

  it('a pipelining client\'s answers stay in order after a gap inside one of them', () => {
    const { b, c, s } = connection();
    for (const p of ['/a', '/b', '/c']) c.send(req(p));
    // (the first answer's body lost in the middle)
    s.send('HTTP/1.1 201 Created\r\nContent-Length: 20\r\n\r\n0123456789');
    s.send('0123456789', true);
    for (const status of [202, 203]) s.send(`HTTP/1.1 ${status} OK\r\nContent-Length: 0\r\n\r\n`);
    c.fin();
    s.fin();
    expect(exchanges(b.build())).toEqual([[['/a', 201], ['/b', 202], ['/c', 203]]]);
  });

  it('with no FIN, the capture\'s end reads what waited behind the hole', () => {
    const { b, c, s } = connection();
    for (let i = 0; i < 4; i++) {
      c.send(req(`/r${i}`), i === 1);
      s.send(res(`body${i}`));
    }
    expect(exchanges(b.build())).toEqual([[['/r0', 200], [null, 200], ['/r2', 200], ['/r3', 200]]]);
  });
});

describe('a FIN before a segment sent again', () => {
  it('the request the client sent again after its FIN is read', () => {
    const { b, c, s } = connection();
    c.send(req('/one'));
    s.send(res('1'));
    const lost = c.send(req('/two'), true);
    c.fin();
    c.again(lost, req('/two'));
    s.send(res('2'));
    s.fin();
    expect(exchanges(b.build())).toEqual([[['/one', 200], ['/two', 200]]]);
  });

  it('a body ended by the close is whole when its last segment comes after the FIN; cut when it never does', () => {
    for (const comes of [true, false]) {
      const { b, c, s } = connection();
      c.send(req('/f'));
      s.send('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nfirst-part;');
      const lost = s.send('second-part', true);
      s.fin();
      if (comes) s.again(lost, 'second-part');
      c.fin();
      const a = analyzeCapture(b.build(), { end: true, options: { details: true } });
      const e = a.exchangesOf(a.flows()[0]!.id)[0]!;
      expect([comes, e.status, e.responseBody]).toEqual([comes, 200, comes ? 'first-part;second-part' : 'first-part;']);
    }
  });
});

describe('a FIN waiting for bytes the capture lost, during a capture (no end yet)', () => {
  for (const how of ['the client acknowledges the FIN', 'the client resets']) {
    it(`ends when ${how}: the answer delimited by the close is read, cut where the bytes are missing`, () => {
      const { b, c, s } = connection();
      c.send(req('/a'));
      s.send('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nfirst;');
      s.send('lost', true);
      s.fin();
      if (how.endsWith('FIN')) c.ack();
      else c.reset();
      const a = analyzeCapture(b.build(), { options: { details: true } });
      const [f] = a.flows();
      expect(f!.http.map((h) => [h.path, h.status])).toEqual([['/a', 200]]);
      expect(a.exchangesOf(f!.id)[0]!.responseBody).toBe('first;');
    });
  }
});

describe('TCP Fast Open', () => {
  it('a request in the SYN is read from its first byte', () => {
    const { b, c, s } = sides(new CaptureBuilder(), [7000, 9000]);
    c.syn(Buffer.from(req('/tfo')));
    s.syn(undefined, true);
    s.send(res('ok'));
    expect(exchanges(b.build())).toEqual([[['/tfo', 200]]]);
  });
});

describe('a port reused', () => {
  it('a SYN with a new initial sequence number on a connection whose close was not captured opens a new flow', () => {
    const { b, c, s } = connection(new CaptureBuilder(), [1000, 5000]);
    c.send(req('/first'));
    s.send(res('1'));
    // (no FIN, no RST: then the same ports again, a new connection)
    const second = connection(b, [900_000, 3_000_000]);
    second.c.send(req('/second'));
    second.s.send(res('2'));
    second.c.fin();
    // (a SYN sent again has the same number: the same connection)
    const third = new CaptureBuilder();
    const again = connection(third, [1000, 5000]);
    again.c.seq = 1000;
    again.c.syn();
    again.c.send(req('/same'));
    const a = analyzeCapture(b.build(), { end: true });
    expect(a.flows().map((f) => [f.packets, f.http.map((h) => h.path)])).toEqual([[4, ['/first']], [5, ['/second']]]);
    expect(analyzeCapture(third.build(), { end: true }).flows().map((f) => f.http.map((h) => h.path))).toEqual([['/same']]);
  });

  it('a connection the capture began in the middle: a SYN with a new number opens a new flow, its own SYN seen late does not', () => {
    // (only acknowledgements came from the client, an idle connection's keep-alives: tshark, 2 conversations)
    const idle = sides(new CaptureBuilder(), [1000, 5000]);
    idle.c.ack();
    idle.s.ack();
    idle.c.ack();
    const next = sides(idle.b, [700_000, 9000]);
    next.c.syn();
    next.s.syn(undefined, true);
    next.c.send(req('/next'));
    expect(analyzeCapture(idle.b.build(), { end: true }).flows().map((f) => [f.packets, f.http.map((h) => h.path)])).toEqual([[3, []], [3, ['/next']]]);
    // (its first request captured before its SYN, copies of two interfaces merged out of order: tshark, 1 conversation)
    const late = sides(new CaptureBuilder(), [1000, 5000]);
    late.c.seq = 1001;
    late.c.send(req('/early'));
    late.c.seq = 1000;
    late.c.syn();
    expect(analyzeCapture(late.b.build(), { end: true }).flows().map((f) => f.packets)).toEqual([2]);
    // (data came, then a SYN far from it: a new connection, as before)
    const busy = sides(new CaptureBuilder(), [1000, 5000]);
    busy.c.send(req('/old'));
    busy.c.seq = 3_000_000;
    busy.c.syn();
    expect(analyzeCapture(busy.b.build(), { end: true }).flows().map((f) => f.packets)).toEqual([1, 1]);
  });

  it('the server\'s own SYN without ACK (both sides opening at once) stays the same flow', () => {
    const { b, c, s } = sides(new CaptureBuilder(), [1000, 5000]);
    c.syn();
    s.syn();
    c.send(req('/both'));
    expect(analyzeCapture(b.build(), { end: true }).flows().map((f) => f.packets)).toEqual([3]);
  });

  it('a SYN sent again counts as a retransmission, as Wireshark counts it', () => {
    const { b, c, s } = sides(new CaptureBuilder(), [1000, 5000]);
    for (let i = 0; i < 3; i++) {
      c.seq = 1000;
      c.syn();
    }
    s.syn(undefined, true);
    c.send(req('/late'));
    expect(analyzeCapture(b.build(), { end: true }).flows().map((f) => [f.packets, f.tcp?.retransmissions])).toEqual([[5, 2]]);
  });

  it('a SYN sent again after the server refused it, with the same initial number, is the same attempt; with another, a new one', () => {
    for (const [isns, flows] of [[[1000, 1000, 1000], [[6, 'refused', 2]]], [[1000, 2000], [[2, 'refused', 0], [2, 'refused', 0]]]] as const) {
      const { b, c, s } = sides(new CaptureBuilder(), [1000, 0]);
      for (const isn of isns) {
        c.seq = isn;
        c.syn();
        s.refuse();
      }
      expect(analyzeCapture(b.build(), { end: true }).flows().map((f) => [f.packets, f.tcp?.state, f.tcp?.retransmissions])).toEqual(flows);
    }
  });
});
