// A live capture's node files, followed as they grow (tail -f) and merged into one pcapng section on a writable:
// `tapscope capture --out -` (standard output, for `| wireshark -k -i -` or tshark) and the app's Open in Wireshark
// (Wireshark's standard input). Every file is read from its first block, so a reader gets the packets from before
// it was started; it is read at the writable's pace (backpressure), so a slow reader slows only this follower,
// never the capture, and misses nothing; the follow ends when the capture has ended and every file is read to
// its end. Only the bytes each node's writer wrote are read: the session's finish appends the other nodes' files
// to the first node's, which is not that node's stream.
import { closeSync, openSync, readSync } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { LiveSectionMerger } from '../pcapng/merge.js';

/** The files of a live capture, one per node, that grow while it runs. */
export interface GrowingFiles {
  /**
   * The node files so far (a node may join later), with how many of their bytes are the node's stream: a file can
   * hold more (the session's finish appends the other nodes' files to the first node's), which is not read.
   */
  files(): { node: string; path: string; written: number }[];
  /** true once every file has its last byte (the capture ended and its writers closed) */
  ended(): boolean;
}

export interface FollowOptions {
  /** the merged section's application name (its shb_userappl) */
  app?: string;
  /** the longest wait between looks at the files when nothing wakes the follower (ms) */
  pollMs?: number;
  /** ends the follow (the reader is gone some other way, e.g. Wireshark exited) */
  signal?: AbortSignal;
  /** end() the writable when done (a child's standard input); standard output is left open */
  end?: boolean;
}

export interface Follower {
  /** settles when everything was written (gone: false) or the reader went away first (gone: true) */
  done: Promise<{ gone: boolean }>;
  /** what was left out of the merged section and why */
  notes: string[];
  /** new bytes were written: look now instead of at the next poll */
  wake(): void;
  /** opens every file named so far, so that it is still read after its name is removed (the session's finish) */
  pin(): void;
}

const READ_BYTES = 1 << 20;

export function followCapture(src: GrowingFiles, out: Writable, opts: FollowOptions = {}): Follower {
  const pollMs = opts.pollMs ?? 100;
  let gone = false;
  const lost = (): void => { gone = true; wake(); };
  // (EPIPE: the reader closed its end)
  out.on('error', lost);
  out.on('close', lost);
  opts.signal?.addEventListener('abort', lost);
  let full = false;
  // why a batch: one write per read (up to 1 MiB of blocks), not one per block
  let batch: Buffer[] = [];
  const merger = new LiveSectionMerger((block) => { batch.push(block); }, opts.app);
  const flush = (): void => {
    if (batch.length === 0) return;
    const bytes = batch.length === 1 ? batch[0]! : Buffer.concat(batch);
    batch = [];
    if (!gone && !out.write(bytes)) full = true;
  };
  const open = new Map<string, { fd: number; at: number; node: string; written: number }>();
  const pin = (): void => {
    for (const f of src.files()) {
      let o = open.get(f.path);
      if (!o) {
        try {
          o = { fd: openSync(f.path, 'r'), at: 0, node: f.node, written: 0 };
        } catch {
          continue; // not created yet
        }
        open.set(f.path, o);
      }
      o.written = f.written;
      // (a file already open is read through its descriptor even once the session's finish removed its name)
    }
  };
  let sleeping: (() => void) | null = null;
  function wake(): void {
    const s = sleeping;
    sleeping = null;
    s?.();
  }
  const nap = (): Promise<void> => new Promise((resolve) => {
    const t = setTimeout(() => { sleeping = null; resolve(); }, pollMs);
    sleeping = () => { clearTimeout(t); resolve(); };
  });
  const done = (async () => {
    try {
      while (!gone) {
        // why ended() first: a pass that starts after the last write and finds nothing new has read everything
        const ended = src.ended();
        pin();
        let read = false;
        for (const o of open.values()) {
          for (;;) {
            const want = Math.min(READ_BYTES, o.written - o.at);
            if (want <= 0) break;
            // (a fresh buffer per read: the writable keeps the blocks written to it until its reader takes them)
            const chunk = Buffer.allocUnsafe(want);
            const n = readSync(o.fd, chunk, 0, want, o.at);
            if (n === 0) break;
            o.at += n;
            read = true;
            merger.push(o.node, chunk.subarray(0, n));
            flush();
            if (full && !gone) {
              full = false;
              // (the listeners that lose are removed: thousands of waits on a large capture must not pile up)
              const ac = new AbortController();
              const waits = [once(out, 'drain', { signal: ac.signal }), once(out, 'close', { signal: ac.signal })];
              if (opts.signal) waits.push(once(opts.signal, 'abort', { signal: ac.signal }));
              await Promise.race(waits).catch(() => undefined);
              ac.abort();
            }
            if (gone) return { gone: true };
          }
        }
        if (!read) {
          if (ended) break;
          await nap();
        }
      }
      return { gone };
    } finally {
      for (const o of open.values()) closeSync(o.fd);
      out.off('close', lost);
      opts.signal?.removeEventListener('abort', lost);
      // (the error listener stays: a write still queued may fail after this)
      if (!gone && opts.end) out.end();
    }
  })();
  return { done, notes: merger.notes, wake, pin };
}
