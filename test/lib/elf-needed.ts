// Reads the DT_NEEDED entries (the shared libraries a program or library loads at start) of a 64-bit
// little-endian ELF file, as `readelf -d` lists them: the arm64 VM harness uses it to check that its
// sysroot holds every library its binaries need, without depending on a cross binutils.

const SHT_DYNAMIC = 6;
const DT_NULL = 0n;
const DT_NEEDED = 1n;

function cString(buf: Buffer, offset: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end < 0 ? buf.length : end);
}

/** True for an ELF file of any class and byte order. */
export function isElf(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32BE(0) === 0x7f454c46;
}

/**
 * The sonames `buf` needs, in file order; [] for a static executable. Throws for anything but ELF64
 * little-endian (x86-64 and aarch64 are both), naming what it found.
 */
export function elfNeeded(buf: Buffer): string[] {
  if (!isElf(buf)) throw new Error('elf-needed: not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error(`elf-needed: only ELF64 little-endian is read (class ${buf[4]}, data ${buf[5]})`);
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      type: buf.readUInt32LE(at + 4),
      offset: Number(buf.readBigUInt64LE(at + 0x18)),
      size: Number(buf.readBigUInt64LE(at + 0x20)),
      link: buf.readUInt32LE(at + 0x28),
    };
  };
  for (let i = 0; i < shnum; i++) {
    const dyn = section(i);
    if (dyn.type !== SHT_DYNAMIC) continue;
    // why: a DT_NEEDED value is an offset into the string table that the dynamic section's sh_link names (.dynstr)
    const strtab = section(dyn.link);
    const needed: string[] = [];
    for (let at = dyn.offset; at + 16 <= dyn.offset + dyn.size; at += 16) {
      const tag = buf.readBigInt64LE(at);
      if (tag === DT_NULL) break;
      if (tag === DT_NEEDED) needed.push(cString(buf, strtab.offset + Number(buf.readBigUInt64LE(at + 8))));
    }
    return needed;
  }
  return [];
}
