// CoreService: the core behind the API contract (src/api/contract.ts). Live captures into sessions (target →
// per-node stream → session file + live analyzer), stored sessions, flow queries, details, library breakdown,
// exports with progress, and shells/prompts of the targets. Events go out through on().
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { TapscopeError, isTapscopeError } from '../errors.js';
import type {
  ApiCalls, ApiEventName, ApiEvents, FlowDetail, FlowPackets, LibraryBreakdown, FlowQuery, FlowStream, NodeCounters, SessionSummary, TargetChoice,
} from '../api/contract.js';
import type { Flow, PodRef, TcpState } from '../model/flow.js';
import type { CaptureHandle, CaptureMode, CaptureTarget, NodeInfo, NodeStatus, PodChoice, PreflightReport, Prompt, ShellChannel } from '../targets/target.js';
import { MAX_NODE_KEY_LOGS } from '../targets/target.js';
import { Analyzer } from '../flows/analyzer.js';
import { KeyLog, keyLogReadError, readKeyLogFile, readKeyLogs } from '../dissect/tls-keylog.js';
import { KeyLogFollower } from './keylog-follower.js';
import { builtHelper } from '../targets/deploy.js';
import { checkCaptureFilter, type CaptureFilterCheck } from '../targets/capture-filter.js';
import { followStream } from '../flows/follow-stream.js';
import { flowPackets } from '../flows/flow-packets.js';
import { readPacketAt } from '../pcapng/block-at.js';
import { parseExportedPdu } from '../pcapng/exported-pdu.js';
import { gunzipCapture, isGzip } from '../pcapng/compressed.js';
import { captureFileError, directoryError } from '../pcapng/file-errors.js';
import { analyzeFiles, damageNote, type CaptureFile, type DamagedFile } from '../flows/load.js';
import { libraryBreakdown } from '../flows/libraries.js';
import { distinctNotes, gapNote, lossNote, type NodeMeta } from '../flows/node-meta.js';
import { PcapngParser } from '../pcapng/parser.js';
import { SessionStore, capturer, type SessionRecord } from '../store/session-store.js';
import type { NodeFileWriter } from '../store/node-writer.js';
import { exportCapture } from '../export/index.js';
import { findWireshark, followInWireshark, openFileInWireshark } from './wireshark.js';
import { followCapture, type FollowOptions, type Follower, type GrowingFiles } from './follow.js';
import { compileFilter, compileFilterPlan, checkFilter, type CompiledFilter } from '../filter/index.js';
import { createTarget as defaultCreateTarget, type TargetOptions } from '../targets/index.js';
import { loadSshConfig } from '../targets/ssh/config.js';
import { userPath } from '../util/paths.js';

export interface CoreServiceOptions {
  store?: SessionStore;
  createTarget?: (uri: string, opts: TargetOptions) => CaptureTarget | Promise<CaptureTarget>;
  /** Extra options for every target (e.g. acceptNewHostKey for the CLI, netns for tests). */
  targetOptions?: TargetOptions;
  /** Answers prompts directly instead of emitting 'prompt' events (the CLI). */
  promptHandler?: (prompt: Prompt) => Promise<string | boolean | null>;
  /** How often live counters are emitted (ms). */
  countersIntervalMs?: number;
  /** Loaded sessions kept in memory. */
  cacheSize?: number;
}

interface Loaded {
  /**
   * what it was loaded from (stampOf): the record's end and writer (another process's capture that ended since is read
   * again) and the capture files' size and time (files another process wrote on since are read again)
   */
  stamp: { record: string; files: string };
  analyzer: Analyzer;
  /** the load's notes, the damaged files' among them */
  notes: string[];
  /** files damaged in the middle, analyzed up to the damage */
  damaged: DamagedFile[];
  files: CaptureFile[];
  sorted: Map<string, { version: number; rows: Flow[] }>;
  /** the TLS secrets it was analyzed with (its own key log, the CLI's --keylog) */
  keyLog: KeyLog | null;
}

interface LiveSession {
  id: string;
  target: CaptureTarget;
  handle: CaptureHandle | null;
  analyzer: Analyzer;
  writers: Map<string, NodeFileWriter>;
  status: Map<string, NodeStatus>;
  notes: string[];
  timer: NodeJS.Timeout | null;
  finished: Promise<CaptureEnd> | null;
  sorted: Map<string, { version: number; rows: Flow[] }>;
  pods: Map<string, PodRef>;
  /** readers following the node files (capture --out -, Open in Wireshark) */
  followers: Set<Follower>;
  /** the finish has pinned its followers' files and is about to merge them: no new follower can start */
  pinned: boolean;
  /** key logs followed as clients write them (addKeyLog during the capture) */
  keyLogs: KeyLogFollower[];
  /** node streams that turned malformed: where in their node file (the live analysis of that node stopped there) */
  damaged: DamagedFile[];
  /** their lines that were no key log lines (notes, not losses: no captured byte is missing) */
  keyLogNotes: string[];
  /** while the target starts (no handle yet): cancels the start (stopCapture, close), and settles when it has */
  starting?: { cancel: AbortController; settled: Promise<unknown> };
}

const MAX_LIMIT = 10_000;

/**
 * How a live capture ended (waitForCapture): its summary, and what the summary alone does not say.
 */
export interface CaptureEnd extends SessionSummary {
  /**
   * The saved capture file's damaged blocks: a node's stream that turned malformed (the helper sent bytes that are no
   * pcapng block). The bytes were saved as they came, so the file is read up to there and no further, as `tapscope
   * flows` then says: offsets are in the saved file. Empty for a good capture. Each one's note (damageNote) is in notes.
   */
  damaged: DamagedFile[];
  /**
   * false: no node delivered a byte, so nothing was saved; the file the capture was to write, when the caller named
   * one, was left as it was, and the session was removed.
   */
  saved: boolean;
}

/** The arrival-order positions of the flows a filter accepts, valid for one analyzer version. */
interface MatchSet {
  version: number;
  /** flows [0, scanned) of the arrival order have been tested */
  scanned: number;
  /** positions in arrival order, ascending; [0, count) are used */
  idx: Int32Array;
  count: number;
}

export class CoreService implements ApiCalls {
  readonly store: SessionStore;
  private readonly emitter = new EventEmitter();
  private readonly makeTarget: (uri: string, opts: TargetOptions) => CaptureTarget | Promise<CaptureTarget>;
  private readonly targetOptions: TargetOptions;
  private readonly promptHandler: CoreServiceOptions['promptHandler'];
  private readonly countersMs: number;
  private readonly cacheSize: number;
  private readonly live = new Map<string, LiveSession>();
  /** the captures that stopped because a node file could not be written on (see diskStop) */
  private readonly diskStops = new Map<string, string>();
  /** how the captures of this process ended (see CaptureEnd), for waitForCapture after the end */
  private readonly ends = new Map<string, CaptureEnd>();
  private readonly loaded = new Map<string, Loaded>();
  private readonly loading = new Map<string, Promise<Loaded>>();
  /** Library breakdowns per analyzer and filter, valid while the analyzer's version is unchanged. */
  private readonly libraryCache = new WeakMap<Analyzer, Map<string, { version: number; breakdown: LibraryBreakdown }>>();
  /** Filter matches per analyzer and filter text, for filters that need no resolved flows (see matches()). */
  private readonly matchCache = new WeakMap<Analyzer, Map<string, MatchSet>>();
  private readonly prompts = new Map<string, (answer: string | boolean | null) => void>();
  private readonly shells = new Map<string, { channel: ShellChannel; target: CaptureTarget; unsubs: (() => void)[] }>();

