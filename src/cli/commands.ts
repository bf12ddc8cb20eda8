// The CLI commands' bodies (loaded lazily so that --help and --version start instantly).
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync, write as fsWrite } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { TapscopeError } from '../errors.js';
import type { Command } from './args.js';
import type { Flow, LibraryBreakdownRow } from '../model/flow.js';
import type { Analyzer, AnalyzerOptions } from '../flows/analyzer.js';
import type { KeyLog } from '../dissect/tls-keylog.js';
import type { CaptureFile, DamagedFile } from '../flows/load.js';
import type { Prompt } from '../targets/target.js';
import type { CoreService } from '../service/core-service.js';
import type { Follower } from '../service/follow.js';
import { flowRow, human, table, FLOW_HEADERS, FLOW_WIDTHS } from './flows-output.js';
import { localDateTime } from '../util/time-text.js';
import { isFile } from '../util/paths.js';
import { printable } from '../util/printable.js';
import { stdoutError } from './stdout-error.js';

type RunnableCommand = Exclude<Command, { cmd: 'help' | 'version' }>;

const out = (s: string): void => { process.stdout.write(s); };
const err = (s: string): void => { process.stderr.write(s); };

export async function runCommand(command: RunnableCommand): Promise<number> {
  if (command.cmd === 'flows' || command.cmd === 'libraries' || command.cmd === 'export') readsOnce();
  switch (command.cmd) {
    case 'capture': return capture(command);
    case 'check': return check(command);
    case 'flows': return flows(command);
    case 'libraries': return libraries(command);
    case 'follow': return follow(command);
    case 'packets': return packets(command);
    case 'export': return exportCmd(command);
    case 'sessions': return sessions(command);
    case 'serve': return serve(command);
    case 'clean': return clean(command);
  }
}

// ---- sources: a pcapng path or a session id ----

interface Source {
  files: CaptureFile[];
  analyzer: Analyzer;
  notes: string[];
  /** files damaged in the middle: the command prints or exports what came before, then fails (see damageError) */
  damaged: DamagedFile[];
}

/** What `flows` and `libraries` need of a capture file: flows without each exchange's headers and bodies. */
const SUMMARY: AnalyzerOptions = { details: false };

/**
 * A capture file, a gzip-compressed one (read through a decompressed copy), standard input ('-', spooled to a file
 * first: export reads its capture twice) or a session id. `shownAs`: the name notes and errors give the file (a copy's
 * original, standard input).
 */
async function openSource(file: string, options: AnalyzerOptions = {}, shownAs?: string): Promise<Source> {
  // `tcpdump -w - | tapscope flows -`
  if (file === '-') return openSource(await spoolStdin(), options, 'standard input');
  if (isFile(file)) {
    const { isGzip } = await import('../pcapng/compressed.js');
    if (isGzip(file, shownAs)) return openCompressed(file, options, shownAs ?? file);
    const { analyzeFiles } = await import('../flows/load.js');
    const files = [{ path: resolve(file) }];
    const { analyzer, notes, damaged } = await analyzeFiles(files, options).catch((e: unknown) => {
      throw shownAs === undefined ? e : renamedError(e, files[0]!.path, shownAs);
    });
    if (shownAs === undefined) return { files, analyzer, notes, damaged };
    return { files, analyzer, notes: notes.map((n) => n.split(files[0]!.path).join(shownAs)), damaged: damaged.map((d) => ({ ...d, path: shownAs })) };
  }
  const { SessionStore } = await import('../store/session-store.js');
  const store = new SessionStore();
  if (!/[/\\]/.test(file) && store.exists(file)) {
    const { CoreService } = await import('../service/core-service.js');
    const svc = new CoreService({ store });
    const l = await svc.load(file, options.keyLog ?? null);
    // (the session's notes name its damaged files too; the command's error names them here, after its output)
    const { damageNote } = await import('../flows/load.js');
    const damagedNotes = new Set(l.damaged.map(damageNote));
    return { files: l.files, analyzer: l.analyzer, notes: l.notes.filter((n) => !damagedNotes.has(n)), damaged: l.damaged };
  }
  // (after the session ids: a session's folder is a directory of that name)
  if (existsSync(file) && statSync(file).isDirectory()) {
    const { directoryError } = await import('../pcapng/file-errors.js');
    throw directoryError(file);
  }
  throw new TapscopeError('E_FILE_NOT_FOUND', `'${file}' is neither a capture file nor a session id (\`tapscope sessions\` lists sessions)`);
}

/** An error about a private copy (standard input's, a decompressed file's) naming what the copy was made of. */
function renamedError(e: unknown, path: string, shownAs: string): unknown {
  if (!(e instanceof TapscopeError) || !e.message.includes(path)) return e;
  const details = e.details && e.details.path === path ? { ...e.details, path: shownAs } : e.details;
  return new TapscopeError(e.code, e.message.split(path).join(shownAs), details, { cause: e });
}

/**
 * A gzip-compressed capture, read through a private decompressed copy (removed at exit). A gzip stream cut short is a
 * note, as a capture's cut tail is; a damaged one fails the command after its output, as a damaged block does.
 */
