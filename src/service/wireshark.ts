// "Open in Wireshark" for a session. A saved session opens as a pcapng export (`wireshark -r FILE`). A live one
// opens as a capture Wireshark reads from a pipe while it grows (`wireshark -k -i -`, as with `tcpdump -w - |
// wireshark -k -i -`): the node files are read from their first block and followed as they grow (tail -f), merged
// into one section as `capture --out -` merges the live streams, until the capture has ended and every file is
// read to its end. Reading the saved files rather than the live chunks gives Wireshark the packets from before it
// was opened, and a slow Wireshark slows only this reader (the pipe's backpressure), never the capture, and loses
// nothing. The binary: $TAPSCOPE_WIRESHARK (a path or a name on PATH), else `wireshark` on PATH.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { once } from 'node:events';
import { TapscopeError } from '../errors.js';
import { LiveSectionMerger } from '../pcapng/merge.js';

/** Where the installers put Wireshark when it is not on PATH (a macOS app bundle, Windows' Program Files). */
const INSTALLED: Partial<Record<NodeJS.Platform, string[]>> = {
  darwin: ['/Applications/Wireshark.app/Contents/MacOS/Wireshark'],
  win32: ['C:\\Program Files\\Wireshark\\Wireshark.exe'],
};

/** The Wireshark executable to run, or E_WIRESHARK_NOT_FOUND saying what to do. */
export function findWireshark(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const want = env.TAPSCOPE_WIRESHARK || 'wireshark';
  const isPath = isAbsolute(want) || /[\\/]/.test(want);
  const candidates = isPath ? [want] : (env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, want));
  if (!env.TAPSCOPE_WIRESHARK) candidates.push(...(INSTALLED[platform] ?? []));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  throw new TapscopeError('E_WIRESHARK_NOT_FOUND', env.TAPSCOPE_WIRESHARK
    ? `TAPSCOPE_WIRESHARK names ${want}, which is not an executable file${isPath ? '' : ' on PATH'}`
    : 'Wireshark was not found on PATH: install it (the wireshark package), or set TAPSCOPE_WIRESHARK to its path');
}

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

export interface WiresharkRun {
  child: ChildProcess;
  /** settles when the pipe is closed: everything sent, or Wireshark gone */
  done: Promise<void>;
  /** what was left out of the merged section and why */
  notes: string[];
}

const READ_BYTES = 1 << 20;

/** Starts Wireshark on a pipe and feeds it the capture's files, followed until they end; `pollMs` between looks. */
export function followInWireshark(bin: string, src: GrowingFiles, pollMs = 100): WiresharkRun {
  const child = spawn(bin, ['-k', '-i', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const stdin = child.stdin!;
  let gone = false;
  // (EPIPE: Wireshark was closed; its exit comes too)
  stdin.on('error', () => { gone = true; });
  child.on('error', () => { gone = true; });
  child.on('exit', () => { gone = true; });
  let full = false;
  const merger = new LiveSectionMerger((block) => {
    if (!gone && !stdin.write(block)) full = true;
  }, 'tapscope (open in Wireshark)');
  const done = (async () => {
    const open = new Map<string, { fd: number; at: number; node: string; written: number }>();
    try {
      while (!gone) {
        // why ended() first: a pass that starts after the last write and finds nothing new has read everything
        const ended = src.ended();
        let read = false;
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
        for (const o of open.values()) {
          for (;;) {
            const want = Math.min(READ_BYTES, o.written - o.at);
            if (want <= 0) break;
            const chunk = Buffer.allocUnsafe(want);
            const n = readSync(o.fd, chunk, 0, want, o.at);
            if (n === 0) break;
            o.at += n;
            read = true;
            // (a fresh buffer per read: the pipe keeps the blocks written to it until Wireshark takes them)
            merger.push(o.node, chunk.subarray(0, n));
            if (full && !gone) {
              full = false;
              // (the listener that loses is removed: thousands of waits on a large capture must not pile up)
              const ac = new AbortController();
              await Promise.race([once(stdin, 'drain', { signal: ac.signal }), once(child, 'exit', { signal: ac.signal })]).catch(() => undefined);
              ac.abort();
            }
            if (gone) return;
          }
        }
        if (!read) {
          if (ended) break;
          await new Promise((r) => setTimeout(r, pollMs));
        }
      }
    } finally {
      for (const o of open.values()) closeSync(o.fd);
      if (!gone) stdin.end();
    }
  })();
  return { child, done, notes: merger.notes };
}

/** Starts Wireshark on a capture file; `onExit` runs when it is closed. */
export function openFileInWireshark(bin: string, path: string, onExit: () => void): ChildProcess {
  const child = spawn(bin, ['-r', path], { stdio: 'ignore' });
  child.on('error', onExit);
  child.on('exit', onExit);
  return child;
}
