// Follows a TLS key log (SSLKEYLOGFILE) as clients append to it, for a live capture: its complete lines go, as they
// come, to the capture's analyzer and the session's own key log. A client writes a connection's secrets during its
// handshake, so the lines come while the capture runs (see Analyzer.followKeyLog).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { TapscopeError, isTapscopeError } from '../errors.js';
import { KeyLog, keyLogReadError } from '../dissect/tls-keylog.js';

/** How often the file is looked at (ms): well inside the time a connection's records wait for its secrets. */
const POLL_MS = 200;

export class KeyLogFollower {
  /** bytes of the file read so far */
  private offset = 0;
  /** the last line read, not yet ended by its newline (a client's write in progress) */
  private partial = '';
  /** the number of the next complete line */
  private line = 1;
  private timer: NodeJS.Timeout | null = null;

  /**
   * `onLines`: the new complete key log lines (checked, joined by newlines); `onProblem`: a line that is no key log line,
   * or the file gone unreadable, while followed (the lines after it are still read).
   */
  constructor(
    readonly path: string,
    private readonly onLines: (text: string) => void,
    private readonly onProblem: (message: string) => void,
  ) {}

  /** Refuses, as start() does, a key log that cannot be followed (missing, or holding a line that is no key log line). */
  static check(path: string): void {
    const { problems } = new KeyLogFollower(path, () => undefined, () => undefined).read();
    if (problems.length > 0) throw new TapscopeError('E_KEYLOG', problems[0]!);
  }

  /**
   * Reads the file as it is now and follows it. Its lines so far are checked first: a missing file (E_FILE_NOT_FOUND)
   * or a line that is no key log line (E_KEYLOG, with its number) is refused before anything is taken. An empty file is
   * fine: the clients have not written yet.
   */
  start(): void {
    const { lines, problems } = this.read();
    if (problems.length > 0) throw new TapscopeError('E_KEYLOG', problems[0]!);
    if (lines) this.onLines(lines);
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
  }

  /** Takes the lines written since the last look. */
  poll(): void {
    let got: { lines: string; problems: string[] };
    try {
      got = this.read();
    } catch (e) {
      if (!isTapscopeError(e)) throw e;
      this.onProblem(e.message);
      return;
    }
    for (const p of got.problems) this.onProblem(p);
    if (got.lines) this.onLines(got.lines);
  }

  /** Stops following, after a last look (the lines written up to now are taken). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.poll();
  }

  private read(): { lines: string; problems: string[] } {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (e) {
      throw keyLogReadError(this.path, e);
    }
    let text: string;
    try {
      const size = fstatSync(fd).size;
      // (shorter than what was read: the file was emptied or replaced; it is read again from its start)
      if (size < this.offset) {
        this.offset = 0;
        this.partial = '';
        this.line = 1;
      }
      if (size === this.offset) return { lines: '', problems: [] };
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      text = this.partial + buf.toString('latin1', 0, n);
    } finally {
      closeSync(fd);
    }
    const end = text.lastIndexOf('\n');
    this.partial = text.slice(end + 1);
    if (end < 0) return { lines: '', problems: [] };
    const good: string[] = [];
    const problems: string[] = [];
    for (const line of text.slice(0, end).split('\n')) {
      try {
        new KeyLog().add(line, this.path, this.line);
        const t = line.trim();
        if (t !== '' && !t.startsWith('#')) good.push(t);
      } catch (e) {
        if (!isTapscopeError(e, 'E_KEYLOG')) throw e;
        problems.push(e.message);
      }
      this.line++;
    }
    return { lines: good.join('\n'), problems };
  }
}
