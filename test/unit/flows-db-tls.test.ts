// Database connections: Postgres, MySQL/MariaDB and Redis told from their first bytes, and the TLS that Postgres
// (SSLRequest, 'S') and MySQL (greeting, SSL request packet) switch to in place dissected after the prelude, so the
// flow gets its hello fields and a verdict like any TLS flow; segment boundaries anywhere, and the look-alikes
// that must stay what they are.
import { describe, it, expect } from 'vitest';
import { Analyzer } from '../../src/flows/analyzer.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { dbPrelude, mysqlGreeting, mysqlLogin, postgresLogin, INCOMPLETE } from '../../src/dissect/db-prelude.js';
import { compileFilter } from '../../src/filter/index.js';
import { FlowJsonLines } from '../../src/model/flow-json.js';
import { CaptureBuilder, analyzeCapture, fixtureClientHello, tcpConversation, tls12ServerHello } from './core-packet-builder.js';
import type { Flow } from '../../src/model/flow.js';

const C = { ip: '10.9.0.1', port: 40000 };
const S = (port: number) => ({ ip: '10.9.0.2', port });

const serverHello = tls12ServerHello;

function flowsOf(conversations: Array<{ port: number; c2s: (Buffer | null)[]; s2c: (Buffer | null)[]; then?: (b: CaptureBuilder, client: { ip: string; port: number }) => void }>): Flow[] {
  const b = new CaptureBuilder();
  conversations.forEach((c, i) => {
    tcpConversation(b, { ...C, port: C.port + i }, S(c.port), c.c2s, c.s2c, { fin: !c.then });
    c.then?.(b, { ...C, port: C.port + i });
  });
  const a = new Analyzer();
  const feed = a.stream('n1');
  for (const blk of parseBuffer(b.build())) feed(blk);
  return a.flows();
}

const SSL_REQUEST = Buffer.from('0000000804d2162f', 'hex');
const pgStartup = (params = Buffer.from('user\0app\0database\0orders\0\0')): Buffer => {
  const m = Buffer.alloc(8 + params.length);
  m.writeUInt32BE(m.length, 0);
  m.writeUInt32BE(0x00030000, 4);
  params.copy(m, 8);
  return m;
};

function mysqlGreetingPacket(): Buffer {
  const caps = 0x0001 | 0x0200 | 0x0800 | 0x8000 | 0x80000;
  const payload = Buffer.concat([
    Buffer.from([10]), Buffer.from('8.0.36\0'), Buffer.from([1, 0, 0, 0]), Buffer.from('abcdefgh'), Buffer.from([0]),
    Buffer.from([caps & 0xff, (caps >> 8) & 0xff, 33, 2, 0, (caps >> 16) & 0xff, (caps >> 24) & 0xff, 21]), Buffer.alloc(10),
    Buffer.from('ijklmnopqrst\0'), Buffer.from('mysql_native_password\0'),
  ]);
  return Buffer.concat([Buffer.from([payload.length & 0xff, payload.length >> 8, 0, 0]), payload]);
}

function mysqlSslRequest(ssl = true): Buffer {
  const p = Buffer.alloc(32);
  p.writeUInt32LE(0x0200 | 0x8000 | 0x80000 | (ssl ? 0x0800 : 0), 0);
  p.writeUInt32LE(16 << 20, 4);
  p[8] = 33;
  return Buffer.concat([Buffer.from([32, 0, 0, 1]), p]);
}

