// Sessions on disk. Each session is a folder under the sessions root ($TAPSCOPE_HOME/sessions, else
// $XDG_DATA_HOME/tapscope/sessions, else ~/.local/share/tapscope/sessions) holding:
//   session.json    what the session is (id, name, target, times, nodes, notes, mode, capture file)
//   capture.pcapng  the capture: the helper's pcapng bytes as they arrived (the capture file may instead be a
//                   path the user chose, e.g. `tapscope capture --out`)
//   index.json      counters summarised from the capture; rebuilt from the pcapng when missing or stale
//   pods.json       (Kubernetes) address -> pod seen during the capture, for flow.pod when reopened
// Multi-node captures: every node streams into its own file while live (CAPTURE.<node>.pcapng next to the
// capture file; the first node writes the capture file itself). When the capture ends the other nodes' files
// are appended to the capture file — one pcapng section per node stream — and removed. A `{"t":"node"}` custom
// block after each SHB names the node of its section. A capture that was killed leaves the per-node files;
// reading them ignores a partial last block (with a note).
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, createReadStream, createWriteStream } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { TapscopeError } from '../errors.js';
import { sessionsRoot } from '../util/paths.js';
import { NodeFileWriter } from './node-writer.js';
import type { CaptureFile } from '../flows/load.js';
import type { PodRef } from '../model/flow.js';

export interface SessionRecord {
  version: 1;
  id: string;
  name: string;
  target: string;
  createdAt: number;
  endedAt: number | null;
  nodes: string[];
  notes: string[];
  /** the notes, among notes, on what a live capture lost (a node's stream cut or failed); absent in older sessions */
  losses?: string[];
  mode: string | null;
  modeReason: string | null;
  requestedMode: string | null;
  /** the capture filter asked for (tcpdump syntax); absent in older sessions and without one */
  captureFilter?: string | null;
  /** Absolute path of the capture file (the first node's file while live). */
  file: string;
  /** Node name -> file, for nodes whose stream is (still) in its own file. */
  nodeFiles: Record<string, string>;
  /** a compressed capture file opened: `file` is its decompressed copy, in the session's folder */
  openedFrom?: string;
}

export interface SessionIndex {
  fileSize: number;
  packets: number;
  bytes: number;
  flows: number;
  drops: number;
  mode: string | null;
  modeReason: string | null;
  /** as the capture records in the file say (absent in older indexes) */
  captureFilter?: string | null;
  filtered?: number;
  nodes: string[];
  notes: string[];
  builtAt: number;
}

const SESSION_JSON = 'session.json';
const INDEX_JSON = 'index.json';
const PODS_JSON = 'pods.json';