async function openCompressed(file: string, options: AnalyzerOptions, shownAs: string): Promise<Source> {
  const { gunzipCapture } = await import('../pcapng/compressed.js');
  const copy = join(privateTempDir('tapscope-gunzip-'), 'capture.pcapng');
  const problem = await gunzipCapture(file, copy, shownAs);
  const src = await openSource(copy, options, shownAs);
  if (problem?.kind === 'truncated') src.notes.push(problem.message);
  if (problem?.kind === 'damaged') src.damaged.push({ path: shownAs, offset: problem.offset, message: problem.message });
  return src;
}

/** A private temporary folder, removed when the process exits. */
function privateTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Standard input copied into a private temporary file. */
async function spoolStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new TapscopeError('E_USAGE', "'-' reads a capture from standard input; pipe one in (tcpdump -w - | tapscope flows -)");
  const path = join(privateTempDir('tapscope-stdin-'), 'stdin.pcapng');
  const { SpoolFile } = await import('../util/spool-file.js');
  const copy = new SpoolFile(path, 'copying standard input', 'Write the capture to a file where there is room and give its path instead of -');
  try {
    for await (const piece of process.stdin) copy.write(piece as Buffer);
  } finally {
    copy.close();
  }
  return path;
}

async function predicate(filter: string | undefined): Promise<((f: Flow) => boolean) | null> {
  if (!filter || !filter.trim()) return null;
  const { compileFilter } = await import('../filter/index.js');
  try {
    return compileFilter(filter);
  } catch (e) {
    // (main prints the filter under the error with a mark at the bad token, as tshark does)
    if (e instanceof TapscopeError && e.code === 'E_FILTER_SYNTAX') throw new TapscopeError(e.code, e.message, { ...e.details, filter });
    throw e;
  }
}

/** The key logs --keylog names (null without any; see readKeyLogs for its errors). */
async function keyLogs(paths: string[]): Promise<KeyLog | null> {
  if (paths.length === 0) return null;
  const { readKeyLogs } = await import('../dissect/tls-keylog.js');
  return readKeyLogs(paths);
}

function printNotes(notes: string[]): void {
  for (const n of notes) err(`tapscope: note: ${printable(n)}\n`);
}

// ---- commands ----

async function flows(c: Extract<RunnableCommand, { cmd: 'flows' }>): Promise<number> {
  const pred = await predicate(c.filter);
  const keyLog = await keyLogs(c.keylogs);
  const threads = flowThreads(c.file);
  if (threads > 1) {
    const { flowsOnThreads } = await import('./flows-parallel.js');
    const r = await flowsOnThreads({ files: [{ path: resolve(c.file) }], json: c.json, filter: c.filter ?? null, keylogs: c.keylogs.map((p) => resolve(p)) }, threads);
    printNotes(r.notes);
    await printFlows(c.json, r.rows, r.total, r.packets, pred !== null);
    return damageFails(r.damaged);
  }
  const src = await openSource(c.file, { ...SUMMARY, keyLog });
  printNotes(src.notes);
  const all = src.analyzer.flows();
  const kept = pred ? all.filter(pred) : all;
  if (c.json) await writeFlowsJson(kept);
  else await printFlows(false, kept.map(flowRow), all.length, src.analyzer.counters.packets, pred !== null);
  return damageFails(src.damaged);
}

/**
 * After a command printed or exported what a damaged capture held before its damage: the damage as the
 * command's error (exit 1), as tshark shows a damaged file's packets and then fails.
 */
async function damageFails(damaged: DamagedFile[]): Promise<number> {
  if (damaged.length === 0) return 0;
  const { damageError } = await import('../flows/load.js');
  throw damageError(damaged)!;
}

const JSON_CHUNK = 4096;

/**
 * The flows as JSON lines, written into bytes a chunk (1 MiB) at a time: no string per flow. Each chunk is
 * written on the thread pool while the next one is made (see StdoutChunks), then its buffer is used again.
 */
async function writeFlowsJson(flows: Flow[]): Promise<void> {
  const { FlowJsonLines } = await import('../model/flow-json.js');
  const lines = new FlowJsonLines();
  const out = new StdoutChunks();
  await out.start();
  await lines.addAll(flows, (chunk) => out.write(chunk, () => lines.reuse(chunk)));
  await out.end();
}

/**
 * Standard output, one chunk in flight: write() waits for the chunk before, starts this one on the thread pool
 * and returns, so the caller makes the next chunk while a reader (jq, a pipe to another program) drains this
 * one. Through a 64 KiB pipe, 54 MB of lines took 56 ms of waiting when written from this thread. A reader
 * that is gone (EPIPE) ends the output quietly, as the stdout error listener does; a non-blocking descriptor
 * (EAGAIN) hands the rest to process.stdout, which waits for it.
 */
class StdoutChunks {
  private inflight: Promise<void> | null = null;
  private viaStream = false;
  private gone = false;

