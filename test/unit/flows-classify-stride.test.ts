// What a connection is, told from its first bytes, must not depend on how its client's first message was cut into
// segments: each protocol's opening cut into pieces of 1 to 24 bytes gives the flow the whole message gives (the
// stride test of the classifier, as every parser has one). One- and two-byte first segments ("G", "PO") once made
// an HTTP flow unknown.
import { describe, it, expect } from 'vitest';
import { conversationFlows } from './conversation-flows.js';
import { fixtureClientHello, prelogin, tds, tls12ServerHello } from './core-packet-builder.js';

const ldapStartTls = Buffer.from('301d02010177188016312e332e362e312e342e312e313436362e3230303337', 'hex');
/** name, port, the client's first message, the server's answer, the app, and the server's greeting before it all */
const OPENINGS: [string, number, Buffer, Buffer, string, Buffer?][] = [
  ['http', 80, Buffer.from('POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 2\r\n\r\n{}'), Buffer.from('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'), 'http'],
  ['http2', 80, Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from('000000040000000000', 'hex')]), Buffer.from('000000040000000000', 'hex'), 'http2'],
  ['tls', 443, fixtureClientHello(), tls12ServerHello(), 'tls'],
  ['postgres TLS', 5432, Buffer.concat([Buffer.from('0000000804d2162f', 'hex'), fixtureClientHello()]), Buffer.concat([Buffer.from('S'), tls12ServerHello()]), 'postgres'],
  ['ldap StartTLS', 389, Buffer.concat([ldapStartTls, fixtureClientHello()]), Buffer.concat([Buffer.from('300c02010178070a010004000400', 'hex'), tls12ServerHello()]), 'ldap'],
  ['ssh', 22, Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'), Buffer.from('SSH-2.0-OpenSSH_9.2p1\r\n'), 'ssh'],
  ['redis', 6379, Buffer.from('*1\r\n$4\r\nPING\r\n'), Buffer.from('+PONG\r\n'), 'redis'],
  ['smtp', 587, Buffer.from('EHLO client.example\r\n'), Buffer.from('250-mx.example\r\n250 STARTTLS\r\n'), 'smtp', Buffer.from('220 mx.example ESMTP\r\n')],
  ['ftp', 21, Buffer.from('AUTH TLS\r\n'), Buffer.from('234 Proceed\r\n'), 'ftp', Buffer.from('220 lab ftp\r\n')],
  ['nntp', 119, Buffer.concat([Buffer.from('STARTTLS\r\n'), fixtureClientHello()]), Buffer.concat([Buffer.from('382 go\r\n'), tls12ServerHello()]), 'nntp', Buffer.from('200 news ready\r\n')],
  ['sieve', 4190, Buffer.concat([Buffer.from('STARTTLS\r\n'), fixtureClientHello()]), Buffer.concat([Buffer.from('OK "go"\r\n'), tls12ServerHello()]), 'sieve', Buffer.from('"IMPLEMENTATION" "lab"\r\n"STARTTLS"\r\nOK\r\n')],
  ['xmpp', 5222, Buffer.concat([Buffer.from("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='a' version='1.0'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), fixtureClientHello()]),
    Buffer.concat([Buffer.from("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features><proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), tls12ServerHello()]), 'xmpp'],
  ['nats', 4222, fixtureClientHello(), tls12ServerHello(), 'nats', Buffer.from('INFO {"server_id":"N","tls_required":true}\r\n')],
  ['mssql', 1433, Buffer.concat([tds(0x12, prelogin(1)), tds(0x12, fixtureClientHello())]), Buffer.concat([tds(0x04, prelogin(1)), tds(0x12, tls12ServerHello())]), 'mssql'],
];

describe('the classifier, over every cut of the client\'s first message', () => {
  for (const [name, port, opening, answer, app, greeting] of OPENINGS) {
    it(name, () => {
      const first = greeting ? [greeting] : [];
      const before = greeting ? [null] : [];
      const whole = conversationFlows([{ port, c2s: [...before, opening], s2c: [...first, answer] }])[0]!;
      expect(whole.app).toBe(app);
      for (let size = 1; size <= 24; size++) {
        const pieces: Buffer[] = [];
        for (let at = 0; at < opening.length; at += size) pieces.push(opening.subarray(at, at + size));
        const [f] = conversationFlows([{ port, c2s: [...before, ...pieces, null], s2c: [...first, ...pieces.map(() => null), answer] }]);
        expect([f!.app, f!.tls, f!.http], `${name} in ${size}-byte segments`).toEqual([whole.app, whole.tls, whole.http]);
      }
    });
  }
});
