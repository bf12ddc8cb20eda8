// TLS secrets written into a finished capture file, as Wireshark's `editcap --inject-secrets tls,KEYS` does: a
// decryption secrets block right after the first section header, so that Wireshark, tshark and `tapscope flows`
// decrypt the file's connections with no key log given. Wireshark reads a secrets block in its first pass, before the
// packets after it, so it cannot simply be appended: the file is copied into a temporary one beside it, which then
// takes its place (a process killed meanwhile leaves the capture as it was).
import { chmodSync, closeSync, createReadStream, createWriteStream, fstatSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { TapscopeError } from '../errors.js';
import { BLOCK_SHB, BYTE_ORDER_MAGIC, SECRETS_TLS_KEYLOG } from './types.js';
import { encodeDsb } from './writer.js';

/** Writes `keyLog` (SSLKEYLOGFILE lines) into the pcapng file at `path`, after its first section header. */
export async function injectSecrets(path: string, keyLog: string): Promise<void> {
  const shb = sectionHeader(path);
  // (the section grows by the new block: a section length given in the header would be wrong, so it becomes -1, "not
  // given", as a capture written as it runs has it anyway)
  shb.buf.fill(0xff, 16, 24);
  const tmp = `${path}.secrets-${process.pid}.tmp`;
  // (the copy holds what the capture holds, and secrets: never more readable than the capture, not even for a moment)
  const mode = statSync(path).mode & 0o777;
  try {
    const out = createWriteStream(tmp, { mode });
    out.write(shb.buf);
    out.write(secretsBlock(Buffer.from(keyLog, 'utf8'), shb.le));
    await pipeline(createReadStream(path, { start: shb.buf.length }), out);
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new TapscopeError('E_EXPORT', `cannot write the TLS secrets into ${path}: ${(e as Error).message}`);
  }
}

/** The file's first block, a section header (else E_PCAPNG_MALFORMED), and its byte order. */
function sectionHeader(path: string): { buf: Buffer; le: boolean } {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(12);
    if (readSync(fd, head, 0, 12, 0) < 12 || head.readUInt32LE(0) !== BLOCK_SHB) {
      throw new TapscopeError('E_PCAPNG_MALFORMED', `${path} does not start with a pcapng section header: TLS secrets cannot be written into it`, { offset: 0 });
    }
    const le = head.readUInt32LE(8) === BYTE_ORDER_MAGIC;
    if (!le && head.readUInt32BE(8) !== BYTE_ORDER_MAGIC) {
      throw new TapscopeError('E_PCAPNG_MALFORMED', `${path}: its section header has no byte-order magic at byte 8`, { offset: 8 });
    }
    const len = le ? head.readUInt32LE(4) : head.readUInt32BE(4);
    if (len < 28 || len % 4 !== 0 || len > fstatSync(fd).size) {
      throw new TapscopeError('E_PCAPNG_MALFORMED', `${path}: its section header's length (${len}) does not fit the file`, { offset: 4 });
    }
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, 0);
    return { buf, le };
  } finally {
    closeSync(fd);
  }
}

/** A decryption secrets block of TLS key log lines, in the section's byte order. */
function secretsBlock(data: Buffer, le: boolean): Buffer {
  const b = encodeDsb(SECRETS_TLS_KEYLOG, data);
  // (the writer's blocks are little-endian: a big-endian section's has its 32-bit fields turned, the lines stay as they are)
  if (!le) for (const at of [0, 4, 8, 12, b.length - 4]) b.writeUInt32BE(b.readUInt32LE(at), at);
  return b;
}