describe('databases that switch to TLS', () => {
  const hello = fixtureClientHello();
  const plainTls = flowsOf([{ port: 443, c2s: [hello], s2c: [serverHello()] }])[0]!;

  it('Postgres: the hellos after SSLRequest and the server\'s S, in separate segments or one', () => {
    const [apart, together] = flowsOf([
      { port: 5432, c2s: [SSL_REQUEST, hello], s2c: [Buffer.from('S'), serverHello()] },
      { port: 5432, c2s: [Buffer.concat([SSL_REQUEST, hello.subarray(0, 100)]), hello.subarray(100)], s2c: [Buffer.concat([Buffer.from('S'), serverHello()])] },
    ]);
    for (const f of [apart!, together!]) {
      expect(f.app).toBe('postgres');
      expect(f.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, ja3Hash: plainTls.tls!.ja3Hash, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
      expect(f.tls!.client).toEqual(plainTls.tls!.client);
    }
  });

  it('MySQL: the hellos after the server\'s greeting and the client\'s SSL request packet', () => {
    // (the server speaks first)
    const [f] = flowsOf([{ port: 3306, c2s: [null, mysqlSslRequest(), hello], s2c: [mysqlGreetingPacket(), null, serverHello()] }]);
    expect(f!.app).toBe('mysql');
    expect(f!.tls).toMatchObject({ sni: plainTls.tls!.sni, ja4: plainTls.tls!.ja4, version: 'TLS 1.2' });
  });

  it('plain database connections are named and carry no TLS', () => {
    const flows = flowsOf([
      { port: 5432, c2s: [SSL_REQUEST, pgStartup()], s2c: [Buffer.from('N')] },
      { port: 5432, c2s: [pgStartup()], s2c: [Buffer.from('R\0\0\0\x08\0\0\0\0')] },
      { port: 3306, c2s: [null, Buffer.concat([Buffer.from([40, 0, 0, 1]), mysqlSslRequest(false).subarray(4), Buffer.alloc(8)])], s2c: [mysqlGreetingPacket()] },
      { port: 6379, c2s: [Buffer.from('*1\r\n$4\r\nPING\r\n')], s2c: [Buffer.from('+PONG\r\n')] },
    ]);
    expect(flows.map((f) => [f.app, f.tls])).toEqual([['postgres', null], ['postgres', null], ['mysql', null], ['redis', null]]);
  });

  it('look-alikes stay what they are', () => {
    const flows = flowsOf([
      // zeros that are no Postgres message, a server greeting without a NUL-ended version, a '*' that is no RESP array
      { port: 7000, c2s: [Buffer.from('0000000904d2162f00', 'hex')], s2c: [Buffer.from('ok')] },
      { port: 7001, c2s: [Buffer.from('hello there')], s2c: [Buffer.from([40, 0, 0, 0, 10, 0x41, 0x42])] },
      { port: 7002, c2s: [Buffer.from('*hello*\r\n')], s2c: [] },
      // a plain TLS flow on the Postgres port is TLS
      { port: 5432, c2s: [hello], s2c: [serverHello()] },
    ]);
    expect(flows.map((f) => f.app)).toEqual(['unknown', 'unknown', 'unknown', 'tls']);
  });

  it('waits for the bytes that tell', () => {
    expect(dbPrelude(SSL_REQUEST.subarray(0, 5), null)).toBe(INCOMPLETE);
    expect(dbPrelude(SSL_REQUEST, null)).toBe(INCOMPLETE);
    expect(dbPrelude(SSL_REQUEST, Buffer.from('S'))).toEqual({ app: 'postgres', tls: { client: 8, server: 1 } });
    expect(dbPrelude(mysqlSslRequest().subarray(0, 6), mysqlGreetingPacket())).toBe(INCOMPLETE);
    expect(mysqlGreeting(mysqlGreetingPacket())).toBe(mysqlGreetingPacket().length);
    expect(mysqlGreeting(mysqlGreetingPacket().subarray(0, 10))).toBe(0);
  });
});

/** A HandshakeResponse41 (sequence `seq`): user, an auth response, and the database when `db` is given. */
function mysqlHandshakeResponse(user: string, db: string | null, seq = 1): Buffer {
  const caps = 0x0200 | 0x8000 | 0x80000 | (db ? 0x8 : 0);
  const head = Buffer.alloc(32);
  head.writeUInt32LE(caps, 0);
  head.writeUInt32LE(16 << 20, 4);
  head[8] = 33;
  const body = Buffer.concat([head, Buffer.from(`${user}\0`), Buffer.from([20]), Buffer.alloc(20, 0xab), ...(db ? [Buffer.from(`${db}\0`)] : []), Buffer.from('mysql_native_password\0')]);
  return Buffer.concat([Buffer.from([body.length & 0xff, body.length >> 8, 0, seq]), body]);
}

describe('who a database connection logs in as', () => {
  it('reads a Postgres StartupMessage and a MySQL handshake response, whole or not yet', () => {
    expect(postgresLogin(pgStartup())).toEqual({ user: 'app', database: 'orders', application: null });
    expect(postgresLogin(pgStartup(Buffer.from('user\0reporting\0application_name\0psql\0\0')))).toEqual({ user: 'reporting', database: 'reporting', application: 'psql' });
    expect(postgresLogin(pgStartup().subarray(0, 12))).toBe(INCOMPLETE);
    expect(postgresLogin(Buffer.from('0000000804d2162f', 'hex'))).toBeNull();
    expect(mysqlLogin(mysqlHandshakeResponse('shop', 'orders'))).toEqual({ user: 'shop', database: 'orders', application: null });
    expect(mysqlLogin(mysqlHandshakeResponse('shop', null))).toEqual({ user: 'shop', database: null, application: null });
    expect(mysqlLogin(mysqlHandshakeResponse('shop', 'orders').subarray(0, 20))).toBe(INCOMPLETE);
    // the database flagged but not written (its server did not offer to take it): the one string left is the plugin's
    const unwritten = mysqlHandshakeResponse('shop', null);
    unwritten[4] = unwritten[4]! | 0x8;
    expect(mysqlLogin(unwritten)).toEqual({ user: 'shop', database: null, application: null });
  });

  it('names it on plain connections, after an SSLRequest answered N too, and on TLS ones from the hooks\' first decrypted message', () => {
    const hello = fixtureClientHello();
    const flows = flowsOf([
      { port: 5432, c2s: [pgStartup()], s2c: [Buffer.from('R\0\0\0\x08\0\0\0\0')] },
      // the StartupMessage after the server's N, in a later segment, split in two
      { port: 5432, c2s: [SSL_REQUEST, pgStartup().subarray(0, 10), pgStartup().subarray(10)], s2c: [Buffer.from('N')] },
      { port: 3306, c2s: [null, mysqlHandshakeResponse('shop', 'orders')], s2c: [mysqlGreetingPacket()] },
      {
        port: 5432, c2s: [SSL_REQUEST, hello], s2c: [Buffer.from('S'), serverHello()],
        then: (b, client) => { b.tls(client, S(5432), 'out', pgStartup(Buffer.from('user\0billing\0database\0ledger\0application_name\0worker\0\0')), { pid: 9, comm: 'psql', lib: 'openssl' }); },
      },
      // only the server hooked: it reads the message in pieces, its length first
      {
        port: 5432, c2s: [SSL_REQUEST, hello], s2c: [Buffer.from('S'), serverHello()],
        then: (b, client) => {
          const m = pgStartup(Buffer.from('user\0audit\0database\0events\0\0'));
          for (const piece of [m.subarray(0, 4), m.subarray(4)]) b.tls(client, S(5432), 'in', piece, { pid: 11, comm: 'postgres', lib: 'openssl' });
        },
      },
      {
        port: 3306, c2s: [null, mysqlSslRequest(), hello], s2c: [mysqlGreetingPacket(), null, serverHello()],
        then: (b, client) => { b.tls(client, S(3306), 'out', mysqlHandshakeResponse('app', 'shop', 2), { pid: 10, comm: 'mariadb', lib: 'openssl' }); },
      },
    ]);
    expect(flows.map((f) => [f.app, f.db])).toEqual([
      ['postgres', { user: 'app', database: 'orders', application: null }],
      ['postgres', { user: 'app', database: 'orders', application: null }],
      ['mysql', { user: 'shop', database: 'orders', application: null }],
      ['postgres', { user: 'billing', database: 'ledger', application: 'worker' }],
      ['postgres', { user: 'audit', database: 'events', application: null }],
      ['mysql', { user: 'app', database: 'shop', application: null }],
    ]);
    expect(flows[3]!.tls?.client).toMatchObject({ plaintext: true });
    // the filter language and the JSON lines carry it
    expect(flows.filter(compileFilter('db.name == "orders" && app == "postgres"')).length).toBe(2);
    expect(flows.filter(compileFilter('db.application == "worker"')).map((f) => f.db?.user)).toEqual(['billing']);
    const lines = new FlowJsonLines();
    lines.add(flows[3]!);
    expect(JSON.parse(lines.take().toString())).toEqual(JSON.parse(JSON.stringify(flows[3])));
  });

  it('its hooks\' records anywhere among its packets (the helper hands packets over up to 50 ms later): the same login, app and verdicts', () => {
    // why: a login record that came before the prelude named the flow (SSLRequest and 'S', the MySQL greeting and SSL
    // request) was read while the flow was unnamed, and its login never was
    const hello = fixtureClientHello();
    const plainTls = flowsOf([{ port: 443, c2s: [hello], s2c: [serverHello()] }])[0]!.tls!;
    const appData = Buffer.from('170303001a' + '00'.repeat(26), 'hex');
    const client = { ip: '10.9.4.1', port: 41600 };
    const cases = [
      {
        port: 5432, c2s: [SSL_REQUEST, hello, appData], s2c: [Buffer.from('S'), serverHello(), appData],
        login: pgStartup(Buffer.from('user\0billing\0database\0ledger\0application_name\0worker\0\0')),
        // AuthenticationOk, ReadyForQuery
        answer: Buffer.from('520000000800000000' + '5a0000000549', 'hex'),
        db: { user: 'billing', database: 'ledger', application: 'worker' }, app: 'postgres', comm: { client: 'psql', server: 'postgres' },
      },
      {
        port: 3306, c2s: [null, mysqlSslRequest(), hello, appData], s2c: [mysqlGreetingPacket(), null, serverHello(), appData],
        login: mysqlHandshakeResponse('app', 'shop', 2),
        // an OK packet
        answer: Buffer.from('0700000300000002000000', 'hex'),
        db: { user: 'app', database: 'shop', application: null }, app: 'mysql', comm: { client: 'mariadb', server: 'mariadbd' },
      },
    ];
    // (the records after the packets' segment `at` (-1: before them all), of the hooked end, the connection's owner known
    // to the helper or not; a server reads the login in pieces, its length first)
    const flow = (c: (typeof cases)[number], at: number, hooked: 'client' | 'server', conn: boolean): Flow[] => {
      const b = new CaptureBuilder();
      const srv = S(c.port);
      b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
      if (conn) b.record({ t: 'conn', proto: 'tcp', local: client, remote: srv, role: 'client', pid: 100, tid: 100, comm: c.comm.client, via: 'tracepoint' });
      const records = (): void => {
        if (hooked === 'client') {
          b.tls(client, srv, 'out', c.login, { pid: 100, comm: c.comm.client, lib: 'openssl' });
          b.tls(srv, client, 'in', c.answer, { pid: 100, comm: c.comm.client, lib: 'openssl' });
          return;
        }
        for (const piece of [c.login.subarray(0, 4), c.login.subarray(4)]) b.tls(client, srv, 'in', piece, { pid: 200, comm: c.comm.server, lib: 'openssl' });
        b.tls(srv, client, 'out', c.answer, { pid: 200, comm: c.comm.server, lib: 'openssl' });
      };
      if (at < 0) records();
      tcpConversation(b, client, srv, c.c2s, c.s2c, { afterSegment: (n) => { if (n === at) records(); } });
      return analyzeCapture(b.build(), { end: true }).flows();
    };
    const strip = (f: Flow) => ({ app: f.app, db: f.db, tls: f.tls, packets: f.packets, bytes: f.bytes, tcp: f.tcp, seenBy: f.seenBy });
    for (const c of cases) {
      for (const hooked of ['client', 'server'] as const) {
        // (11 segments, 0 to 10: the handshake's 3, 6 of data, the 2 FINs)
        const last = flow(c, 10, hooked, false);
        expect(last).toHaveLength(1);
        expect(last[0]).toMatchObject({ app: c.app, db: c.db, tls: { sni: plainTls.sni, ja4: plainTls.ja4, cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' } });
        expect(last[0]!.tls![hooked]).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
        for (const conn of [false, true]) {
          for (let at = -1; at <= 10; at++) expect(flow(c, at, hooked, conn).map(strip), `${c.port}: ${hooked}'s records after segment ${at}, conn record ${conn}`).toEqual(last.map(strip));
        }
      }
    }
  });
});
