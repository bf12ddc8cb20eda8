// pcapng reading and writing: the one format between helper, core, store and export.
export * from './types.js';
export { PcapngParser, pad4, type RawPacketSink } from './parser.js';
export { PcapngReader, readBlocks, parseBuffer, type ReadResult, type TruncatedTail, type ReaderOptions, type ReadBlocksOptions } from './reader.js';
export * from './writer.js';
export * from './exported-pdu.js';
