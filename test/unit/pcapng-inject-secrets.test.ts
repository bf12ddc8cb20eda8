// TLS secrets written into a finished capture (`capture --keylog`): one decryption secrets block right after the first
// section header, in the section's byte order, everything else byte for byte; tshark reads the result; a file that is
// no pcapng is refused and left as it was.
import { describe, it, expect, afterAll } from 'vitest';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { injectSecrets } from '../../src/pcapng/inject-secrets.js';
import { parseBuffer, type PcapngBlock } from '../../src/pcapng/index.js';
import { SECRETS_TLS_KEYLOG } from '../../src/pcapng/types.js';
import { isTapscopeError } from '../../src/errors.js';

const FIX = join(import.meta.dirname, '../fixtures/pcapng');
const tmp = mkdtempSync(join(tmpdir(), 'tsc-inject-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// (odd length: the block pads it to 32 bits and says its real length)
const KEYS = `CLIENT_RANDOM ${'ab'.repeat(32)} ${'cd'.repeat(48)}\nCLIENT_TRAFFIC_SECRET_0 ${'ef'.repeat(32)} ${'01'.repeat(32)}\n#`;

function copyOf(fixture: string, name: string): string {
  const p = join(tmp, name);
  copyFileSync(join(FIX, fixture), p);
  return p;
}

const strip = (b: PcapngBlock): unknown => ({ ...b, offset: undefined });

describe('injectSecrets', () => {
  for (const [fixture, order] of [['lo-udp.pcapng', 'little'], ['lo-udp-be.pcapng', 'big']] as const) {
    it(`writes one secrets block after the section header of a ${order}-endian capture, the rest unchanged`, async () => {
      const before = readFileSync(join(FIX, fixture));
      const path = copyOf(fixture, `${order}.pcapng`);
      chmodSync(path, 0o640);
      await injectSecrets(path, KEYS);
      const after = readFileSync(path);
      const shbLen = order === 'little' ? before.readUInt32LE(4) : before.readUInt32BE(4);
      const dsbLen = 20 + Math.ceil(Buffer.byteLength(KEYS) / 4) * 4;
      expect(after.length).toBe(before.length + dsbLen);
      // (the section header as it was, but for its section length, now "not given")
      expect(after.subarray(0, 16)).toEqual(before.subarray(0, 16));
      expect(after.subarray(16, 24)).toEqual(Buffer.alloc(8, 0xff));
      expect(after.subarray(24, shbLen)).toEqual(before.subarray(24, shbLen));
      expect(after.subarray(shbLen + dsbLen)).toEqual(before.subarray(shbLen));
      const blocks = parseBuffer(after);
      expect(blocks[1]).toMatchObject({ type: 'dsb', secretsType: SECRETS_TLS_KEYLOG });
      expect((blocks[1] as Extract<PcapngBlock, { type: 'dsb' }>).data.toString('utf8')).toBe(KEYS);
      const old = parseBuffer(before);
      expect(blocks.filter((b) => b.type !== 'dsb' && b.type !== 'shb').map(strip)).toEqual(old.filter((b) => b.type !== 'shb').map(strip));
      expect(statSync(path).mode & 0o777).toBe(0o640);
      // (tshark reads it cleanly: that it decrypts with the block is capture-keylog.test.ts's)
      const r = spawnSync('tshark', ['-r', path, '-q', '-z', 'io,stat,0'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr.replace(/Running as user .*\n/, '')).toBe('');
      expect(readdirSync(tmp).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    });
  }

  it('sets a section length the header gave to "not given" (the section grew)', async () => {
    const buf = readFileSync(join(FIX, 'lo-udp.pcapng'));
    buf.writeBigInt64LE(BigInt(buf.length - buf.readUInt32LE(4)), 16);
    const path = join(tmp, 'sized.pcapng');
    writeFileSync(path, buf);
    await injectSecrets(path, KEYS);
    expect(readFileSync(path).readBigInt64LE(16)).toBe(-1n);
    expect(spawnSync('tshark', ['-r', path, '-q'], { encoding: 'utf8' }).status).toBe(0);
  });

  it('refuses a file that is no pcapng (a pcap, a cut header) and leaves it as it was', async () => {
    const pcap = copyOf('lo-udp.pcap', 'old.pcap');
    const cut = join(tmp, 'cut.pcapng');
    const whole = readFileSync(join(FIX, 'lo-udp.pcapng'));
    writeFileSync(cut, whole.subarray(0, whole.readUInt32LE(4) - 4));
    for (const p of [pcap, cut]) {
      const was = readFileSync(p);
      const e = await injectSecrets(p, KEYS).then(() => null, (x: unknown) => x);
      expect(isTapscopeError(e, 'E_PCAPNG_MALFORMED'), String(e)).toBe(true);
      expect(readFileSync(p)).toEqual(was);
    }
    expect(readdirSync(tmp).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