  constructor(opts: CoreServiceOptions = {}) {
    this.store = opts.store ?? new SessionStore();
    this.makeTarget = opts.createTarget ?? defaultCreateTarget;
    this.targetOptions = opts.targetOptions ?? {};
    this.promptHandler = opts.promptHandler;
    this.countersMs = opts.countersIntervalMs ?? 1000;
    this.cacheSize = opts.cacheSize ?? 3;
    this.emitter.setMaxListeners(0);
  }

  on<E extends ApiEventName>(event: E, cb: (payload: ApiEvents[E]) => void): () => void {
    const l = cb as (p: unknown) => void;
    this.emitter.on(event, l);
    return () => { this.emitter.off(event, l); };
  }

  private emit<E extends ApiEventName>(event: E, payload: ApiEvents[E]): void {
    this.emitter.emit(event, payload);
  }

  private prompt = (p: Prompt): Promise<string | boolean | null> => {
    if (this.promptHandler) return this.promptHandler(p);
    const promptId = randomBytes(8).toString('hex');
    return new Promise((resolvePrompt) => {
      this.prompts.set(promptId, resolvePrompt);
      this.emit('prompt', { promptId, prompt: p });
    });
  };

  private async target(uri: string): Promise<CaptureTarget> {
    return this.makeTarget(uri, { ...this.targetOptions, prompt: this.prompt });
  }

  // ---- targets ----

