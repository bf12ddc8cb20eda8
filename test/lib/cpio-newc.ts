// Writes cpio archives in the "newc" format (the one the Linux kernel unpacks as an initramfs), so the
// arm64 VM harness (test/lib/arm64-vm.ts) builds its initramfs without a cpio binary.
// Format: each member is a 110-byte ASCII header ("070701" and 13 fields of 8 hex digits), the
// NUL-terminated name, padding to 4 bytes, the data, padding to 4 bytes; a "TRAILER!!!" member ends it.

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';

interface Header {
  ino: number;
  mode: number;
  nlink: number;
  filesize: number;
  rdevmajor: number;
  rdevminor: number;
  namesize: number;
}

function hex8(n: number, field: string): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`cpio-newc: ${field} ${n} does not fit 8 hex digits`);
  return n.toString(16).padStart(8, '0');
}

/** The 110-byte header; uid, gid, mtime and the device of the archive are 0 (reproducible archives, owned by root). */
export function newcHeader(h: Header): Buffer {
  const fields: Array<[string, number]> = [
    ['ino', h.ino], ['mode', h.mode], ['uid', 0], ['gid', 0], ['nlink', h.nlink], ['mtime', 0],
    ['filesize', h.filesize], ['devmajor', 0], ['devminor', 0], ['rdevmajor', h.rdevmajor],
    ['rdevminor', h.rdevminor], ['namesize', h.namesize], ['check', 0],
  ];
  return Buffer.from('070701' + fields.map(([name, v]) => hex8(v, name)).join(''), 'latin1');
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

/** Archive names are relative ("bin/busybox"); the kernel resolves them against the root of the initramfs. */
function archiveName(path: string): string {
  const name = path.replace(/^\/+/, '');
  if (name === '' || name.split('/').some((part) => part === '..' || part === '')) {
    throw new Error(`cpio-newc: bad member path ${JSON.stringify(path)} (need a path without "..", empty parts or a trailing slash)`);
  }
  return name;
}

function member(ino: number, name: string, mode: number, nlink: number, data: Buffer, rdev = { major: 0, minor: 0 }): Buffer[] {
  const nameBytes = Buffer.from(name + '\0', 'utf8');
  const header = newcHeader({
    ino, mode, nlink, filesize: data.length, rdevmajor: rdev.major, rdevminor: rdev.minor, namesize: nameBytes.length,
  });
  return [header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length)];
}

function entryParts(entry: CpioEntry, ino: number): Buffer[] {
  const name = archiveName(entry.path);
  switch (entry.type) {
    case 'dir': return member(ino, name, S_IFDIR | (entry.mode ?? 0o755), 2, Buffer.alloc(0));
    case 'file': return member(ino, name, S_IFREG | (entry.mode ?? 0o644), 1, entry.data);
    case 'symlink': return member(ino, name, S_IFLNK | 0o777, 1, Buffer.from(entry.target, 'utf8'));
    case 'chardev': return member(ino, name, S_IFCHR | (entry.mode ?? 0o600), 1, Buffer.alloc(0), entry);
  }
}

/**
 * The archive of `entries`, in the order given. why: the kernel creates members in order and does not create
 * missing parent directories, so every directory must come before what is in it (the caller orders them).
 */
export function encodeNewc(entries: readonly CpioEntry[]): Buffer {
  const parts = entries.flatMap((e, i) => entryParts(e, i + 1));
  parts.push(...member(0, TRAILER, 0, 1, Buffer.alloc(0)));
  return Buffer.concat(parts);
}