function safeName(node: string): string {
  return node.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80) || 'node';
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 1)}\n`);
  renameSync(tmp, path);
}

export class SessionStore {
  readonly root: string;

  constructor(root: string = sessionsRoot()) {
    this.root = root;
  }

  private dir(id: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(id)) throw new TapscopeError('E_SESSION_NOT_FOUND', `no session '${id}' (session ids are letters, digits, '.', '_' and '-')`);
    return join(this.root, id);
  }

  create(init: { name?: string; target: string; requestedMode?: string | null; captureFilter?: string | null; file?: string; existing?: boolean; openedFrom?: string }): SessionRecord {
    const now = new Date();
    const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const id = `${stamp}-${randomBytes(3).toString('hex')}`;
    const dir = join(this.root, id);
    mkdirSync(dir, { recursive: true });
    const file = init.file ? resolve(init.file) : join(dir, 'capture.pcapng');
    if (init.file && !init.existing) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, Buffer.alloc(0));
    }
    const rec: SessionRecord = {
      version: 1, id, name: init.name ?? `${init.target} ${now.toISOString().slice(0, 16).replace('T', ' ')}`, target: init.target,
      createdAt: now.getTime(), endedAt: null, nodes: [], notes: [], mode: null, modeReason: null, requestedMode: init.requestedMode ?? null,
      ...(init.captureFilter ? { captureFilter: init.captureFilter } : {}), file, nodeFiles: {},
      ...(init.openedFrom ? { openedFrom: init.openedFrom } : {}),
    };
    writeJsonAtomic(join(dir, SESSION_JSON), rec);
    return rec;
  }

  exists(id: string): boolean {
    try {
      return existsSync(join(this.dir(id), SESSION_JSON));
    } catch {
      return false;
    }
  }

  get(id: string): SessionRecord {
    const p = join(this.dir(id), SESSION_JSON);
    if (!existsSync(p)) throw new TapscopeError('E_SESSION_NOT_FOUND', `no session '${id}'; \`tapscope sessions\` lists them`);
    try {
      return JSON.parse(readFileSync(p, 'utf8')) as SessionRecord;
    } catch (e) {
      throw new TapscopeError('E_SESSION_NOT_FOUND', `session '${id}' has an unreadable session.json (${(e as Error).message}); delete the folder ${dirname(p)}`);
    }
  }

  save(rec: SessionRecord): void {
    writeJsonAtomic(join(this.dir(rec.id), SESSION_JSON), rec);
  }

  update(id: string, change: (rec: SessionRecord) => void): SessionRecord {
    const rec = this.get(id);
    change(rec);
    this.save(rec);
    return rec;
  }

  list(): SessionRecord[] {
    if (!existsSync(this.root)) return [];
    const out: SessionRecord[] = [];
    for (const name of readdirSync(this.root)) {
      if (!existsSync(join(this.root, name, SESSION_JSON))) continue;
      try {
        out.push(this.get(name));
      } catch {
        // why: one broken session folder must not hide the others.
      }
    }
    return out.sort((a, b) => b.createdAt - a.createdAt);
  }

  rename(id: string, name: string): SessionRecord {
    const trimmed = name.trim();
    if (!trimmed) throw new TapscopeError('E_USAGE', 'a session name cannot be empty');
    return this.update(id, (r) => { r.name = trimmed.slice(0, 200); });
  }

  delete(id: string): void {
    const rec = this.get(id);
    const dir = this.dir(id);
    // why: a capture file the user named (outside the session folder) is theirs; only our folder goes.
    for (const f of Object.values(rec.nodeFiles)) if (dirname(f) !== dir && existsSync(f) && f !== rec.file) rmSync(f, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }

  /** Opens the file a node's stream is written to, registering the node. */
  nodeWriter(id: string, node: string): NodeFileWriter {
    const rec = this.get(id);
    let path = rec.nodeFiles[node];
    if (!path) {
      const first = Object.keys(rec.nodeFiles).length === 0 && rec.nodes.length === 0;
      path = first ? rec.file : join(dirname(rec.file), `${basename(rec.file, '.pcapng')}.${safeName(node)}.pcapng`);
      rec.nodeFiles[node] = path;
      if (!rec.nodes.includes(node)) rec.nodes.push(node);
      this.save(rec);
    }
    return new NodeFileWriter(path, node);
  }

  /** Where the session keeps the TLS key log lines added to it (see CoreService.addKeyLog): read at each load. */
  keyLogPath(id: string): string {
    return join(this.dir(id), 'keys.log');
  }

  /** The files to read for a session, with their node names. */
  captureFiles(rec: SessionRecord): CaptureFile[] {
    const files: CaptureFile[] = [];
    const seen = new Set<string>();
    for (const [node, path] of Object.entries(rec.nodeFiles)) {
      if (existsSync(path)) files.push({ path, node });
      seen.add(path);
    }
    if (!seen.has(rec.file) && existsSync(rec.file)) files.unshift({ path: rec.file });
    return files;
  }

  /**
   * Ends a capture: merges the other nodes' files into the capture file (one section per stream), records
   * the end time and notes. Safe to call on a session whose capture was killed.
   */
  async finish(id: string, extra: { notes?: string[]; losses?: string[]; endedAt?: number; mode?: string | null; modeReason?: string | null } = {}): Promise<SessionRecord> {
    const rec = this.get(id);
    for (const [node, path] of Object.entries(rec.nodeFiles)) {
      if (path === rec.file) continue;
      if (existsSync(path)) {
        await pipeline(createReadStream(path), createWriteStream(rec.file, { flags: 'a' }));
        rmSync(path, { force: true });
      }
      rec.nodeFiles[node] = rec.file;
    }
    if (!existsSync(rec.file)) appendFileSync(rec.file, Buffer.alloc(0));
    rec.nodeFiles = {};
    rec.endedAt = extra.endedAt ?? rec.endedAt ?? Date.now();
    for (const n of extra.notes ?? []) if (!rec.notes.includes(n)) rec.notes.push(n);
    if (extra.losses?.length) rec.losses = [...new Set([...(rec.losses ?? []), ...extra.losses])];
    if (extra.mode !== undefined) rec.mode = extra.mode;
    if (extra.modeReason !== undefined) rec.modeReason = extra.modeReason;
    this.save(rec);
    return rec;
  }

  readIndex(rec: SessionRecord): SessionIndex | null {
    const p = join(this.dir(rec.id), INDEX_JSON);
    if (!existsSync(p)) return null;
    try {
      const idx = JSON.parse(readFileSync(p, 'utf8')) as SessionIndex;
      return idx.fileSize === this.totalSize(rec) ? idx : null;
    } catch {
      return null;
    }
  }

  writeIndex(rec: SessionRecord, idx: Omit<SessionIndex, 'fileSize' | 'builtAt'>): SessionIndex {
    const full: SessionIndex = { ...idx, fileSize: this.totalSize(rec), builtAt: Date.now() };
    writeJsonAtomic(join(this.dir(rec.id), INDEX_JSON), full);
    return full;
  }

  /** Pod names seen for addresses during a Kubernetes capture (the cluster may have changed since). */
  writePods(rec: SessionRecord, pods: Map<string, PodRef>): void {
    if (pods.size === 0) return;
    writeJsonAtomic(join(this.dir(rec.id), PODS_JSON), Object.fromEntries(pods));
  }

  readPods(rec: SessionRecord): Map<string, PodRef> | null {
    const p = join(this.dir(rec.id), PODS_JSON);
    if (!existsSync(p)) return null;
    try {
      return new Map(Object.entries(JSON.parse(readFileSync(p, 'utf8')) as Record<string, PodRef>));
    } catch {
      return null;
    }
  }

  totalSize(rec: SessionRecord): number {
    let n = 0;
    for (const f of this.captureFiles(rec)) {
      try {
        n += statSync(f.path).size;
      } catch {
        // why: a file removed under us counts as empty; the index is then rebuilt from what is left.
      }
    }
    return n;
  }
}