  async listTargets(): Promise<TargetChoice[]> {
    const out: TargetChoice[] = [{ kind: 'local', uri: 'local', label: `This machine (${hostname()})` }];
    try {
      // (the ssh config parser follows Include, with globs and relative to ~/.ssh as OpenSSH does: hosts of included
      // files are listed too; Match blocks name no host)
      const seen = new Set<string>();
      for (const entry of loadSshConfig()) {
        if (!entry.patterns || entry.match) continue;
        for (const h of entry.patterns) {
          if (!h || /[*?!]/.test(h) || seen.has(h)) continue;
          seen.add(h);
          out.push({ kind: 'ssh', uri: `ssh://${h}`, label: h, detail: 'from ~/.ssh/config' });
        }
      }
    } catch {
      // why: no SSH config is normal; one that cannot be read only hides its hosts from the picker.
    }
    try {
      const kubeconfig = process.env.KUBECONFIG?.split(':')[0] || join(homedir(), '.kube', 'config');
      if (existsSync(kubeconfig)) {
        const text = readFileSync(kubeconfig, 'utf8');
        const ctxSection = text.split(/^contexts:\s*$/m)[1] ?? '';
        for (const m of ctxSection.matchAll(/^\s*name:\s*"?([^"\n]+?)"?\s*$/gm)) {
          const name = m[1];
          if (name) out.push({ kind: 'k8s', uri: `k8s://${name}`, label: name, detail: `Kubernetes context from ${kubeconfig}` });
        }
      }
    } catch {
      // why: an unreadable kubeconfig only hides its contexts from the picker.
    }
    return out;
  }

  async listNodes(req: { target: string; check?: boolean }): Promise<NodeInfo[]> {
    const t = await this.target(req.target);
    try {
      // (the helper a capture would deploy to each node decides what it can capture there)
      const nodes = (await t.listNodes()).map((n) => ({ ...n, capture: builtHelper(n.arch, this.targetOptions.helperPath) ? 'ebpf' as const : null }));
      if (!req.check) return nodes;
      // why on the same target: one connection (and at most one password prompt) for the list and its checks
      const reports = new Map((await t.preflight(nodes.map((n) => n.name))).map((r) => [r.node, r]));
      return nodes.map((n) => {
        const r = reports.get(n.name);
        return r ? { ...n, check: { btf: r.btf, privileged: r.privileged, helperVersion: r.helperVersion, problems: r.problems } } : n;
      });
    } finally {
      await t.close();
    }
  }

  async listPods(req: { target: string }): Promise<PodChoice[]> {
    const t = await this.target(req.target);
    try {
      return (await t.listPods?.()) ?? [];
    } finally {
      await t.close();
    }
  }

  /** What stands in the way of capturing on the target's nodes (all, or those named): helper, privileges, BTF, RBAC. */
  async preflight(req: { target: string; nodes?: string[] }): Promise<PreflightReport[]> {
    const t = await this.target(req.target);
    try {
      return await t.preflight(req.nodes);
    } finally {
      await t.close();
    }
  }

  // ---- capture ----

  async startCapture(
    req: {
      target: string; nodes?: string[]; mode: CaptureMode; ifaces: string[]; name?: string; duration?: number; file?: string; captureFilter?: string; pods?: string[];
      nodeKeyLogs?: string[];
    },
    /**
     * `signal`: aborting it while the target starts cancels the start: what was deployed so far is removed, the session
     * goes, and this rejects with StartCancelled (targets/target.ts) saying what was removed. (stopCapture and close() do the
     * same to a capture that is still starting.)
     */
    opts: { signal?: AbortSignal } = {},
  ): Promise<SessionSummary> {
    const pods = req.pods?.map((p) => p.trim()).filter((p) => p.length > 0);
    if (pods?.length && !req.target.startsWith('k8s://')) throw new TapscopeError('E_USAGE', `pods are captured on a Kubernetes target (k8s://CONTEXT), not ${req.target}`);
    const filter = req.captureFilter?.trim() || undefined;
    const keyLogs = nodeKeyLogPaths(req.nodeKeyLogs);
    // (on this machine they are checked before anything starts; on another node its helper refuses one it cannot read)
    if (req.target === 'local') for (const k of keyLogs) checkLocalKeyLog(k);
    // (checked here when this machine can, before anything is deployed; else each node's helper refuses it)
    const checked = filter ? await checkCaptureFilter(filter, this.targetOptions.helperPath) : null;
    if (checked?.ok === false) throw new TapscopeError('E_USAGE', `capture filter '${filter}': ${checked.message}`);
    // (a capture file that cannot be written, or that another capture writes, is refused before anything connects)
    const rec = this.store.create({ name: req.name, target: req.target, requestedMode: req.mode, captureFilter: filter, file: req.file });
    let target: CaptureTarget;
    try {
      target = await this.target(req.target);
    } catch (e) {
      this.store.delete(rec.id);
      throw e;
    }
    const ls: LiveSession = {
      id: rec.id, target, handle: null, analyzer: new Analyzer(), writers: new Map(), status: new Map(), notes: [], timer: null, finished: null,
      sorted: new Map(), pods: new Map(), followers: new Set(), pinned: false, keyLogs: [], keyLogNotes: [], damaged: [],
    };
    this.live.set(rec.id, ls);
    const cancel = new AbortController();
    // (the start is cancelled by the caller's signal, or by stopCapture and close() through `cancel`)
    const signal = opts.signal ? AbortSignal.any([cancel.signal, opts.signal]) : cancel.signal;
    let startSettled!: () => void;
    ls.starting = { cancel, settled: new Promise<void>((r) => (startSettled = r)) };
    try {
      ls.handle = await target.start({ mode: req.mode, ifaces: req.ifaces, nodes: req.nodes, duration: req.duration, filter, ...(pods?.length ? { pods } : {}), ...(keyLogs.length ? { keyLogs } : {}) }, {
        onStatus: (status) => {
          ls.status.set(status.node, status);
          if (status.error) {
            const n = `${status.node}: ${status.error.message} (${status.error.code})`;
            if (!ls.notes.includes(n)) ls.notes.push(n);
          }
          this.emit('nodeStatus', { sessionId: rec.id, status });
        },
        onStream: (node, stream) => this.attachStream(ls, node, stream),
        onGap: (gap) => {
          if (gap.toMs === null) ls.writers.get(gap.node)?.gapOpened(gap.fromMs, gap.reason);
          ls.notes.push(gapNote(gap.node, gap));
        },
      }, signal);
    } catch (e) {
      this.live.delete(rec.id);
      for (const w of ls.writers.values()) w.close();
      await target.close().catch(() => undefined);
      // (a file the user named got no byte, so it is as it was: only the session goes)
      this.store.delete(rec.id);
      throw e;
    } finally {
      delete ls.starting;
      startSettled();
    }
    const handle = ls.handle;
    if (handle.enrich) {
      ls.analyzer.podLookup = (ip) => {
        const pod = handle.enrich?.(ip) ?? null;
        if (pod) ls.pods.set(ip, pod);
        return pod;
      };
    }
    ls.timer = setInterval(() => this.emitCounters(ls), this.countersMs);
    ls.timer.unref();
    // (how the end went, a failure too, is waitForCapture's and stopCapture's to tell)
    void ls.handle.done.then(() => this.finishLive(ls)).catch(() => undefined);
    const summary = this.summaryOf(this.store.get(rec.id));
    this.emit('sessionChanged', summary);
    return summary;
  }

  private attachStream(ls: LiveSession, node: string, stream: Readable): void {
    let writer = ls.writers.get(node);
    if (!writer) {
      writer = this.store.nodeWriter(ls.id, node);
      ls.writers.set(node, writer);
    }
    writer.beginStream();
    const w = writer;
    // (the disk would fill, or a write failed: the capture stops, its files valid up to there, as a killed one's)
    w.onStopped = (why) => {
      ls.notes.push(`${node}: ${why}; the capture was stopped, and its file holds every packet before that`);
      if (!this.diskStops.has(ls.id)) this.diskStops.set(ls.id, `${node}: ${why}`);
      void this.stopCapture({ sessionId: ls.id }).catch(() => undefined);
    };
    const parser = new PcapngParser();
    // why the packet sink too: packets are read in place, without a block object each (as for files)
    const feed = ls.analyzer.sinks(node);
    let broken = false;
    stream.on('data', (chunk: Buffer) => {
      w.write(chunk);
      for (const f of ls.followers) f.wake();
      // (what is not saved is not shown either)
      if (broken || w.stopped !== null) return;
      try {
        parser.push(chunk, feed.block, feed.packet, feed.record);
      } catch (e) {
        broken = true;
        const at = isTapscopeError(e) && typeof e.details?.offset === 'number' ? e.details.offset : null;
        if (at === null) {
          ls.notes.push(`${node}: live analysis stopped: ${(e as Error).message}; the bytes are still saved`);
          return;
        }
        // why the file's offset: the bytes are saved as they came, with the writer's records after the SHB, and reading
        // the file stops at the same block; the note says where, as `tapscope flows` on the file will
        ls.damaged.push(damageAt(w.path, w.fileOffset(at), (e as Error).message));
      }
    });
    stream.on('end', () => {
      if (broken) return;
      try {
        parser.end();
      } catch (e) {
        if (isTapscopeError(e, 'E_PCAPNG_TRUNCATED') && parser.completeOffset > 0) {
          ls.notes.push(`${node}: the stream ended inside a block; the partial block was ignored`);
        } else if (!isTapscopeError(e, 'E_PCAPNG_TRUNCATED')) {
          ls.notes.push(`${node}: ${(e as Error).message}`);
        }
      }
    });
    stream.on('error', (e) => ls.notes.push(`${node}: stream error: ${e.message}`));
  }

  private nodeCounters(ls: LiveSession): NodeCounters[] {
    const out: NodeCounters[] = [];
    const names = new Set([...ls.status.keys(), ...ls.writers.keys()]);
    for (const node of names) {
      const meta = ls.analyzer.nodes.get(node);
      out.push({
        node, packets: meta?.packets ?? 0, bytes: meta?.bytes ?? 0, drops: meta?.drops ?? 0, phase: ls.status.get(node)?.phase ?? 'running',
      });
    }
    return out;
  }

  private emitCounters(ls: LiveSession): void {
    this.emit('counters', { sessionId: ls.id, nodes: this.nodeCounters(ls), flows: ls.analyzer.flowCount, version: ls.analyzer.version });
  }

  private finishLive(ls: LiveSession): Promise<CaptureEnd> {
    if (ls.finished) return ls.finished;
    ls.finished = (async () => {
      if (ls.timer) clearInterval(ls.timer);
      this.emitCounters(ls);
      // why: let the last 'data'/'end' events of the streams run before the files are closed.
      await new Promise((r) => setImmediate(r));
      // (the key logs' last lines, for the capture's last connections; those still waiting then give up, saying why)
      for (const k of ls.keyLogs) k.stop();
      const followed = ls.keyLogs.length > 0 || ls.analyzer.followsKeyLog;
      if (followed) ls.analyzer.stopFollowingKeyLog();
      ls.analyzer.endCapture();
      for (const w of ls.writers.values()) w.close();
      ls.pinned = true;
      for (const f of ls.followers) { f.pin(); f.wake(); }
      await ls.target.close().catch(() => undefined);
      const meta = [...ls.analyzer.nodes.values()][0];
      // (the other nodes' files go after the first's: their damage is that much further into the capture file)
      const moved = await this.store.mergeNodeFiles(ls.id);
      const file = this.store.get(ls.id).file;
      const baseOf = (path: string): number | undefined => (path === file ? 0 : moved.get(path));
      // (the sections of the capture file: reading it goes on at the next one after damage, as the live analysis did)
      const sections: number[] = [];
      for (const w of ls.writers.values()) {
        const base = baseOf(w.path);
        if (base !== undefined) for (const s of w.streamStarts) sections.push(base + s);
      }
      const damaged = ls.damaged.map((d) => {
        const base = baseOf(d.path);
        if (base === undefined) return d;
        const at = damageAt(file, base + d.offset, d.message);
        const next = sections.filter((s) => s > at.offset).sort((a, b) => a - b)[0];
        return next === undefined ? at : { ...at, resumedAt: next };
      });
      const counted = [...ls.analyzer.nodes].map(([node, m]) => lossNote(node, m)).filter((n): n is string => n !== null);
      const losses = distinctNotes([...ls.notes, ...damaged.map(damageNote), ...counted]);
      const notes = distinctNotes([...(ls.handle?.notes ?? []), ...losses, ...ls.keyLogNotes]);
      let rec: SessionRecord;
      try {
        rec = await this.store.finish(ls.id, { notes, losses, mode: meta?.mode ?? null, modeReason: meta?.modeReason ?? null });
      } catch (e) {
        if (!isTapscopeError(e, 'E_DISK_FULL')) throw e;
        // (the disk kept no end: the capture's summary is this process's, and the capture fails as one stopped by a
        // full disk does, after it says what it saved)
        const kept = this.store.get(ls.id);
        rec = { ...kept, endedAt: Date.now(), notes: distinctNotes([...kept.notes, ...notes, e.message]), losses: distinctNotes([...kept.losses ?? [], ...losses, e.message]) };
        delete rec.writer;
        if (!this.diskStops.has(ls.id)) this.diskStops.set(ls.id, e.message);
      }
      if (rec.pendingFile) {
        // why remove it: no node delivered a byte, and the file it names is the user's as it was, not this capture
        this.live.delete(ls.id);
        const summary = this.summaryOf(rec);
        this.store.delete(ls.id);
        const end: CaptureEnd = { ...summary, damaged, saved: false };
        this.ends.set(ls.id, end);
        return end;
      }
      // why: resolve every flow (and so its pod) while the cluster's pod index is still live, then keep the map.
      ls.analyzer.flows();
      try {
        this.store.writePods(rec, ls.pods);
      } catch (e) {
        // (the capture is saved without them: its flows name no pods when it is reopened)
        rec.notes = distinctNotes([...rec.notes, `the pods its addresses belonged to could not be saved (${(e as Error).message}): reopened, its flows name no pods`]);
      }
      this.indexFrom(rec, ls.analyzer, []);
      // (a capture that followed a key log is analyzed again with its keys.log when it is next looked at: its connections
      // from before the key log was added, and those whose secrets came too late, are decrypted then)
      if (!followed) this.remember(ls.id, { stamp: this.stampOf(rec), analyzer: ls.analyzer, notes: [], damaged, files: this.store.captureFiles(rec), sorted: new Map(), keyLog: null });
      this.live.delete(ls.id);
      const summary = this.summaryOf(rec);
      this.emit('sessionChanged', summary);
      const end: CaptureEnd = { ...summary, damaged, saved: true };
      this.ends.set(ls.id, end);
      return end;
    })().catch((e: unknown) => {
      // (a finish that failed leaves no live capture behind: the session is as the disk has it)
      this.live.delete(ls.id);
      throw e;
    });
    return ls.finished;
  }

  async stopCapture(req: { sessionId: string }): Promise<SessionSummary> {
    const starting = this.live.get(req.sessionId)?.starting;
    if (starting) {
      // (still starting: the start is cancelled and cleans up; nothing was saved unless it had got through)
      starting.cancel.abort();
      await starting.settled;
      if (!this.live.has(req.sessionId)) throw new TapscopeError('E_SESSION_NOT_FOUND', `the capture ${req.sessionId} was stopped while it started: it was cancelled, and nothing was saved`);
    }
    const ls = this.live.get(req.sessionId);
    if (ls) await ls.handle?.stop();
    const end = ls ? await this.finishLive(ls) : this.ends.get(req.sessionId);
    if (!end) return this.summaryOf(this.store.get(req.sessionId));
    // (the API's answer is the summary; how the capture ended is waitForCapture's)
    const { damaged: _damaged, saved: _saved, ...summary } = end;
    return summary;
  }

  /** Why a capture of this process stopped before it was asked to: a node file it could not write on (its disk full); null when none. */
  diskStop(sessionId: string): string | null {
    return this.diskStops.get(sessionId) ?? null;
  }

  /**
   * Settles when a live capture has ended on its own (duration) or been stopped: its summary, whether anything was
   * saved, and the damage in what was (see CaptureEnd). A capture that failed before its first byte has no session left.
   */
  async waitForCapture(sessionId: string): Promise<CaptureEnd> {
    const ls = this.live.get(sessionId);
    if (!ls) return this.ends.get(sessionId) ?? { ...this.summaryOf(this.store.get(sessionId)), damaged: [], saved: true };
    await ls.handle?.done;
    return this.finishLive(ls);
  }

  /**
   * Follows a live capture's node files into `out`, merged into one pcapng section, from the first block until the
   * capture has ended and every file is read (follow.ts): `tapscope capture --out -`. In-process only.
   */
  followCapture(sessionId: string, out: Writable, opts: Omit<FollowOptions, 'pollMs'> = {}): Follower {
    const ls = this.followable(sessionId);
    if (!ls) throw new TapscopeError('E_USAGE', `session ${sessionId} is not a running capture`);
    const f = followCapture(this.liveFiles(ls), out, opts);
    this.track(ls, f);
    return f;
  }

  /**
   * The live capture whose files a new follower can still read from their first block, else null. Why not `finished`:
   * a capture whose nodes all ended during its start begins to finish before its starter can ask to follow it; until
   * the finish pins the files, a follower still gets all of them.
   */
  private followable(sessionId: string): LiveSession | null {
    const ls = this.live.get(sessionId);
    return ls && !ls.pinned ? ls : null;
  }

  private liveFiles(ls: LiveSession): GrowingFiles {
    return {
      // (a file the user named is the session's only once it was opened at the first bytes; before, it holds theirs)
      files: () => [...ls.writers].filter(([, w]) => w.opened).map(([node, w]) => ({ node, path: w.path, written: w.bytesWritten })),
      ended: () => ls.finished !== null && [...ls.writers.values()].every((w) => w.closed),
    };
  }

  private track(ls: LiveSession, f: Follower): void {
    ls.followers.add(f);
    // (what the merge leaves out is what the helper never writes: big-endian sections, simple packet blocks; and a
    // read error ends only this follow, never the capture)
    void f.done.catch(() => undefined).finally(() => ls.followers.delete(f));
  }

  /** Node statuses of a live capture (the CLI reports failures from them). */
  liveStatus(sessionId: string): NodeStatus[] {
    return [...(this.live.get(sessionId)?.status.values() ?? [])];
  }

  // ---- sessions ----

  private indexFrom(rec: SessionRecord, a: Analyzer, notes: string[]): void {
    const metas = [...a.nodes.values()];
    const first = metas.find((m) => m.hasCaptureRecord);
    this.store.writeIndex(rec, {
      packets: a.counters.packets, bytes: a.counters.bytes, flows: a.flowCount, drops: metas.reduce((n, m) => n + m.drops, 0),
      mode: first?.mode ?? rec.mode, modeReason: first?.modeReason ?? rec.modeReason, ...captureFilterOf(metas, rec), nodes: [...a.nodes.keys()], notes,
    });
  }

  private summaryOf(rec: SessionRecord): SessionSummary {
    const ls = this.live.get(rec.id);
    const base = {
      id: rec.id, name: rec.name, target: rec.target, createdAt: rec.createdAt, endedAt: rec.endedAt, file: rec.file,
    };
    if (ls) {
      return {
        ...base, live: true, ...sofar(ls.analyzer, rec), nodes: [...new Set([...rec.nodes, ...ls.writers.keys()])],
        notes: distinctNotes([...(ls.handle?.notes ?? []), ...ls.notes, ...ls.damaged.map(damageNote), ...ls.keyLogNotes]),
        losses: distinctNotes([...ls.notes, ...ls.damaged.map(damageNote)]),
      };
    }
    const idx = this.store.readIndex(rec);
    const loaded = this.cachedLoad(rec);
    const elsewhere = this.store.capturedElsewhere(rec);
    if (elsewhere) {
      // why not the load's notes: a file read while it is written ends inside a block, its helper's stream without final
      // statistics, which are no losses; that capture's own notes come with its end, and the session is read again then
      const note = `being captured by ${capturer(elsewhere)}: the counts are of what it had written when this was read`;
      return { ...base, live: false, ...sofar(loaded?.analyzer ?? null, rec), nodes: rec.nodes, notes: distinctNotes([...rec.notes, note]), losses: rec.losses ?? [] };
    }
    const killed = rec.endedAt === null && !this.store.capturing(rec) ? interruptedNote(rec, this.store.captureFiles(rec).length > 0) : null;
    return {
      ...base, live: false, mode: idx?.mode ?? rec.mode, modeReason: idx?.modeReason ?? rec.modeReason,
      ...(idx ? { captureFilter: idx.captureFilter ?? rec.captureFilter ?? null, filtered: idx.filtered ?? 0 } : captureFilterOf([...loaded?.analyzer.nodes.values() ?? []], rec)),
      packets: idx?.packets ?? loaded?.analyzer.counters.packets ?? 0, bytes: idx?.bytes ?? loaded?.analyzer.counters.bytes ?? 0,
      flows: idx?.flows ?? loaded?.analyzer.flowCount ?? 0, drops: idx?.drops ?? 0,
      nodes: rec.nodes.length > 0 ? rec.nodes : idx?.nodes ?? [],
      notes: distinctNotes([...rec.notes, ...(idx?.notes ?? []), ...(loaded?.notes ?? []), ...(killed ? [killed.note] : [])]),
      // (the load's notes are all losses: a damaged block, a cut tail, a stream gap recorded in the file, and so is the
      // rest of a capture that was killed)
      losses: distinctNotes([...(rec.losses ?? []), ...(idx?.notes ?? []), ...(loaded?.notes ?? []), ...(killed?.lost ? [killed.note] : [])]),
    };
  }

  /**
   * Every session, newest first. A session folder whose session.json is broken is listed too, with why (and where its
   * capture is) as its note; so is a session whose capture cannot be read, with zero counters.
   */
  async listSessions(): Promise<SessionSummary[]> {
    const out: SessionSummary[] = [];
    for (const s of this.store.scan()) {
      if (!s.rec) {
        out.push(brokenSummary(s.id, s.createdAt, s.error));
        continue;
      }
      try {
        let problem: string | null = null;
        // (a capture that got no byte has nothing to read: its note says so)
        const nothing = s.rec.pendingFile && this.store.captureFiles(s.rec).length === 0;
        if (!this.live.has(s.id) && !nothing && !this.store.readIndex(s.rec)) {
          // why: the index is a cache; rebuild it from the capture when it is missing or stale (e.g. after a crash).
          try {
            await this.load(s.id);
          } catch (e) {
            // (an unreadable capture still lists, with zero counters and why)
            problem = (e as Error).message;
          }
        }
        const summary = this.summaryOf(this.store.get(s.id));
        out.push(problem ? { ...summary, notes: distinctNotes([...summary.notes, problem]) } : summary);
      } catch (e) {
        // why: one session that cannot be read must not hide the others
        out.push(brokenSummary(s.id, s.rec.createdAt, e));
      }
    }
    return out.sort((a, b) => b.createdAt - a.createdAt);
  }

  private remember(id: string, l: Loaded): void {
    this.loaded.delete(id);
    this.loaded.set(id, l);
    while (this.loaded.size > this.cacheSize) {
      const oldest = this.loaded.keys().next().value;
      if (oldest === undefined) break;
      this.loaded.delete(oldest);
    }
  }

  /**
   * Analyzes a stored session (cached), with its own key log if it has one. `keyLog`: TLS secrets to decrypt with as
   * well (the CLI's --keylog), used when the session is not loaded yet.
   */
  async load(id: string, keyLog: KeyLog | null = null): Promise<Loaded> {
    const pending = this.loading.get(id);
    if (pending) return pending;
    const rec = this.store.get(id);
    const stamp = this.stampOf(rec);
    const cached = this.cachedLoad(rec);
    if (cached?.stamp.files === stamp.files) {
      this.remember(id, cached);
      return cached;
    }
    const p = (async () => {
      const files = this.store.captureFiles(rec);
      if (files.length === 0) {
        const why = rec.pendingFile ? `no byte came before its capture ended, and ${rec.file} was left as it was`
          : existsSync(rec.file) ? `${rec.file} is not a file` : `${rec.file} is missing`;
        throw new TapscopeError('E_FILE_NOT_FOUND', `session '${id}' has no capture file (${why})`);
      }
      const own = this.store.keyLogPath(rec.id);
      let keys = keyLog;
      let keyNote: string | null = null;
      if (existsSync(own)) {
        try {
          keys = readKeyLogs([own], keyLog ?? new KeyLog());
        } catch (e) {
          // why: a damaged keys.log must not cost the capture; its flows are shown, not decrypted
          keyNote = `the session's key log cannot be used (${(e as Error).message}); its TLS connections are shown without decryption`;
        }
      }
      const { analyzer, notes: loadNotes, damaged } = await analyzeFiles(files, { keyLog: keys });
      const notes = [...loadNotes, ...damaged.map(damageNote)];
      const pods = this.store.readPods(rec);
      if (pods) analyzer.podLookup = (ip) => pods.get(ip) ?? null;
      const l: Loaded = { stamp, analyzer, notes: keyNote ? [...notes, keyNote] : notes, damaged, files, sorted: new Map(), keyLog: keys };
      // (the index keeps what the capture files say; the key log's note is the load's, as the key log can be fixed. Not
      // of a file another process is still writing: it would be stale at once, and that capture writes its own at its end)
      if (!this.store.capturing(rec)) this.indexFrom(rec, analyzer, notes);
      this.remember(id, l);
      return l;
    })();
    this.loading.set(id, p);
    try {
      return await p;
    } finally {
      this.loading.delete(id);
    }
  }

  /**
   * What a load of the session depends on: its record's end and writer (another process's capture ends), and its capture
   * files' size and time (another process writes them, e.g. a CLI capture seen from the app).
   */
  private stampOf(rec: SessionRecord): { record: string; files: string } {
    const st = this.store.captureStat(rec);
    return { record: JSON.stringify([rec.endedAt, rec.writer ?? null]), files: `${st.size}/${st.mtimeMs}` };
  }

  /**
   * The session's cached load, unless its record changed since (a capture another process ran has ended: its load of the
   * file half-way is dropped). Its files may have grown: load() reads them again, a summary counts what was read.
   */
  private cachedLoad(rec: SessionRecord): Loaded | undefined {
    const l = this.loaded.get(rec.id);
    if (!l || l.stamp.record === this.stampOf(rec).record) return l;
    this.loaded.delete(rec.id);
    return undefined;
  }

  async openSession(req: { sessionId: string }): Promise<SessionSummary> {
    if (!this.live.has(req.sessionId)) await this.load(req.sessionId);
    return this.summaryOf(this.store.get(req.sessionId));
  }

  /**
   * Opens a capture file as a session: an uncompressed one where it is, a gzip-compressed one (.pcapng.gz) through a
   * decompressed copy in the session's folder, made again each time the file is opened. Opening a file again opens its
   * session again. A file in the store's uploads folder (dropped in web mode) is the session's: deleted with it.
   */
  async openFile(req: { path: string }): Promise<SessionSummary> {
    // (a path typed in the app is read as a shell reads it: "~/x.pcapng" is in the home folder)
    const path = userPath(req.path);
    let st;
    try {
      st = statSync(path);
    } catch (e) {
      throw captureFileError(e, path);
    }
    if (st.isDirectory()) throw directoryError(path);
    if (!st.isFile()) throw new TapscopeError('E_FILE_UNREADABLE', `${path} is not a regular file (a pipe, a socket or a device), not a capture file`, { path });
    const gzip = isGzip(path);
    const existing = this.store.list().find((r) => r.target === 'file' && (gzip ? r.openedFrom === path : r.file === path && !r.openedFrom));
    const name = path.split('/').pop() ?? path;
    const rec = existing ?? this.store.create({ target: 'file', name, ...(gzip ? { openedFrom: path } : { file: path, existing: true }) });
    if (!existing) this.store.update(rec.id, (r) => { r.endedAt = r.createdAt; });
    if (gzip) {
      // (a stream cut short or damaged: the copy holds what came before, and the session says so. A copy that cannot
      // be made (the disk would fill) leaves no session, and an existing one its copy as it was)
      const part = `${rec.file}.part`;
      let problem;
      try {
        problem = await gunzipCapture(path, part);
        renameSync(part, rec.file);
      } catch (e) {
        rmSync(part, { force: true });
        if (!existing) this.store.delete(rec.id);
        throw e;
      }
      const note = problem?.kind === 'damaged' ? damageNote({ path, offset: problem.offset, message: problem.message }) : problem?.message;
      this.store.update(rec.id, (r) => { r.notes = note ? [note] : []; });
    }
    this.loaded.delete(rec.id);
    try {
      await this.load(rec.id);
    } catch (e) {
      // (a file that is no capture leaves no session behind)
      if (!existing) this.store.delete(rec.id);
      throw e;
    }
    const summary = this.summaryOf(this.store.get(rec.id));
    this.emit('sessionChanged', summary);
    return summary;
  }

  /**
   * Adds a TLS key log (SSLKEYLOGFILE lines) to a saved session: the session keeps a copy (its keys.log, readable by
   * its owner only) and is analyzed again, its connections with secrets decrypted. A live capture follows the file as
   * clients write it (see followKeyLog).
   */
  async addKeyLog(req: { sessionId: string; path: string }): Promise<{ session: SessionSummary; secrets: number; decrypted: number }> {
    // (typed as openFile's: "~/keys.log" is in the home folder)
    const path = userPath(req.path);
    const ls = this.live.get(req.sessionId);
    if (ls) return this.followKeyLog(ls, path);
    const rec = this.store.get(req.sessionId);
    // (read and checked first: a file that is no key log is refused, and the session's own is left as it was)
    const text = readKeyLogFile(path);
    appendFileSync(this.store.keyLogPath(rec.id), `${text.trimEnd()}\n`, { mode: 0o600 });
    this.loaded.delete(rec.id);
    const l = await this.load(rec.id);
    const decrypted = l.analyzer.flows().filter((f) => f.tls?.keylog?.status === 'decrypted').length;
    const session = this.summaryOf(this.store.get(rec.id));
    this.emit('sessionChanged', session);
    return { session, secrets: l.keyLog?.size ?? 0, decrypted };
  }

  /**
   * A live capture's key log, followed as clients append to it: each line goes to the session's keys.log and to the
   * live analysis, whose TLS connections from here on keep their records until their secrets come and are then
   * decrypted. Its lines so far are checked first (a missing file, a line that is no key log line: refused); an empty
   * file is fine. When the capture stops, the session is analyzed again with its keys.log, which decrypts its
   * connections from before too. A line that goes bad later is a note of the session; the lines after it are read.
   */
  private followKeyLog(ls: LiveSession, path: string): { session: SessionSummary; secrets: number; decrypted: number } {
    const result = (): { session: SessionSummary; secrets: number; decrypted: number } => ({
      session: this.summaryOf(this.store.get(ls.id)),
      secrets: ls.analyzer.keyLogSize,
      decrypted: ls.analyzer.flows().filter((f) => f.tls?.keylog?.status === 'decrypted').length,
    });
    if (ls.keyLogs.some((k) => k.path === path)) return result();
    const own = this.store.keyLogPath(ls.id);
    const follower = new KeyLogFollower(path, (text) => {
      appendFileSync(own, `${text}\n`, { mode: 0o600 });
      ls.analyzer.addKeyLog(text, path);
    }, (message) => {
      if (!ls.keyLogNotes.includes(message)) ls.keyLogNotes.push(message);
    });
    follower.start();
    ls.analyzer.followKeyLog();
    ls.keyLogs.push(follower);
    return result();
  }

  async renameSession(req: { sessionId: string; name: string }): Promise<SessionSummary> {
    const summary = this.summaryOf(this.store.rename(req.sessionId, req.name));
    this.emit('sessionChanged', summary);
    return summary;
  }

  async deleteSession(req: { sessionId: string }): Promise<void> {
    if (this.live.has(req.sessionId)) await this.stopCapture(req);
    this.loaded.delete(req.sessionId);
    this.store.delete(req.sessionId);
  }

  // ---- queries ----

  private async analyzerOf(sessionId: string): Promise<{ analyzer: Analyzer; sorted: Map<string, { version: number; rows: Flow[] }>; files: CaptureFile[]; keyLog: KeyLog | null }> {
    const ls = this.live.get(sessionId);
    if (ls) return { analyzer: ls.analyzer, sorted: ls.sorted, files: this.store.captureFiles(this.store.get(sessionId)), keyLog: null };
    return this.load(sessionId);
  }

  // Order: by the sort field, ties by firstSeen, then in arrival (creation) order.
  async queryFlows(req: FlowQuery): Promise<{ total: number; rows: Flow[] }> {
    const { analyzer, sorted } = await this.analyzerOf(req.sessionId);
    const sort = req.sort ?? { field: 'firstSeen', dir: 'asc' };
    const offset = Math.max(0, Math.floor(req.offset));
    const limit = Math.min(MAX_LIMIT, Math.max(0, Math.floor(req.limit)));
    const plan = req.filter && req.filter.trim() ? compileFilterPlan(req.filter) : null;
    const pred = plan?.predicate ?? null;
    const inArrivalOrder = sort.field === 'firstSeen' && sort.dir === 'asc' && analyzer.arrivalIsFirstSeenOrder;
    if (!pred && inArrivalOrder) {
      // why: the default view of a million flows: no copy, no sort, only the page's flows are resolved
      const all = analyzer.arrivalOrder();
      return { total: all.length, rows: analyzer.resolved(all.slice(offset, offset + limit)) };
    }
    if (plan && !plan.needsResolve && inArrivalOrder) {
      // why: the filtered default view: positions of the matches in arrival order (a typed array, no Flow[]
      // of a million rows), the exact total, and only the page's flows resolved
      const m = this.matches(analyzer, plan, req.filter!.trim());
      const list = analyzer.arrivalOrder();
      const rows: Flow[] = [];
      for (let i = offset; i < Math.min(m.count, offset + limit); i++) rows.push(list[m.idx[i]!]!);
      return { total: m.count, rows: analyzer.resolved(rows) };
    }
    const key = `${req.filter ?? ''}\u0000${sort.field}\u0000${sort.dir}`;
    const version = analyzer.version;
    let hit = sorted.get(key);
    if (!hit || hit.version !== version) {
      // why: sorting needs only firstSeen/bytes/packets, current without resolving; a filter resolves every
      // flow only when it reads process, pod or verdict fields (ports, addresses, SNI, HTTP are always current)
      const rows = !plan ? analyzer.arrivalOrder().slice()
        : plan.needsResolve ? analyzer.flows().filter(plan.predicate) : this.matchedFlows(analyzer, plan, req.filter!.trim());
      if (!inArrivalOrder) {
        const field = sort.field;
        const sign = sort.dir === 'desc' ? -1 : 1;
        // stable: equal keys stay in arrival order
        rows.sort((a, b) => (a[field] - b[field]) * sign || (a.firstSeen - b.firstSeen));
      }
      hit = { version, rows };
      sorted.set(key, hit);
      // why: bound the cache; paging reuses one entry, a new filter or sort makes a new one.
      if (sorted.size > 8) sorted.delete(sorted.keys().next().value as string);
    }
    return { total: hit.rows.length, rows: analyzer.resolved(hit.rows.slice(offset, offset + limit)) };
  }

  /**
   * Which flows (by arrival position) a filter that reads no resolved fields accepts, cached per analyzer
   * version. A stable filter (addresses, ports, transport, node) keeps its matches as flows grow: only the
   * flows created since the last scan are tested, so a live capture's filtered view stays cheap.
   */
  private matches(analyzer: Analyzer, plan: CompiledFilter, key: string): MatchSet {
    let cache = this.matchCache.get(analyzer);
    if (!cache) {
      cache = new Map();
      this.matchCache.set(analyzer, cache);
    }
    let m = cache.get(key);
    if (m && m.version === analyzer.version) return m;
    if (!m) {
      m = { version: -1, scanned: 0, idx: new Int32Array(4096), count: 0 };
      cache.set(key, m);
      if (cache.size > 8) cache.delete(cache.keys().next().value as string);
    } else if (!plan.stable) {
      m.scanned = 0;
      m.count = 0;
    }
    const list = analyzer.arrivalOrder();
    const cols = analyzer.columns();
    const pred = plan.indexed;
    let idx = m.idx;
    let count = m.count;
    for (let i = m.scanned; i < list.length; i++) {
      if (!pred(list[i]!, i, cols)) continue;
      if (count === idx.length) {
        const grown = new Int32Array(idx.length * 2);
        grown.set(idx);
        idx = grown;
      }
      idx[count++] = i;
    }
    m.idx = idx;
    m.count = count;
    m.scanned = list.length;
    m.version = analyzer.version;
    return m;
  }

  private matchedFlows(analyzer: Analyzer, plan: CompiledFilter, key: string): Flow[] {
    const m = this.matches(analyzer, plan, key);
    const list = analyzer.arrivalOrder();
    const out = new Array<Flow>(m.count);
    for (let i = 0; i < m.count; i++) out[i] = list[m.idx[i]!]!;
    return out;
  }

  async flowDetail(req: { sessionId: string; flowId: string }): Promise<FlowDetail> {
    const { analyzer } = await this.analyzerOf(req.sessionId);
    const d = analyzer.detail(req.flowId);
    if (!d) throw new TapscopeError('E_FLOW_NOT_FOUND', `no flow '${req.flowId}' in session '${req.sessionId}'`);
    return d;
  }

  async flowStream(req: { sessionId: string; flowId: string }): Promise<FlowStream> {
    const { analyzer, files } = await this.analyzerOf(req.sessionId);
    const flow = analyzer.flowById(req.flowId);
    if (!flow) throw new TapscopeError('E_FLOW_NOT_FOUND', `no flow '${req.flowId}' in session '${req.sessionId}'`);
    return followStream(files, flow);
  }

  async flowPackets(req: { sessionId: string; flowId: string }): Promise<FlowPackets> {
    const { analyzer, files } = await this.analyzerOf(req.sessionId);
    const flow = analyzer.flowById(req.flowId);
    if (!flow) throw new TapscopeError('E_FLOW_NOT_FOUND', `no flow '${req.flowId}' in session '${req.sessionId}'`);
    return flowPackets(files, flow);
  }

  async packetBytes(req: { sessionId: string; file: number; offset: number; record?: boolean }): Promise<{ hex: string; length: number }> {
    const { files } = await this.analyzerOf(req.sessionId);
    const f = files[req.file];
    if (!f) throw new TapscopeError('E_FILE_NOT_FOUND', `session '${req.sessionId}' has no capture file ${req.file}`);
    const p = await readPacketAt(f.path, req.offset);
    if (!req.record) return { hex: p.data.toString('hex'), length: p.origLen };
    const pdu = parseExportedPdu(p.data);
    if (!pdu) throw new TapscopeError('E_PCAPNG_MALFORMED', `the block at offset ${req.offset} of ${f.path} is no decrypted record`, { offset: req.offset });
    return { hex: pdu.payload.toString('hex'), length: pdu.payload.length };
  }

  async tcpStates(req: { sessionId: string }): Promise<Record<TcpState, number>> {
    const { analyzer } = await this.analyzerOf(req.sessionId);
    return { ...analyzer.tcpStates };
  }

  async libraries(req: { sessionId: string; filter?: string }): Promise<LibraryBreakdown> {
    const { analyzer } = await this.analyzerOf(req.sessionId);
    const pred = req.filter && req.filter.trim() ? compileFilter(req.filter) : null;
    let cache = this.libraryCache.get(analyzer);
    if (!cache) {
      cache = new Map();
      this.libraryCache.set(analyzer, cache);
    }
    const key = req.filter?.trim() ?? '';
    const hit = cache.get(key);
    if (hit && hit.version === analyzer.version) return hit.breakdown;
    // why: the breakdown counts TLS flows only; walking just those keeps it cheap among a million UDP/HTTP flows
    const all = analyzer.tlsFlows();
    const flows = pred ? all.filter(pred) : all;
    const breakdown = libraryBreakdown(flows);
    cache.set(key, { version: analyzer.version, breakdown });
    if (cache.size > 8) cache.delete(cache.keys().next().value as string);
    return breakdown;
  }

  async checkFilter(req: { filter: string }): Promise<{ ok: true } | { ok: false; message: string; position: number }> {
    return checkFilter(req.filter);
  }

  async checkCaptureFilter(req: { filter: string }): Promise<CaptureFilterCheck> {
    return checkCaptureFilter(req.filter, this.targetOptions.helperPath);
  }

  async exportSession(req: { sessionId: string; format: 'pcapng' | 'har' | 'json'; path?: string; filter?: string; includeSecrets?: boolean }): Promise<{ path: string; bytes: number }> {
    const { analyzer, files, keyLog } = await this.analyzerOf(req.sessionId);
    const rec = this.store.get(req.sessionId);
    const ext = req.format === 'json' ? 'jsonl' : req.format;
    const out = req.path ? resolve(req.path) : join(this.store.root, rec.id, `export-${Date.now()}.${ext}`);
    let flowIds: Set<string> | undefined;
    if (req.filter && req.filter.trim()) {
      const pred = compileFilter(req.filter);
      flowIds = new Set(analyzer.flows().filter(pred).map((f) => f.id));
    }
    return exportCapture(files, analyzer, {
      format: req.format, out, flowIds, includeSecrets: req.includeSecrets ?? false, keyLog,
      onProgress: (done, total) => this.emit('exportProgress', { sessionId: req.sessionId, done, total }),
    });
  }

  /**
   * Opens the session in Wireshark on this machine. A live capture: Wireshark reads it as a live capture from a pipe, from
   * its first packet on, until it ends (see wireshark.ts). A saved one, or the flows a filter accepts (live or saved, as
   * they are now): a pcapng export, removed when Wireshark exits.
   */
  async openInWireshark(req: { sessionId: string; filter?: string }): Promise<{ live: boolean }> {
    const bin = findWireshark();
    const filter = req.filter?.trim() ? req.filter : undefined;
    const ls = filter ? null : this.followable(req.sessionId);
    if (ls) {
      const run = followInWireshark(bin, this.liveFiles(ls));
      this.track(ls, run.follower);
      return { live: true };
    }
    const rec = this.store.get(req.sessionId);
    const out = join(this.store.root, rec.id, `wireshark-${Date.now()}.pcapng`);
    await this.exportSession({ sessionId: req.sessionId, format: 'pcapng', path: out, ...(filter ? { filter } : {}) });
    openFileInWireshark(bin, out, () => rmSync(out, { force: true }));
    return { live: false };
  }

  // ---- shells and prompts ----

  async openShell(req: { target: string | 'local-pty'; node?: string; cols: number; rows: number }): Promise<{ shellId: string }> {
    const target = await this.target(req.target === 'local-pty' ? 'local' : req.target);
    let node = req.node;
    if (!node) node = (await target.listNodes())[0]?.name;
    if (!node) throw new TapscopeError('E_TARGET_INVALID', `target ${req.target} has no nodes`);
    const channel = await target.openShell(node);
    channel.resize(req.cols, req.rows);
    const shellId = randomBytes(8).toString('hex');
    const unsubs = [
      channel.onData((d) => this.emit('shellData', { shellId, data: d.toString('utf8') })),
      channel.onExit((code) => {
        this.emit('shellExit', { shellId, code });
        const s = this.shells.get(shellId);
        this.shells.delete(shellId);
        if (s) { for (const u of s.unsubs) u(); void s.target.close().catch(() => undefined); }
      }),
    ];
    this.shells.set(shellId, { channel, target, unsubs });
    return { shellId };
  }

  private shell(id: string): ShellChannel {
    const s = this.shells.get(id);
    if (!s) throw new TapscopeError('E_USAGE', `no open shell '${id}'`);
    return s.channel;
  }

  async shellInput(req: { shellId: string; data: string }): Promise<void> {
    this.shell(req.shellId).write(req.data);
  }

  async shellResize(req: { shellId: string; cols: number; rows: number }): Promise<void> {
    this.shell(req.shellId).resize(req.cols, req.rows);
  }

  async shellClose(req: { shellId: string }): Promise<void> {
    const s = this.shells.get(req.shellId);
    if (!s) return;
    this.shells.delete(req.shellId);
    for (const u of s.unsubs) u();
    s.channel.close();
    await s.target.close().catch(() => undefined);
  }

  async answerPrompt(req: { promptId: string; answer: string | boolean | null }): Promise<void> {
    const r = this.prompts.get(req.promptId);
    if (!r) throw new TapscopeError('E_USAGE', `no pending prompt '${req.promptId}' (it was answered or timed out)`);
    this.prompts.delete(req.promptId);
    r(req.answer);
  }

  /** Stops every live capture and closes shells (app shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.live.keys()].map((id) => this.stopCapture({ sessionId: id }).catch(() => undefined)));
    for (const id of [...this.shells.keys()]) await this.shellClose({ shellId: id });
    for (const r of this.prompts.values()) r(null);
    this.prompts.clear();
  }
}

/** A damaged block of `path` at `offset`; `message` ends "at offset N" (of wherever it was found), said again with `offset`. */
function damageAt(path: string, offset: number, message: string): DamagedFile {
  return { path, offset, message: message.replace(/ at offset \d+$/, ` at offset ${offset}`) };
}