  /** Lets what process.stdout still queues go first (pipes are asynchronous on some platforms). */
  async start(): Promise<void> {
    if (process.stdout.writableLength > 0) await once(process.stdout, 'drain');
  }

  async write(chunk: Buffer, written: () => void): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.gone) return;
    this.inflight = this.viaStream ? writeOut(chunk).then(written) : this.writeAll(chunk).then(written);
  }

  async end(): Promise<void> {
    if (this.inflight) await this.inflight;
  }

  private writeAll(buf: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const go = (off: number): void => {
        fsWrite(1, buf, off, buf.length - off, null, (e, n) => {
          if (!e && off + n < buf.length) go(off + n);
          else if (!e) resolve();
          else if (e.code === 'EPIPE') { this.gone = true; resolve(); }
          else if (e.code === 'EAGAIN') { this.viaStream = true; writeOut(buf.subarray(off)).then(resolve, reject); }
          else reject(stdoutError(e));
        });
      };
      go(0);
    });
  }
}

/**
 * A few large writes, not one per line, each awaited until written: at most one chunk waits in memory for a
 * slow reader. A failed write resolves too: the stdout error listener decides.
 */
function writeOut(chunk: Buffer | string): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.write(chunk, () => resolve());
  });
}

/**
 * The commands that read a capture once and exit tell V8 not to pretenure: its flows live to the end, so V8 moves their
 * allocation sites to the old generation midway, and every function that allocates them (createFlow, addFlow, ensureTls,
 * the hello parsers, ...) is thrown away and compiled again, in two waves (19 deoptimizations on the 1 GB bench capture;
 * 1 with this flag). Measured on that capture, 8 runs each, interleaved: main thread CPU median 1.32 -> 1.21 s, process
 * CPU 2.30 -> 2.16 s, wall 1.57 -> 1.47 s (Nov 2026, 2-core VM). A flag V8 reads when it weighs pretenuring, after start-up.
 */
function readsOnce(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}

/**
 * Threads for `flows` on a capture file: TAPSCOPE_THREADS when set; else, from 64 MiB on (below, starting
 * workers costs more than it saves), one per idle core but one (at most 4), judged by the load average. Every
 * thread reads the whole file, and one thread already keeps a second core busy with garbage collection: on an
 * idle 2-core machine, 2 threads took 1.7-1.8 s where 1 took 1.2-1.4 s (1 GB bench capture, interleaved, Nov 2026).
 * Sessions load on one thread.
 */
function flowThreads(file: string): number {
  const env = Number(process.env.TAPSCOPE_THREADS);
  const st = existsSync(file) ? statSync(file) : null;
  if (!st?.isFile()) return 1;
  if (Number.isInteger(env) && env >= 1) return env;
  if (st.size < 64 * 1024 * 1024) return 1;
  const cores = availableParallelism();
  return Math.max(1, Math.min(4, cores - 1, Math.round(cores - loadavg()[0]!)));
}

async function printFlows(json: boolean, rows: string[] | string[][], total: number, packets: number, filtered: boolean): Promise<void> {
  if (json) {
    const lines = rows as string[];
    for (let i = 0; i < lines.length; i += JSON_CHUNK) await writeOut(`${lines.slice(i, i + JSON_CHUNK).join('\n')}\n`);
    return;
  }
  out(table(FLOW_HEADERS, rows as string[][], FLOW_WIDTHS));
  err(`${rows.length} flow${rows.length === 1 ? '' : 's'}${filtered ? ` matching (of ${total})` : ''}, ${packets} packets\n`);
}

async function libraries(c: Extract<RunnableCommand, { cmd: 'libraries' }>): Promise<number> {
  const { libraryBreakdown } = await import('../flows/libraries.js');
  const src = await openSource(c.file, { ...SUMMARY, keyLog: await keyLogs(c.keylogs) });
  printNotes(src.notes);
  const rows: LibraryBreakdownRow[] = libraryBreakdown(src.analyzer.flows()).sides;
  if (c.json) {
    out(`${JSON.stringify(rows.map((r) => ({ library: r.library, side: r.side, flows: r.flows, bytes: r.bytes, plaintextFlows: r.plaintextFlows, reasons: r.reasons ?? {} })))}\n`);
  } else {
    out(table(['LIBRARY', 'SIDE', 'FLOWS', 'BYTES', 'PLAINTEXT', 'WHY NOT (most flows)'], rows.map((r) => {
      const top = Object.entries(r.reasons ?? {}).sort((a, b) => b[1] - a[1])[0];
      return [r.library, r.side, String(r.flows), human(r.bytes), `${r.plaintextFlows}/${r.flows}`, top ? `${top[0]} (${top[1]})` : ''];
    }), [14, 6, 7, 8, 10, 140]));
  }
  return damageFails(src.damaged);
}

/** The capture (its notes printed) and one flow of it, for the commands that show one flow. */
async function openFlow(file: string, flowId: string): Promise<{ src: Source; flow: Flow }> {
  const src = await openSource(file, SUMMARY);
  printNotes(src.notes);
  const flow = src.analyzer.flowById(flowId);
  if (!flow) throw new TapscopeError('E_FLOW_NOT_FOUND', `no flow '${flowId}' in ${file} (flow ids: tapscope flows ${file} --json)`);
  return { src, flow };
}

