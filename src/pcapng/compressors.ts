// The compressors whose captures tapscope knows: by their magic numbers (the core) and their files' extensions (the
// app's drop), each with the command that decompresses one. No Node imports: the renderer uses it too.

export type Compression = 'gzip' | 'zstd' | 'lz4' | 'xz' | 'bzip2';

export const COMPRESSORS: readonly { name: Compression; magic: readonly number[]; ext: string; tool: string }[] = [
  { name: 'gzip', magic: [0x1f, 0x8b], ext: 'gz', tool: 'gzip -d' },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], ext: 'zst', tool: 'zstd -d' },
  { name: 'lz4', magic: [0x04, 0x22, 0x4d, 0x18], ext: 'lz4', tool: 'lz4 -d' },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], ext: 'xz', tool: 'xz -d' },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], ext: 'bz2', tool: 'bzip2 -d' },
];