/**
 * What a session's listing says of a capture that has no end and no process running it (`saved`: it has capture files);
 * `lost`: the rest of the capture, which a loss note says.
 */
function interruptedNote(rec: SessionRecord, saved: boolean): { note: string; lost: boolean } {
  if (!saved && rec.pendingFile) {
    return { note: `the capture was interrupted before its first byte (its process is gone): nothing was saved, and ${rec.file} was left as it was`, lost: false };
  }
  return { note: 'the capture was interrupted (its process is gone, e.g. killed, before the capture ended): the file holds what was saved until then', lost: true };
}

/** A session folder that cannot be read, as a list row: its id, and why as its note (the error says where its capture is). */
function brokenSummary(id: string, createdAt: number, e: unknown): SessionSummary {
  const capture = isTapscopeError(e) && typeof e.details?.capture === 'string' ? e.details.capture : '';
  return {
    id, name: '(broken session)', target: '', mode: null, modeReason: null, captureFilter: null, filtered: 0, createdAt, endedAt: createdAt, live: false,
    packets: 0, bytes: 0, flows: 0, drops: 0, nodes: [], notes: [(e as Error).message], losses: [], file: capture,
  };
}

export function createCoreService(opts: CoreServiceOptions = {}): CoreService {
  return new CoreService(opts);
}