/**
 * A flow's payload in order (the app's Stream tab), between rules and a header as tshark's `-z follow,tcp,ascii`
 * prints them; the client's turns as they are, every line of the server's indented by a tab (tshark indents only
 * its byte counts) so the turns stand apart without counts; --hex: a hex dump per turn.
 */
async function follow(c: Extract<RunnableCommand, { cmd: 'follow' }>): Promise<number> {
  const { src, flow } = await openFlow(c.file, c.flowId);
  const { followStream } = await import('../flows/follow-stream.js');
  const { hexLines, streamText } = await import('../model/stream-text.js');
  const { endpointText } = await import('../util/ip.js');
  const s = await followStream(src.files, flow);
  const rule = '='.repeat(67);
  const lines = [
    rule,
    `Follow: ${flow.transport}, ${s.source === 'decrypted' ? 'decrypted by the TLS hooks' : s.source === 'wire' ? 'as on the wire' : 'no payload'}`,
    `Flow: ${flow.id}`,
    `Client: ${endpointText(flow.src)}`,
    `Server: ${endpointText(flow.dst)}`,
  ];
  for (const [i, ch] of s.chunks.entries()) {
    // (a connection that switched to TLS in place: its plain prelude first, then the decrypted records)
    if (ch.beforeTls && !s.chunks[i - 1]?.beforeTls) lines.push('(on the wire, before the connection switched to TLS)');
    else if (!ch.beforeTls && s.chunks[i - 1]?.beforeTls) lines.push('(then, decrypted by the TLS hooks)');
    const indent = ch.dir === 's2c' ? '\t' : '';
    const text = c.hex
      ? hexLines(ch.hex, Infinity, 16, 8).map((l) => `${l.offset}  ${l.hex.padEnd(47)}  ${l.ascii}`).join('\n')
      : streamText(ch.hex).replace(/\n$/, '');
    for (const l of text.split('\n')) lines.push(`${indent}${l}`);
  }
  if (s.truncated) lines.push(`(the first ${human(s.bytes)} of more)`);
  lines.push(rule);
  out(`${lines.join('\n')}\n`);
  return damageFails(src.damaged);
}

/**
 * A flow's packets and decrypted records, one line each, as tshark lists a TCP stream: number, seconds since the
 * flow's first packet, direction, flags, relative sequence and acknowledgment numbers, payload length, notes;
 * --json: one JSON object per line (FlowPacketRow).
 */
