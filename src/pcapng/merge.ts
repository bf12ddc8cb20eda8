// Several live pcapng streams (one per node, each a sequence of sections) merged into one little-endian
// section, block by block as they arrive: what `tapscope capture --out -` writes for Wireshark (`| wireshark -k
// -i -`) and tshark. Sections cannot interleave, so every source's interfaces are renumbered into the one
// section: each IDB is written again with its name prefixed by its source ("node-a/eth0"), and the interface id
// of every EPB and ISB is rewritten. Name resolution and secrets blocks pass through. Tapscope's own custom
// blocks (process and connection records, node names) do not: they describe their section, and in one merged
// section they would name the wrong node; the saved session keeps them. What the helper never writes is left out
// with a note rather than rewritten: big-endian sections (the helper writes little-endian on every node it runs
// on), simple and obsolete packet blocks.
import {
  BLOCK_CB_COPY, BLOCK_CB_NOCOPY, BLOCK_EPB, BLOCK_IDB, BLOCK_ISB, BLOCK_OBSOLETE_PB, BLOCK_SHB, BLOCK_SPB, TAPSCOPE_PEN, type RawOption,
} from './types.js';
import { newFraming, wholeBlocks, type Framing } from './framing.js';
import { encodeBlock, encodeShb } from './writer.js';
import { utf8NoNul } from './bytes.js';

const OPT_IF_NAME = 2;

interface Source {
  /** bytes of an incomplete block, waiting for the rest */
  pending: Buffer;
  framing: Framing;
  /** the current section's interface ids -> merged ids */
  ifaces: number[];
  /** a stream that stopped being pcapng: nothing more of it is passed on */
  dead: boolean;
}

export class LiveSectionMerger {
  private readonly sources = new Map<string, Source>();
  private nextIface = 0;
  private started = false;
  /** what was left out and why, once each (for the caller to report) */
  readonly notes: string[] = [];

  /** `emit` receives whole blocks, the section header first. */
  constructor(private readonly emit: (bytes: Buffer) => void, private readonly userappl = 'tapscope capture') {}

  /** A new stream of `source` begins (a reconnect): what is left of its last one is dropped. */
  begin(source: string): void {
    this.sources.delete(source);
  }

  /** Bytes of `source`'s stream, cut anywhere. */
  push(source: string, chunk: Buffer): void {
    let s = this.sources.get(source);
    if (!s) {
      s = { pending: Buffer.alloc(0), framing: newFraming(), ifaces: [], dead: false };
      this.sources.set(source, s);
    }
    if (s.dead) return;
    const buf = s.pending.length ? Buffer.concat([s.pending, chunk]) : chunk;
    const end = wholeBlocks(buf, 0, s.framing, (start, stop) => {
      if (!s.dead) this.block(source, s, buf.subarray(start, stop));
    });
    if (end < 0 || s.dead) {
      s.dead = true;
      s.pending = Buffer.alloc(0);
      this.note(`${source}: its stream is not pcapng here; the rest of it is left out`);
      return;
    }
    s.pending = end === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(end));
  }

  private block(source: string, s: Source, b: Buffer): void {
    const type = b.readUInt32LE(0);
    if (type === BLOCK_SHB) {
      s.ifaces = [];
      if (!s.framing.le) this.note(`${source}: a big-endian section is left out of the merged stream (the saved session has it)`);
      return;
    }
    if (!s.framing.sectioned) {
      s.dead = true;
      return;
    }
    if (!s.framing.le) return;
    switch (type) {
      case BLOCK_IDB:
        s.ifaces.push(this.nextIface++);
        this.out(renamedIdb(b, source));
        return;
      case BLOCK_EPB:
      case BLOCK_ISB: {
        const id = s.ifaces[b.readUInt32LE(8)];
        if (id === undefined) return this.note(`${source}: a block names an interface its section did not describe; left out`);
        const copy = Buffer.from(b);
        copy.writeUInt32LE(id, 8);
        this.out(copy);
        return;
      }
      case BLOCK_CB_COPY:
      case BLOCK_CB_NOCOPY:
        if (b.length >= 16 && b.readUInt32LE(8) === TAPSCOPE_PEN) return;
        this.out(b);
        return;
      case BLOCK_SPB:
      case BLOCK_OBSOLETE_PB:
        // (packets whose interface is implicit or in another layout; the helper writes neither)
        return this.note(`${source}: ${type === BLOCK_SPB ? 'simple' : 'obsolete'} packet blocks are left out of the merged stream`);
      default:
        this.out(b);
    }
  }

  private out(b: Buffer): void {
    if (!this.started) {
      this.started = true;
      this.emit(encodeShb({ userappl: this.userappl, comments: ['merged live from the nodes of one capture; interfaces are named node/interface'] }));
    }
    this.emit(b);
  }

  private note(text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text);
  }
}

/** The IDB b (little-endian) with if_name "source/name" (or "source" when it had none); other options unchanged. */
function renamedIdb(b: Buffer, source: string): Buffer {
  const end = b.length - 4;
  const kept: RawOption[] = [];
  let name = '';
  let p = 16;
  while (p + 4 <= end) {
    const code = b.readUInt16LE(p);
    const len = b.readUInt16LE(p + 2);
    // (an overrunning option ends the list here, where the parser's optionAt would throw: a live tap must not)
    if (code === 0 || p + 4 + len > end) break;
    if (code === OPT_IF_NAME) name = utf8NoNul(b, p + 4, p + 4 + len);
    else kept.push({ code, value: b.subarray(p + 4, p + 4 + len) });
    p += 4 + ((len + 3) & ~3);
  }
  return encodeBlock(BLOCK_IDB, b.subarray(8, 16), null, [{ code: OPT_IF_NAME, value: Buffer.from(name ? `${source}/${name}` : source, 'utf8') }, ...kept]);
}