/** A key log on this machine that a local capture's helper is to follow: a readable file (it may be empty). */
function checkLocalKeyLog(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const why = keyLogReadError(path, e);
    if (why.code !== 'E_FILE_NOT_FOUND') throw why;
    throw new TapscopeError(why.code, `${why.message} (a client creates it at its first connection; create it empty first: touch ${path})`);
  }
  if (!st.isFile()) throw new TapscopeError('E_USAGE', `key log ${path} is not a regular file`);
}

/**
 * The key logs a capture follows on its nodes (startCapture's nodeKeyLogs): absolute paths there, each once; the
 * helper on each node refuses one it cannot read, before it captures.
 */
function nodeKeyLogPaths(paths: string[] | undefined): string[] {
  const out: string[] = [];
  for (const raw of paths ?? []) {
    const p = raw.trim();
    if (!p) continue;
    if (!p.startsWith('/')) throw new TapscopeError('E_USAGE', `a key log on the node is an absolute path there, not '${p}'`);
    if (/[\n\0]/.test(p)) throw new TapscopeError('E_USAGE', 'a key log path holds no newline or NUL');
    if (!out.includes(p)) out.push(p);
  }
  if (out.length > MAX_NODE_KEY_LOGS) throw new TapscopeError('E_USAGE', `at most ${MAX_NODE_KEY_LOGS} key logs on the node (${out.length} given)`);
  return out;
}

