// QUIC 1-RTT decryption across key updates (RFC 9001 §6): a connection sealed here, by a sender written from the RFC
// with its own HKDF (not the reader's key schedule), whose client updates its keys twice and sends one packet of the
// previous generation late. Real clients in the lab (capture-quic-keylog) update once; the second update is where a
// reader that does not move on to the next generation's keys goes wrong.
import { describe, it, expect } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { QuicDecryptor } from '../../src/dissect/quic-decrypt.js';
import { V1_SALT, cryptoFrame, initialPacket, keysOf, label, seal, type Keys } from './quic-seal.js';

/** An Initial packet (QUIC v1) numbered 0 carrying `crypto` at offset 0, padded. */
function initial(k: Keys, dcid: Buffer, scid: Buffer, crypto: Buffer): Buffer {
  return initialPacket(k, dcid, scid, cryptoFrame(0, crypto));
}

/** A 1-RTT packet numbered `pn` with key phase `phase`: a PING and padding. */
function oneRtt(k: Keys, dcid: Buffer, pn: number, phase: number): Buffer {
  const header = Buffer.concat([Buffer.from([0x40 | (phase << 2)]), dcid, Buffer.from([pn])]);
  return seal(k, header, pn, Buffer.concat([Buffer.from([0x01]), Buffer.alloc(40)]), false);
}

describe('QUIC 1-RTT packets across key updates', () => {
  const dcid = randomBytes(8);
  const clientCid = randomBytes(8);
  const serverCid = randomBytes(8);
  const initialSecret = createHmac('sha256', V1_SALT).update(dcid).digest();
  const random = randomBytes(32);
  const clientHello = Buffer.concat([Buffer.from([0x01, 0, 0, 38, 0x03, 0x03]), random, Buffer.from([0x00])]);
  const serverHello = Buffer.concat([Buffer.from([0x02, 0, 0, 40, 0x03, 0x03]), randomBytes(32), Buffer.from([0x00, 0x13, 0x01, 0x00])]);
  const client0 = randomBytes(32);
  const server0 = randomBytes(32);
  // (the client's generations: each secret the "quic ku" label of the one before, §6.1)
  const g0 = keysOf(client0);
  const g1 = keysOf(label(client0, 'quic ku', 32), g0.hp);
  const g2 = keysOf(label(label(client0, 'quic ku', 32), 'quic ku', 32), g0.hp);

  function connection(): QuicDecryptor {
    const first = initial(keysOf(label(initialSecret, 'client in', 32)), dcid, clientCid, clientHello);
    const qd = new QuicDecryptor(first);
    qd.push(first, true, 0);
    qd.push(initial(keysOf(label(initialSecret, 'server in', 32)), clientCid, serverCid, serverHello), false, 1);
    expect(qd.clientRandom).toEqual(random);
    expect(qd.cipher).toBe(0x1301);
    qd.setSecrets({ client0, server0 });
    return qd;
  }

  it('opens the packets of three generations, the key phase bit flipping at each update, and a late one of the one before', () => {
    const qd = connection();
    const sent: [Keys, number, number][] = [[g0, 0, 0], [g0, 1, 0], [g1, 2, 1], [g1, 3, 1], [g2, 5, 0], [g1, 4, 1], [g2, 6, 0]];
    for (const [k, pn, phase] of sent) qd.push(oneRtt(k, serverCid, pn, phase), true, 10 + pn);
    expect(qd.problems).toBeNull();
    expect(qd.packets).toBe(sent.length);
  });

  it('a packet sealed with keys of no generation it knows is counted as not authenticated, and the rest still open', () => {
    const qd = connection();
    qd.push(oneRtt(g0, serverCid, 0, 0), true, 10);
    qd.push(oneRtt(keysOf(randomBytes(32), g0.hp), serverCid, 1, 0), true, 11);
    qd.push(oneRtt(g1, serverCid, 2, 1), true, 12);
    expect(qd.packets).toBe(2);
    expect(qd.problems).toBe("client to server: 1 packets did not authenticate with the key log's keys");
  });
});
