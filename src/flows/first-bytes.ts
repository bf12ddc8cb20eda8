// The first bytes of each flow direction (what the flow detail shows as hex), kept outside the garbage-
// collected heap: every flow of a large capture carries them, and as strings they were a tenth of what the
// collector copied per flow. Directions get 64-byte slots in 1 MiB pages, allocated on first payload.

/** Bytes kept per direction. */
export const FIRST_BYTES = 64;
const PER_PAGE = 16384;
/** A handle is slot * HANDLE + bytes kept; NO_BYTES: nothing kept yet. */
const HANDLE = 128;
export const NO_BYTES = -1;

export class FirstBytes {
  private readonly pages: Uint8Array[] = [];
  private slots = 0;

  /** Appends buf[start, end) to what `handle` holds, up to FIRST_BYTES; returns the new handle. */
  keep(handle: number, buf: Uint8Array, start: number, end: number): number {
    const have = handle === NO_BYTES ? 0 : handle % HANDLE;
    const take = Math.min(end - start, FIRST_BYTES - have);
    if (take <= 0) return handle;
    const slot = handle === NO_BYTES ? this.slots++ : (handle - have) / HANDLE;
    const page = this.pages[Math.floor(slot / PER_PAGE)] ?? this.addPage();
    const at = (slot % PER_PAGE) * FIRST_BYTES + have;
    // why a loop: at most 64 bytes, cheaper than a subarray object for set()
    for (let i = 0; i < take; i++) page[at + i] = buf[start + i]!;
    return slot * HANDLE + have + take;
  }

  /** How many bytes `handle` holds. */
  static size(handle: number): number {
    return handle === NO_BYTES ? 0 : handle % HANDLE;
  }

  hex(handle: number): string {
    const n = FirstBytes.size(handle);
    if (n === 0) return '';
    const slot = (handle - n) / HANDLE;
    const at = (slot % PER_PAGE) * FIRST_BYTES;
    return Buffer.from(this.pages[Math.floor(slot / PER_PAGE)]!.buffer, at, n).toString('hex');
  }

  private addPage(): Uint8Array {
    const p = new Uint8Array(PER_PAGE * FIRST_BYTES);
    this.pages.push(p);
    return p;
  }
}