/**
 * A capture as its analysis so far has it (a live capture's, or the file another process is writing; null: none yet):
 * its mode as its capture records say, its filter and its counters.
 */
function sofar(a: Analyzer | null, rec: SessionRecord): Pick<SessionSummary, 'mode' | 'modeReason' | 'captureFilter' | 'filtered' | 'packets' | 'bytes' | 'flows' | 'drops'> {
  const metas = [...a?.nodes.values() ?? []];
  const m = metas.find((x) => x.hasCaptureRecord);
  return {
    mode: m?.mode ?? null, modeReason: m?.modeReason ?? null, ...captureFilterOf(metas, rec), packets: a?.counters.packets ?? 0, bytes: a?.counters.bytes ?? 0,
    flows: a?.flowCount ?? 0, drops: metas.reduce((n, x) => n + x.drops, 0),
  };
}

/**
 * The capture filter of a capture, as its nodes' capture records say (else as the session asked for it), and what
 * it left out, as their statistics count it.
 */
function captureFilterOf(metas: NodeMeta[], rec: SessionRecord): { captureFilter: string | null; filtered: number } {
  return {
    captureFilter: metas.find((m) => m.captureFilter !== null)?.captureFilter ?? rec.captureFilter ?? null,
    filtered: metas.reduce((n, m) => n + (m.stats?.filtered ?? 0), 0),
  };
}