async function packets(c: Extract<RunnableCommand, { cmd: 'packets' }>): Promise<number> {
  const { src, flow } = await openFlow(c.file, c.flowId);
  const { flowPackets } = await import('../flows/flow-packets.js');
  const p = await flowPackets(src.files, flow);
  if (c.json) {
    out(p.rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  } else {
    const t0 = p.rows[0]?.ts ?? 0;
    out(table(['NO.', 'TIME', 'DIR', 'FLAGS', 'SEQ', 'ACK', 'LEN', 'INFO'], p.rows.map((r) => [
      String(r.n), ((r.ts - t0) / 1000).toFixed(6), r.dir === 'c2s' ? '->' : '<-', r.kind === 'record' ? 'TLS' : r.flags ?? 'UDP',
      r.seq === null ? '' : String(r.seq), r.ack === null ? '' : String(r.ack), String(r.payload), r.info,
    ]), [7, 11, 3, 16, 11, 11, 7, 80]));
  }
  if (p.truncated) err(`tapscope: the first ${p.rows.length} of ${p.total} packets and records\n`);
  return damageFails(src.damaged);
}

async function exportCmd(c: Extract<RunnableCommand, { cmd: 'export' }>): Promise<number> {
  const pred = await predicate(c.filter);
  const keyLog = await keyLogs(c.keylogs);
  const src = await openSource(c.file, { keyLog });
  printNotes(src.notes);
  const { exportCapture } = await import('../export/index.js');
  const flowIds = pred ? new Set(src.analyzer.flows().filter(pred).map((f) => f.id)) : undefined;
  const toStdout = c.out === '-';
  if (toStdout && c.format === 'pcapng' && process.stdout.isTTY) {
    throw new TapscopeError('E_USAGE', 'export: --format pcapng --out - writes binary pcapng; pipe it or redirect it, not to a terminal');
  }
  // why a file first for standard output: the exporter writes a file synchronously, and standard output may be a
  // non-blocking pipe that takes the finished file at its reader's pace
  const dir = toStdout ? mkdtempSync(join(tmpdir(), 'tapscope-export-')) : null;
  // why: a Ctrl-C (or a kill) stops the export where it is, so that its temporary file (and standard output's folder)
  // is removed as on an error; then the process ends by that signal, as it did before (exit status 130 for Ctrl-C)
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => stop.abort(sig);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const path = dir ? join(dir, `export.${c.format}`) : resolve(c.out);
    // (what the capture was read from, when not itself: a gzip file's original; and the key logs: none may be the output)
    const inputs = [...(c.file !== '-' && isFile(c.file) ? [c.file] : []), ...c.keylogs];
    const res = await exportCapture(src.files, src.analyzer, { format: c.format, out: path, flowIds, includeSecrets: c.includeSecrets, keyLog, inputs, signal: stop.signal });
    if (dir) await pipeline(createReadStream(path), process.stdout, { end: false, signal: stop.signal }).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE') throw stdoutError(e); });
    if (keyLog && !c.includeSecrets && c.format === 'pcapng') err('tapscope: note: the key log\'s secrets are not embedded in the export (--include-secrets embeds those of its connections, for Wireshark to decrypt them)\n');
    err(`wrote ${dir ? 'standard output' : res.path} (${human(res.bytes)}${flowIds ? `, ${flowIds.size} flow${flowIds.size === 1 ? '' : 's'}` : ''}${c.includeSecrets ? ', secrets included' : ', secrets redacted'})\n`);
  } catch (e) {
    if (!stop.signal.aborted) throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  if (stop.signal.aborted) {
    process.kill(process.pid, stop.signal.reason as NodeJS.Signals);
    // (the signal ends the process; nothing after it runs)
    await new Promise(() => {});
  }
  return damageFails(src.damaged);
}

async function sessions(c: Extract<RunnableCommand, { cmd: 'sessions' }>): Promise<number> {
  const { CoreService } = await import('../service/core-service.js');
  const list = await new CoreService().listSessions();
  if (c.json) {
    for (const s of list) out(`${JSON.stringify(s)}\n`);
    return 0;
  }
  out(table(['ID', 'NAME', 'TARGET', 'STARTED', 'MODE', 'FLOWS', 'PACKETS', 'DROPS', 'FILE'], list.map((s) => [
    s.id, s.name, s.target, localDateTime(s.createdAt), s.mode ?? '', String(s.flows), String(s.packets), String(s.drops), s.file,
  ]), [26, 30, 30, 19, 8, 8, 10, 6, 120]));
  // (what a session's notes say, under the table as `check` lists problems: an interrupted capture, a damaged or cut file,
  // a broken session.json; a long list of stream gaps shortened)
  for (const s of list) {
    const notes = [...new Set(s.notes)];
    for (const n of notes.slice(0, MAX_SESSION_NOTES)) out(`${s.id}: ${printable(n)}\n`);
    if (notes.length > MAX_SESSION_NOTES) out(`${s.id}: and ${notes.length - MAX_SESSION_NOTES} more notes (tapscope sessions --json lists them)\n`);
  }
  return 0;
}

/** Notes `sessions` prints per session under its table */
const MAX_SESSION_NOTES = 3;

/**
 * What stands in the way of capturing on each node of a target (the app's Connect view shows the same): the
 * helper for its architecture, root or sudo, BTF for eBPF mode, Kubernetes RBAC. Exit 1 when a node has a problem.
 */
async function check(c: Extract<RunnableCommand, { cmd: 'check' }>): Promise<number> {
  const { CoreService } = await import('../service/core-service.js');
  const svc = new CoreService({
    targetOptions: { acceptNewHostKey: c.acceptNewHostKey, ...c.k8s },
    promptHandler: (p) => cliPrompt(p, c.acceptNewHostKey),
  });
  const reports = await svc.preflight({ target: c.target });
  if (c.json) out(`${JSON.stringify(reports)}\n`);
  else {
    const yesNo = (v: boolean | null): string => (v === null ? '?' : v ? 'yes' : 'no');
    out(table(['NODE', 'ARCH', 'KERNEL', 'BTF', 'PRIVILEGE', 'HELPER', 'PROBLEMS'], reports.map((r) => [
      r.node, r.arch ?? '?', r.kernel ?? '?', yesNo(r.btf), r.privileged, r.helperVersion?.replace(/^tapscope-helper /, '') ?? '-', String(r.problems.length),
    ]), [40, 8, 30, 3, 13, 12, 8]));
    for (const r of reports) for (const p of r.problems) out(`${printable(r.node)}: ${printable(p)}\n`);
  }
  return reports.some((r) => r.problems.length > 0) ? 1 : 0;
}

async function cliPrompt(p: Prompt, acceptNewHostKey: boolean): Promise<string | boolean | null> {
  if (p.kind === 'host-key') {
    if (acceptNewHostKey) return true;
    err(`tapscope: ${p.message}${p.fingerprint ? ` (${p.fingerprint})` : ''}; rerun with --accept-new-host-key to trust it\n`);
    return false;
  }
  if (!process.stdin.isTTY) return null;
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  // why: hide typed secrets (passwords, passphrases) by swallowing the echo.
  const hidden = p.echo !== true;
  const output = rl as unknown as { _writeToOutput?: (s: string) => void };
  const answer = await new Promise<string>((res) => {
    rl.question(`${p.message} `, res);
    if (hidden) output._writeToOutput = () => undefined;
  });
  rl.close();
  if (hidden) err('\n');
  return answer;
}

async function capture(c: Extract<RunnableCommand, { cmd: 'capture' }>): Promise<number> {
  const { CoreService } = await import('../service/core-service.js');
  const svc = new CoreService({
    targetOptions: { acceptNewHostKey: c.acceptNewHostKey, ...c.k8s },
    promptHandler: (p) => cliPrompt(p, c.acceptNewHostKey),
  });
  const toStdout = c.out === '-';
  if (toStdout && process.stdout.isTTY) {
    throw new TapscopeError('E_USAGE', 'capture: --out - writes binary pcapng; pipe it (| wireshark -k -i -) or redirect it, not to a terminal');
  }
  // (a key log that cannot be followed is refused before anything starts)
  const keyLogPaths = c.keylogs.map((p) => resolve(p));
  if (keyLogPaths.length > 0) {
    const { KeyLogFollower } = await import('../service/keylog-follower.js');
    for (const p of keyLogPaths) KeyLogFollower.check(p);
  }
  const phases = new Map<string, string>();
  svc.on('nodeStatus', ({ status }) => {
    // why: targets repeat a phase (e.g. streaming on every reconnect check); print changes only.
    if (phases.get(status.node) === status.phase) return;
    phases.set(status.node, status.phase);
    if (status.phase === 'failed' || status.phase === 'reconnecting') err(`tapscope: ${printable(status.node)}: ${status.phase}${status.message ? `: ${printable(status.message)}` : ''}\n`);
    if (status.phase === 'streaming') err(`tapscope: ${status.node}: capturing\n`);
  });
  // why the signals are taken before the start: deploying (a DaemonSet of privileged pods, waiting for their images; an
  // upload and sudo over SSH) takes a while, and a Ctrl-C then must cancel it and remove what it made, not strand it
  const { isStartCancelled } = await import('../targets/target.js');
  const cancelStart = new AbortController();
  let started: Awaited<ReturnType<typeof svc.startCapture>> | null = null;
  let signals = 0;
  const onSignal = (): void => {
    signals++;
    if (!started) {
      if (signals === 1) {
        err(`\ntapscope: interrupted: cancelling the start and removing what was deployed on ${printable(c.target)} (Ctrl-C again quits without that)\n`);
        cancelStart.abort();
        return;
      }
      err(`tapscope: quit before the cleanup finished: ${leftBehind(c.target)}\n`);
      process.exit(130);
    }
    if (signals === 1) {
      err('\ntapscope: stopping…\n');
      void svc.stopCapture({ sessionId: started.id });
    } else {
      process.exit(130);
    }
  };
  // why SIGHUP too: a terminal or ssh session that closes sends it, and its default kills the capture unsaved (tcpdump
  // stops cleanly on it too). Node resets it to the default at start, so nohup's ignoring it does not reach here
  const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  // why: once the terminal is gone, what the capture says fails (EIO); unheard, it must not end the capture unsaved
  const unheard = (): void => undefined;
  process.stderr.on('error', unheard);
  const unlisten = (): void => {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
    process.stderr.off('error', unheard);
  };
  try {
    started = await svc.startCapture(
      { target: c.target, mode: c.mode, ifaces: c.ifaces, duration: c.duration, file: toStdout ? undefined : resolve(c.out), captureFilter: c.captureFilter,
        ...(c.pods.length ? { pods: c.pods } : {}), ...(c.nodeKeylogs.length ? { nodeKeyLogs: c.nodeKeylogs } : {}) },
      { signal: cancelStart.signal },
    );
  } catch (e) {
    unlisten();
    if (!isStartCancelled(e)) throw e;
    const left = e.left.length ? `; may be left: ${e.left.map((l) => printable(l)).join(', ')}: ${leftBehind(c.target)}` : '';
    err(`tapscope: capture cancelled before it started: ${printable(e.removed)}${left}\n`);
    // (exit at once: a question the start was asking, a sudo password, still holds the terminal)
    process.exit(130);
  }
  const outPath = started.file;
  err(`starting capture on ${c.target} into ${toStdout ? `standard output (pcapng), saved as ${outPath}` : outPath} (session ${started.id})${c.duration ? ` for ${c.duration}s` : ''}; Ctrl-C stops\n`);
  try {
    for (const p of keyLogPaths) {
      const { secrets } = await svc.addKeyLog({ sessionId: started.id, path: p });
      err(`tapscope: following the key log ${p} (secrets of ${secrets} connection${secrets === 1 ? '' : 's'} so far)\n`);
    }
    if (keyLogPaths.length > 0 && c.target !== 'local') {
      err(`tapscope: note: the key log is read on this machine; clients on ${c.target} write theirs on their node, so it is followed here only if it is copied or mounted here as they write it (--node-keylog PATH follows a key log on the node)\n`);
    }
  } catch (e) {
    // (the file went away or went bad since it was checked: the capture stops, keeping what it has)
    unlisten();
    await svc.stopCapture({ sessionId: started.id });
    await svc.waitForCapture(started.id);
    throw e;
  }
  const pipe = toStdout ? stdoutFollow(svc, started.id) : null;
  // the reader of standard output is gone (Wireshark closed), or the saved files could not be read for it: stop as
  // Ctrl-C does; the session keeps everything
  const piping = pipe?.follower.done.catch((e: unknown) => {
    err(`tapscope: standard output stopped: ${(e as Error).message}\n`);
    return { gone: true };
  });
  void piping?.then(({ gone }) => {
    if (!gone || signals++ > 0) return;
    err('tapscope: standard output closed; stopping…\n');
    void svc.stopCapture({ sessionId: started.id });
  });
  try {
    let failed: ReturnType<typeof svc.liveStatus> = [];
    svc.on('nodeStatus', ({ status }) => { if (status.phase === 'failed') failed = [...failed, status]; });
    const summary = await svc.waitForCapture(started.id);
    // (a reader slower than the capture still gets all of it: the saved files are followed to their end)
    const behind = pipe ? setTimeout(() => {
      err(`tapscope: the capture has stopped (saved as ${outPath}); standard output's reader is behind and still gets the rest of it; Ctrl-C again leaves it unfinished\n`);
    }, 1000) : null;
    const piped = piping ? await piping : null;
    if (behind) clearTimeout(behind);
    if (piped && !piped.gone && process.stdout.writableLength > 0) {
      await Promise.race([once(process.stdout, 'drain'), once(process.stdout, 'close')]).catch(() => undefined);
    }
    const { damageError, damageNote } = await import('../flows/load.js');
    // (a damaged stream's note is the error below: not printed twice)
    const damagedNotes = new Set(summary.damaged.map(damageNote));
    printNotes([...summary.notes.filter((n) => !damagedNotes.has(n) && !failed.some((f) => n.startsWith(`${f.node}:`))), ...(pipe?.follower.notes ?? [])]);
    const firstFail = failed.find((f) => f.error);
    if (!summary.saved) {
      // (no byte was written: nothing was saved, and a file already at --out was left as it was)
      const kept = toStdout ? '' : ` (${outPath} was left as it was)`;
      const full = svc.diskStop(started.id);
      if (full) throw new TapscopeError('E_DISK_FULL', `the capture stopped before its end: ${full}; nothing was saved${kept}`);
      if (firstFail?.error) throw new TapscopeError(firstFail.error.code, `${firstFail.node}: ${firstFail.error.message}`);
      throw new TapscopeError('E_HELPER_EXITED', `the capture ended before its first byte: nothing was saved${kept}`);
    }
    const filtered = summary.captureFilter && (summary.packets > 0 || summary.filtered > 0) ? `; the capture filter '${summary.captureFilter}' left out ${summary.filtered}` : '';
    err(`captured ${summary.packets} packets, ${summary.flows} flows${summary.drops ? `, ${summary.drops} dropped` : ''}${summary.mode ? ` (mode ${summary.mode}${summary.modeReason ? `: ${summary.modeReason}` : ''})` : ''} into ${outPath}${filtered}\n`);
    if (firstFail?.error && (summary.packets === 0 || failed.length === summary.nodes.length)) {
      throw new TapscopeError(firstFail.error.code, `${firstFail.node}: ${firstFail.error.message}`);
    }
    // (a stream that turned malformed: the file holds what came, readable up to the damage, as `tapscope flows` says;
    // the command failed, as reading that file does)
    if (summary.damaged.length > 0) throw damageError(summary.damaged)!;
    if (keyLogPaths.length > 0 || c.nodeKeylogs.length > 0) await embedSecrets(svc, started.id, outPath, toStdout);
    const stdoutFailed = pipe?.failure();
    if (stdoutFailed) throw stdoutFailed;
    // (as tcpdump ends on a full disk: the file is good, the command failed)
    const full = svc.diskStop(started.id);
    if (full) throw new TapscopeError('E_DISK_FULL', `the capture stopped before its end: ${full}`);
    return 0;
  } finally {
    unlisten();
    pipe?.close();
  }
}

/** What a capture start quit half-way may leave on `target`, and how to remove it (capture's second Ctrl-C). */
function leftBehind(target: string): string {
  const k8s = /^k8s:\/\/([^/]*)/.exec(target);
  if (k8s) return `the capture's DaemonSet, its pods, ServiceAccount and namespace may be left in the cluster; remove them with \`tapscope clean --target k8s://${k8s[1]}\` in a minute, once their heartbeat has gone stale`;
  if (target.startsWith('ssh://')) return `a partial helper may be left in a tapscope.XXXXXXXX temp dir on ${printable(target.slice(6))} (in its $TMPDIR or /tmp); remove it with rm -rf`;
  return 'nothing is left behind on this machine';
}

/**
 * `capture --keylog` and `--node-keylog`: the secrets of the capture's connections (from the key logs it followed, kept
 * in the session's keys.log, and from the secrets blocks the helpers wrote as they followed key logs on the nodes)
 * written into its file, so that Wireshark and `tapscope flows` decrypt it with no key log given; says how
 * many TLS connections the key log decrypted. Only this capture's connections' lines go in, not the whole key log.
 */
async function embedSecrets(svc: CoreService, id: string, path: string, toStdout: boolean): Promise<void> {
  const l = await svc.load(id);
  const counted = (flows: Flow[]): string => {
    const tls = flows.filter((f) => f.tls !== null);
    const decrypted = tls.filter((f) => f.tls?.keylog?.status === 'decrypted').length;
    return `key log: ${decrypted} of ${tls.length} TLS connection${tls.length === 1 ? '' : 's'} decrypted`;
  };
  const randoms = l.analyzer.clientRandoms();
  const lines = l.analyzer.keyLogLines(randoms);
  if (!lines) {
    err(`tapscope: ${counted(l.analyzer.flows())}; it has no secrets for this capture's connections, so none were written into ${path}\n`);
    return;
  }
  const { injectSecrets } = await import('../pcapng/inject-secrets.js');
  await injectSecrets(path, lines);
  // why the file is read again for the count: with its secrets in front it decrypts what the capture, reading them as
  // they came, may not have: a connection whose hello came before the key log was followed on its node (the first, as a
  // capture starts) was counted not decrypted, and `tapscope flows FILE` then decrypted one more than the capture said
  const { analyzeFiles } = await import('../flows/load.js');
  const file = await analyzeFiles([{ path }], SUMMARY);
  err(`tapscope: ${counted(file.analyzer.flows())}; the secrets of ${randoms.length} connection${randoms.length === 1 ? '' : 's'} are written into ${path}${toStdout ? ' (standard output carried none)' : ''}, which Wireshark decrypts with no key log set\n`);
}

/**
 * `capture --out -`: the nodes' files followed into standard output as they grow, merged into one pcapng section,
 * for `| wireshark -k -i -` or tshark (service/follow.ts). The capture is saved as a session as always. A slow
 * reader is given everything, at its own pace, also after the capture has stopped; a reader that goes away stops
 * the capture.
 */
function stdoutFollow(svc: CoreService, sessionId: string): { follower: Follower; close(): void; failure(): TapscopeError | null } {
  let failed: TapscopeError | null = null;
  const onError = (e: NodeJS.ErrnoException & { stopsCapture?: boolean }): void => {
    // (main's listener ends the command unless the error is marked: the capture stops and saves its session first. A
    // reader gone (EPIPE) is how a piped capture ends; another failure (`> /dev/full`, a full disk) fails the command)
    e.stopsCapture = true;
    if (e.code !== 'EPIPE') failed ??= stdoutError(e);
  };
  process.stdout.on('error', onError);
  return { follower: svc.followCapture(sessionId, process.stdout), close: () => { process.stdout.off('error', onError); }, failure: () => failed };
}

async function serve(c: Extract<RunnableCommand, { cmd: 'serve' }>): Promise<number> {
  const spec = '../server/index.js';
  const mod = (await import(spec)) as { startWebServer?: (o: Record<string, unknown>) => Promise<{ url: string; close(): Promise<void> }> };
  if (typeof mod.startWebServer !== 'function') throw new TapscopeError('E_INTERNAL', 'web mode is not available in this build (src/server has no startWebServer)');
  const { loadCoreService } = await import('../server/load-service.js');
  const service = await loadCoreService();
  if (c.session) {
    if (existsSync(c.session)) {
      const s = await service.openFile({ path: c.session });
      c = { ...c, session: s.id };
    } else {
      await service.openSession({ sessionId: c.session });
    }
  }
  const server = await mod.startWebServer({ service, port: c.port, openSessionId: c.session });
  out(`${server.url}\n`);
  await new Promise<void>((res) => {
    const stop = (): void => { void server.close().finally(() => { void service.close().finally(res); }); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

async function clean(c: Extract<RunnableCommand, { cmd: 'clean' }>): Promise<number> {
  const { parseTargetUri } = await import('../targets/index.js');
  const parsed = parseTargetUri(c.target);
  if (parsed.kind !== 'k8s') throw new TapscopeError('E_USAGE', 'clean: --target k8s://CONTEXT is required');
  // why: a specifier in a variable keeps the CLI loadable in builds without the Kubernetes target.
  const spec = '../targets/k8s/index.js';
  const mod = (await import(spec)) as { cleanK8s?: (context: string, opts: { kubeconfig?: string; force?: boolean }) => Promise<{ removed: string[]; kept: string[] }> };
  if (typeof mod.cleanK8s !== 'function') throw new TapscopeError('E_TARGET_INVALID', 'Kubernetes targets are not available in this build');
  const { removed, kept } = await mod.cleanK8s(parsed.context, { ...(c.kubeconfig ? { kubeconfig: c.kubeconfig } : {}), ...(c.force ? { force: true } : {}) });
  const lines = [...removed.map((r) => `removed ${r}`), ...kept.map((k) => `left ${k}`)];
  out(lines.length ? `${lines.join('\n')}\n` : `nothing of tapscope's left in ${parsed.context}\n`);
  if (kept.length) {
    err('tapscope: note: what is left is in use; a session counts as a leftover once its heartbeat is three intervals old (1 min by default); --force removes it now, ending it if it runs\n');
  }
  return 0;
}
