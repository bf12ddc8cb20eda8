// Sessions on disk as people and tools leave them: a session folder copied or renamed is a session of its own; a
// session.json of the wrong shape is reported for that session while the others list; the index is a cache that a
// read-only folder cannot break and that is rebuilt when the capture changed or the index is malformed; an id never
// reaches outside the sessions folder; a killed capture is said to be one; a file that is no capture leaves no
// session; a damaged keys.log costs the decryption, not the session; a directory or "~/" given as a file is read as the
// CLI and a shell read it; a file dropped in web mode is one session however often it is dropped, goes with it, and is
// kept while a session names it, however the data folder is named (relative, "~/", through a link). A capture another
// process runs is said to be one (not cut off), read again as it grows and once it ends, and cannot be deleted under it;
// a name is kept whole up to the API's limit, never cut inside a character; a sessions folder that cannot be written
// is one clear error.
// Real files, the real SessionStore and CoreService; the other process is a real one (sleep).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { storeUpload } from '../../src/server/uploads.js';
import { loadCoreService } from '../../src/server/load-service.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { CaptureBuilder } from './core-packet-builder.js';

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsc-sessions-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

/** A helper's stream: a capture record and `n` UDP packets, each its own flow. */
function stream(n: number): Buffer {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'test-host' });
  for (let i = 0; i < n; i++) b.udp({ src: '10.88.0.1', dst: '10.88.0.2', sport: 30000 + i, dport: 53, payload: Buffer.alloc(30, i) });
  return b.build();
}

/** A finished capture session of `n` packets, made as a capture makes it (its file in its folder). */
async function captured(store: SessionStore, n: number, name = 'captured'): Promise<string> {
  const rec = store.create({ target: 'local', name });
  const w = store.nodeWriter(rec.id, 'node-a');
  w.beginStream();
  w.write(stream(n));
  w.close();
  await store.finish(rec.id);
  return rec.id;
}

/** The id of a process that has exited. */
const deadPid = (): number => spawnSync('true').pid!;

describe('a copied or renamed session folder', () => {
  it('is a session of its own: rename, index and delete act on the folder they are given, never on the original', async () => {
    const root = join(tmp, 'copied', 'sessions');
    const store = new SessionStore(root);
    const id = await captured(store, 6, 'original');
    // a session saved before that: its file by absolute path, in the folder it was made in
    const legacy = await captured(store, 4, 'legacy');
    const raw = JSON.parse(readFileSync(join(root, legacy, 'session.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(root, legacy, 'session.json'), JSON.stringify({ ...raw, file: join(root, legacy, 'capture.pcapng') }));
    for (const s of [id, legacy]) cpSync(join(root, s), join(root, `${s}-backup`), { recursive: true });
    // (a copy keeps the stored id of its original: only the folder tells them apart)
    expect(JSON.parse(readFileSync(join(root, `${id}-backup`, 'session.json'), 'utf8'))).toMatchObject({ id });

    const svc = new CoreService({ store });
    await svc.renameSession({ sessionId: `${id}-backup`, name: 'the backup' });
    await svc.renameSession({ sessionId: `${legacy}-backup`, name: 'legacy backup' });
    const listed = await svc.listSessions();
    expect(listed.map((s) => [s.id, s.name, s.file, s.packets]).sort()).toEqual([
      [id, 'original', join(root, id, 'capture.pcapng'), 6],
      [`${id}-backup`, 'the backup', join(root, `${id}-backup`, 'capture.pcapng'), 6],
      [legacy, 'legacy', join(root, legacy, 'capture.pcapng'), 4],
      [`${legacy}-backup`, 'legacy backup', join(root, `${legacy}-backup`, 'capture.pcapng'), 4],
    ].sort());
    // (each folder has its own index)
    for (const s of listed) expect(existsSync(join(root, s.id, 'index.json'))).toBe(true);

    await svc.deleteSession({ sessionId: id });
    await svc.deleteSession({ sessionId: legacy });
    expect(readdirSync(root).sort()).toEqual([`${id}-backup`, `${legacy}-backup`].sort());
    // (the files in a folder are kept by their name, so that a copy reads its own; saving the legacy record did that too)
    expect(JSON.parse(readFileSync(join(root, `${id}-backup`, 'session.json'), 'utf8'))).toMatchObject({ id: `${id}-backup`, file: 'capture.pcapng' });
    expect(JSON.parse(readFileSync(join(root, `${legacy}-backup`, 'session.json'), 'utf8'))).toMatchObject({ id: `${legacy}-backup`, file: 'capture.pcapng' });
    const fresh = new CoreService({ store: new SessionStore(root) });
    expect((await fresh.queryFlows({ sessionId: `${id}-backup`, offset: 0, limit: 100 })).total).toBe(6);
    expect((await fresh.queryFlows({ sessionId: `${legacy}-backup`, offset: 0, limit: 100 })).total).toBe(4);
  });
});

describe('a session.json of the wrong shape', () => {
  const cases: [string, (rec: Record<string, unknown>) => unknown, RegExp][] = [
    ['an array', () => [], /is not a session record \(the record: .*expected object, received array\)/],
    ['null', () => null, /is not a session record \(the record: .*expected object, received null\)/],
    ['no file', ({ file: _file, ...rec }) => rec, /is not a session record \(file: .*expected string, received undefined\)/],
    ['nodeFiles null', (rec) => ({ ...rec, nodeFiles: null }), /is not a session record \(nodeFiles: .*received null\)/],
    ['not JSON', () => undefined, /cannot be read \(/],
  ];

  it('is reported for that session, saying where its capture is; the others list; commands on it fail clearly', async () => {
    const root = join(tmp, 'shapes', 'sessions');
    const store = new SessionStore(root);
    const good = await captured(store, 3, 'good');
    const broken = new Map<string, RegExp>();
    for (const [what, change, why] of cases) {
      const id = await captured(store, 2, what);
      const p = join(root, id, 'session.json');
      const changed = change(JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>);
      writeFileSync(p, changed === undefined ? '{"name": "cut sh' : JSON.stringify(changed));
      broken.set(id, why);
    }
    // an id in the record that is not its folder's (or any) is of no account: the folder is the id
    const badId = await captured(store, 5, 'bad id');
    const p = join(root, badId, 'session.json');
    writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')) as object, id: '../../../x' }));

    const svc = new CoreService({ store });
    const listed = await svc.listSessions();
    expect(listed).toHaveLength(cases.length + 2);
    expect(listed.find((s) => s.id === good)).toMatchObject({ name: 'good', packets: 3 });
    expect(listed.find((s) => s.id === badId)).toMatchObject({ name: 'bad id', packets: 5 });
    for (const [id, why] of broken) {
      const row = listed.find((s) => s.id === id)!;
      expect(row).toMatchObject({ name: '(broken session)', packets: 0, file: join(root, id, 'capture.pcapng') });
      expect(row.notes).toHaveLength(1);
      const note = row.notes[0]!;
      expect(note).toMatch(why);
      expect(note).toContain(`session '${id}': ${join(root, id, 'session.json')} `);
      // (the folder holds the capture: it says how to read it, never to delete the folder)
      expect(note).toContain(`its capture is not affected: \`tapscope flows ${join(root, id, 'capture.pcapng')}\` reads it`);
      expect(note).not.toMatch(/delete the folder/);
      await expect(svc.queryFlows({ sessionId: id, offset: 0, limit: 1 })).rejects.toMatchObject({ code: 'E_SESSION_BROKEN', message: note });
    }
    expect((await svc.queryFlows({ sessionId: badId, offset: 0, limit: 100 })).total).toBe(5);
  });
});

describe('the index', () => {
  it('is a cache: a session whose index cannot be written still opens, and no temporary file is left', async () => {
    const root = join(tmp, 'index-ro', 'sessions');
    const store = new SessionStore(root);
    const id = await captured(store, 7);
    // (an index.json that is a directory: writing the index fails at its rename, as in a folder that cannot be written)
    mkdirSync(join(root, id, 'index.json'));
    const svc = new CoreService({ store });
    expect((await svc.queryFlows({ sessionId: id, offset: 0, limit: 100 })).total).toBe(7);
    expect((await svc.listSessions())[0]).toMatchObject({ id, packets: 7 });
    expect(readdirSync(join(root, id)).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('is rebuilt when the capture changed at the same size, or when it is malformed', async () => {
    const root = join(tmp, 'index-stale', 'sessions');
    const store = new SessionStore(root);
    const id = await captured(store, 10);
    expect((await new CoreService({ store }).listSessions())[0]).toMatchObject({ packets: 10, flows: 10 });
    // the capture is damaged in place (the same size): its 6th packet's block length is wrong
    const file = join(root, id, 'capture.pcapng');
    const bytes = readFileSync(file);
    const sixth = parseBuffer(bytes).filter((b) => b.type === 'epb')[5]!;
    bytes.writeUInt32LE(0x7fffffff, sixth.offset + 4);
    writeFileSync(file, bytes);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const after = (await new CoreService({ store }).listSessions())[0]!;
    expect(after).toMatchObject({ packets: 5 });
    expect(after.losses.join(' ')).toMatch(/is damaged: block length 2147483647/);

    // an index of the wrong shape (the size and time right) is not believed
    const idx = join(root, id, 'index.json');
    writeFileSync(idx, JSON.stringify({ ...JSON.parse(readFileSync(idx, 'utf8')) as object, packets: 'lots', notes: 'abc' }));
    const again = (await new CoreService({ store }).listSessions())[0]!;
    expect(again.packets).toBe(5);
    expect(again.notes.every((n) => n.length > 3)).toBe(true);
    expect(statSync(idx).isFile()).toBe(true);
  });
});

describe('session ids', () => {
  it('never reach outside the sessions folder: ".", ".." and hidden names are no sessions', async () => {
    const home = join(tmp, 'ids');
    const root = join(home, 'sessions');
    const store = new SessionStore(root);
    const id = await captured(store, 1);
    // (a session.json in the data folder itself, and one in the sessions folder: what `..` and `.` would read)
    writeFileSync(join(home, 'session.json'), '{"nodeFiles":{}}');
    writeFileSync(join(root, 'session.json'), '{"nodeFiles":{}}');
    writeFileSync(join(home, 'mine.pcapng'), stream(1));
    const svc = new CoreService({ store });
    for (const bad of ['..', '.', '.hidden', '../sessions']) {
      await expect(svc.deleteSession({ sessionId: bad })).rejects.toMatchObject({ code: 'E_SESSION_NOT_FOUND' });
      expect(store.exists(bad)).toBe(false);
    }
    expect(existsSync(join(home, 'mine.pcapng'))).toBe(true);
    expect((await svc.listSessions()).map((s) => s.id)).toEqual([id]);
  });
});

describe('a capture whose process was killed', () => {
  it('is listed as interrupted; one whose process runs is not', async () => {
    const root = join(tmp, 'killed', 'sessions');
    const store = new SessionStore(root);
    const make = (pid: number): string => {
      const rec = store.create({ target: 'local' });
      const w = store.nodeWriter(rec.id, 'node-a');
      w.beginStream();
      w.write(stream(3));
      w.close();
      // (no finish: as its process left it)
      store.update(rec.id, (r) => { r.writer = { pid, host: hostname(), start: null }; });
      return rec.id;
    };
    const killed = make(deadPid());
    const running = make(process.pid);
    const listed = await new CoreService({ store }).listSessions();
    expect(listed.find((s) => s.id === killed)!.notes).toContain('the capture was interrupted (its process is gone, e.g. killed, before the capture ended): the file holds what was saved until then');
    expect(listed.find((s) => s.id === killed)!.packets).toBe(3);
    expect(listed.find((s) => s.id === running)!.notes).toEqual([]);
  });
});

describe('opening files', () => {
  it('a file that is no capture leaves no session behind', async () => {
    const store = new SessionStore(join(tmp, 'open', 'sessions'));
    const text = join(tmp, 'notes.txt');
    writeFileSync(text, 'these are my notes, not a capture\n');
    const svc = new CoreService({ store });
    await expect(svc.openFile({ path: text })).rejects.toMatchObject({ code: 'E_PCAPNG_MALFORMED' });
    expect(store.list()).toEqual([]);
  });

  it('a directory is said to be one, a missing file missing, and "~/" is the home folder, as a shell reads it', async () => {
    const home = join(tmp, 'home');
    mkdirSync(join(home, 'captures.pcapng'), { recursive: true });
    writeFileSync(join(home, 'x.pcapng'), stream(3));
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'paths', 'sessions')) });
    const was = process.env.HOME;
    process.env.HOME = home;
    try {
      await expect(svc.openFile({ path: join(home, 'captures.pcapng') })).rejects.toMatchObject({
        code: 'E_FILE_UNREADABLE', message: `${join(home, 'captures.pcapng')} is a directory, not a capture file`,
      });
      await expect(svc.openFile({ path: '~' })).rejects.toMatchObject({ code: 'E_FILE_UNREADABLE', message: `${home} is a directory, not a capture file` });
      await expect(svc.openFile({ path: join(home, 'y.pcapng') })).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND', message: `no such file: ${join(home, 'y.pcapng')}` });
      const s = await svc.openFile({ path: '~/x.pcapng' });
      expect([s.name, s.file, s.packets]).toEqual(['x.pcapng', join(home, 'x.pcapng'), 3]);
      // (only a leading "~/": any other "~" is part of a name, relative to the working folder as before)
      await expect(svc.openFile({ path: 'a~/x.pcapng' })).rejects.toMatchObject({ message: `no such file: ${join(process.cwd(), 'a~/x.pcapng')}` });
    } finally {
      process.env.HOME = was;
    }
  });

  it('a session whose keys.log is damaged opens without decryption, saying so', async () => {
    const store = new SessionStore(join(tmp, 'keys', 'sessions'));
    const id = await captured(store, 4);
    writeFileSync(store.keyLogPath(id), 'this is no key log\n');
    const svc = new CoreService({ store });
    expect((await svc.queryFlows({ sessionId: id, offset: 0, limit: 100 })).total).toBe(4);
    const s = await svc.openSession({ sessionId: id });
    expect(s.notes).toContainEqual(expect.stringMatching(/^the session's key log cannot be used \(.*keys\.log holds no TLS secrets.*\); its TLS connections are shown without decryption$/));
  });
});

describe('files dropped in web mode (the uploads folder)', () => {
  const upload = (store: SessionStore, bytes: Buffer, name: string): Promise<string> => storeUpload(Readable.from([bytes]), store.uploads, name);
  const uploads = (store: SessionStore): string[] => readdirSync(store.uploads, { recursive: true, encoding: 'utf8' }).sort();

  it('the same file dropped again opens its session, named as the file; deleting the session deletes the copy (only)', async () => {
    const store = new SessionStore(join(tmp, 'drop', 'sessions'));
    expect(store.uploads).toBe(join(tmp, 'drop', 'uploads'));
    const svc = new CoreService({ store });
    const first = await upload(store, stream(5), 'my capture (1).pcapng');
    const again = await upload(store, stream(5), 'my capture (1).pcapng');
    expect(again).toBe(first);
    const s = await svc.openFile({ path: first });
    expect((await svc.openFile({ path: again })).id).toBe(s.id);
    expect([s.name, s.packets]).toEqual(['my capture (1).pcapng', 5]);
    // another content under that name, and that content under another name: files (and sessions) of their own
    const other = await upload(store, stream(6), 'my capture (1).pcapng');
    const renamed = await upload(store, stream(5), 'copy.pcapng');
    expect(new Set([first, other, renamed]).size).toBe(3);
    const o = await svc.openFile({ path: other });
    const r = await svc.openFile({ path: renamed });
    expect(store.list()).toHaveLength(3);
    expect(uploads(store)).toHaveLength(5);

    await svc.deleteSession({ sessionId: s.id });
    expect(existsSync(first)).toBe(false);
    // (its content's folder stays while the other name of that content is in it)
    expect(uploads(store).filter((f) => f.endsWith('.pcapng'))).toEqual([relative(store.uploads, other), relative(store.uploads, renamed)].sort());
    await svc.deleteSession({ sessionId: r.id });
    await svc.deleteSession({ sessionId: o.id });
    expect(uploads(store)).toEqual([]);
    // a file opened from anywhere else is the user's: its session goes, the file stays
    const mine = join(tmp, 'drop', 'mine.pcapng');
    writeFileSync(mine, stream(2));
    await svc.deleteSession({ sessionId: (await svc.openFile({ path: mine })).id });
    expect(existsSync(mine)).toBe(true);
  });

  it('a gzip-compressed upload goes with its session too, and one that is no capture goes at once', async () => {
    const store = new SessionStore(join(tmp, 'drop-gz', 'sessions'));
    const svc = new CoreService({ store });
    const gz = await upload(store, gzipSync(stream(4)), 'c.pcapng.gz');
    const s = await svc.openFile({ path: gz });
    expect(store.get(s.id).openedFrom).toBe(gz);
    await svc.deleteSession({ sessionId: s.id });
    const text = await upload(store, Buffer.from('these are my notes, not a capture\n'), 'notes.pcapng');
    await expect(svc.openFile({ path: text })).rejects.toMatchObject({ code: 'E_PCAPNG_MALFORMED' });
    expect(uploads(store)).toEqual([]);
  });

  it('at start, uploads no session names and an hour old are removed: older versions\' copies of deleted sessions', async () => {
    const store = new SessionStore(join(tmp, 'orphans', 'sessions'));
    const svc = new CoreService({ store });
    mkdirSync(store.uploads, { recursive: true });
    // Tapscope 0.1 stored each drop as <ms>-<name> and left it when its session was deleted
    const legacy = (name: string): string => {
      const p = join(store.uploads, name);
      writeFileSync(p, stream(2));
      return p;
    };
    const orphan = legacy('1795958352862-capture.pcapng');
    const kept = legacy('1795958354013-capture.pcapng');
    const brokenOwn = legacy('1795958355000-other.pcapng');
    const part = legacy('.0123456789abcdef.part');
    const fresh = await upload(store, stream(3), 'fresh.pcapng');
    const dropped = await upload(store, stream(4), 'dropped.pcapng');
    await svc.openFile({ path: kept });
    await svc.openFile({ path: dropped });
    // a session whose session.json cannot be read, naming an upload as its capture: kept until it is fixed
    const broken = await svc.openFile({ path: brokenOwn });
    writeFileSync(join(store.root, broken.id, 'session.json'), `{"file": ${JSON.stringify(brokenOwn)}, "name": `);
    const hourAgo = (Date.now() - 61 * 60_000) / 1000;
    for (const f of [orphan, kept, brokenOwn, part, dropped]) utimesSync(f, hourAgo, hourAgo);

    // (the app's service sweeps as it starts: Electron's and web mode's)
    await (await loadCoreService({ store })).close();
    for (const f of [orphan, part]) expect(existsSync(f), f).toBe(false);
    for (const f of [kept, brokenOwn, fresh, dropped]) expect(existsSync(f), f).toBe(true);
    expect(store.removeOrphanUploads()).toEqual([]);
    // (one just uploaded, whose session is not made yet, goes once an hour old)
    expect(store.removeOrphanUploads(Date.now() + 61 * 60_000)).toEqual([fresh]);
    expect(existsSync(dirname(fresh))).toBe(false);
  });

  /** `fn` with the environment variables `vars` set (undefined: unset), as they were after. */
  const withEnv = async <T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> => {
    const was = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    const set = (v: Record<string, string | undefined>): void => {
      for (const [k, x] of Object.entries(v)) if (x === undefined) delete process.env[k]; else process.env[k] = x;
    };
    set(vars);
    try {
      return await fn();
    } finally {
      set(was);
    }
  };
  const anHourOld = (f: string): void => {
    const t = (Date.now() - 61 * 60_000) / 1000;
    utimesSync(f, t, t);
  };

  it('a relative TAPSCOPE_HOME (e.g. ./data): the sweep keeps an hour-old upload its session opened', async () => {
    const home = join(tmp, 'relative-home');
    await withEnv({ TAPSCOPE_HOME: relative(process.cwd(), home) }, async () => {
      const store = new SessionStore();
      const svc = new CoreService({ store });
      const dropped = await upload(store, stream(3), 'x.pcapng');
      const s = await svc.openFile({ path: dropped });
      anHourOld(dropped);
      await (await loadCoreService({ store })).close();
      expect(existsSync(dropped)).toBe(true);
      // (the folders are absolute, and the session names the upload by the path it was stored at)
      expect([store.root, store.uploads]).toEqual([join(home, 'sessions'), join(home, 'uploads')]);
      expect(store.get(s.id).file).toBe(dropped);
      // (and it still goes with its session)
      await svc.deleteSession({ sessionId: s.id });
      expect(existsSync(dropped)).toBe(false);
    });
  });

  it('TAPSCOPE_HOME="~/th" is in the home folder: the path an upload is stored at is the one its session opens', async () => {
    const home = join(tmp, 'tilde-home');
    await withEnv({ HOME: home, TAPSCOPE_HOME: '~/th' }, async () => {
      const store = new SessionStore();
      expect(store.uploads).toBe(join(home, 'th', 'uploads'));
      const dropped = await upload(store, stream(2), 'y.pcapng');
      const s = await new CoreService({ store }).openFile({ path: dropped });
      expect(dropped.startsWith(join(home, 'th', 'uploads') + '/')).toBe(true);
      expect([s.file, s.packets]).toEqual([dropped, 2]);
    });
  });

  it('a data folder reached through a link: an upload opened by its real path is kept by the sweep', async () => {
    const real = join(tmp, 'linked-real');
    const link = join(tmp, 'linked-home');
    mkdirSync(real);
    symlinkSync(real, link);
    const store = new SessionStore(join(link, 'sessions'));
    const dropped = await upload(store, stream(2), 'z.pcapng');
    const s = await new CoreService({ store }).openFile({ path: realpathSync(dropped) });
    expect(store.get(s.id).file).toBe(join(real, relative(link, dropped)));
    anHourOld(dropped);
    expect(store.removeOrphanUploads()).toEqual([]);
    expect(existsSync(dropped)).toBe(true);
  });
});

describe('a key log chosen for a session', () => {
  it('"~/keys.log" is in the home folder, as openFile reads "~/"', async () => {
    const home = join(tmp, 'keylog-home');
    mkdirSync(home);
    writeFileSync(join(home, 'keys.log'), `CLIENT_RANDOM ${'ab'.repeat(32)} ${'cd'.repeat(48)}\n`);
    const store = new SessionStore(join(tmp, 'keylog', 'sessions'));
    const id = await captured(store, 2);
    const svc = new CoreService({ store });
    const was = process.env.HOME;
    process.env.HOME = home;
    try {
      const added = await svc.addKeyLog({ sessionId: id, path: '~/keys.log' });
      expect(added.secrets).toBe(1);
      expect(readFileSync(store.keyLogPath(id), 'utf8')).toContain('ab'.repeat(32));
    } finally {
      process.env.HOME = was;
    }
  });
});

describe('a capture another process runs (a CLI capture, seen from the app or a second CLI)', () => {
  /** A stand-in for that process: one that runs, as the session's writer, until it is killed. */
  function otherProcess(): { ref: { pid: number; host: string; start: null }; end(): Promise<void> } {
    const child = spawn('sleep', ['120'], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    return { ref: { pid: child.pid!, host: hostname(), start: null }, end: async () => { child.kill(); await exited; } };
  }

  /** A helper's stream in parts of `counts` packets: statistics after each, the last ones final (its end). */
  function parts(...counts: number[]): Buffer[] {
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'test-host' });
    let sent = 0;
    return counts.map((n, k) => {
      for (let i = sent; i < sent + n; i++) b.udp({ src: '10.89.0.1', dst: '10.89.0.2', sport: 30000 + i, dport: 53, payload: Buffer.alloc(30, i) });
      sent += n;
      b.record({ t: 'stats', packets: sent, final: k === counts.length - 1 });
      return b.take();
    });
  }

  it('is listed as being captured by that process, not as cut off; read again as it grows, and once it ends, whole', async () => {
    const store = new SessionStore(join(tmp, 'elsewhere', 'sessions'));
    const other = otherProcess();
    try {
      const rec = store.create({ target: 'local', name: 'running elsewhere' });
      store.update(rec.id, (r) => { r.writer = other.ref; });
      const [first, more, rest] = parts(10, 10, 20);
      const w = store.nodeWriter(rec.id, 'node-a');
      w.beginStream();
      w.write(first!);
      const svc = new CoreService({ store });
      const during = (await svc.listSessions()).find((s) => s.id === rec.id)!;
      expect(during.notes).toEqual([`being captured by process ${other.ref.pid}: the counts are of what it had written when this was read`]);
      expect(during.losses).toEqual([]);
      expect(during).toMatchObject({ packets: 10, flows: 10, mode: 'afpacket', live: false, endedAt: null });
      // (the app opens it half-way, and looks again as it grows)
      expect((await svc.openSession({ sessionId: rec.id })).flows).toBe(10);
      expect((await svc.queryFlows({ sessionId: rec.id, offset: 0, limit: 100 })).total).toBe(10);
      w.write(more!);
      expect((await svc.queryFlows({ sessionId: rec.id, offset: 0, limit: 100 })).total).toBe(20);
      // (no index of a file still being written: stale at once, and it could pass for current if that capture is killed)
      expect(existsSync(join(store.root, rec.id, 'index.json'))).toBe(false);
      // (then that capture ends, and indexes its session, as a capture's end does)
      w.write(rest!);
      w.close();
      await store.finish(rec.id);
      await new CoreService({ store }).openSession({ sessionId: rec.id });
      const after = (await svc.listSessions()).find((s) => s.id === rec.id)!;
      expect(after.notes).toEqual([]);
      expect(after.packets).toBe(40);
      expect((await svc.openSession({ sessionId: rec.id })).flows).toBe(40);
      expect((await svc.queryFlows({ sessionId: rec.id, offset: 0, limit: 100 })).total).toBe(40);
    } finally {
      await other.end();
    }
  });

  it('is not deleted while that process runs (it would go on writing into a session that is gone); once it is gone, it is', async () => {
    const store = new SessionStore(join(tmp, 'elsewhere-delete', 'sessions'));
    const other = otherProcess();
    const rec = store.create({ target: 'local' });
    store.update(rec.id, (r) => { r.writer = other.ref; });
    const svc = new CoreService({ store });
    try {
      await expect(svc.deleteSession({ sessionId: rec.id })).rejects.toMatchObject({
        code: 'E_USAGE', message: `session '${rec.id}' cannot be deleted while process ${other.ref.pid} captures into it; stop that capture first (Ctrl-C where it runs), then delete the session`,
      });
      expect(store.exists(rec.id)).toBe(true);
    } finally {
      await other.end();
    }
    // (killed: its session is an interrupted one, which is the user's to delete)
    await svc.deleteSession({ sessionId: rec.id });
    expect(store.exists(rec.id)).toBe(false);
  });
});

describe('session names', () => {
  it('a name of up to 256 UTF-16 units (as the API allows) is kept whole, emoji and all; a longer one is refused, never cut', async () => {
    const store = new SessionStore(join(tmp, 'names', 'sessions'));
    const id = await captured(store, 1);
    const svc = new CoreService({ store });
    // (an emoji across where the name used to be cut, at 200 units)
    const name = `${'a'.repeat(199)}\u{1F600}${'b'.repeat(10)}`;
    expect((await svc.renameSession({ sessionId: id, name })).name).toBe(name);
    expect(store.get(id).name).toBe(name);
    const longest = `${'c'.repeat(254)}\u{1F600}`;
    expect((await svc.renameSession({ sessionId: id, name: longest })).name).toBe(longest);
    await expect(svc.renameSession({ sessionId: id, name: `${'d'.repeat(256)}\u{1F600}` })).rejects.toMatchObject({
      code: 'E_USAGE', message: 'a session name is at most 256 characters (an emoji counts as two); this one has 258',
    });
    expect(store.get(id).name).toBe(longest);
  });
});

describe('a sessions folder that cannot be written', () => {
  it('is one line naming the folder and why, before anything starts (read-only, or a folder that cannot be made there)', async () => {
    const ro = join(tmp, 'ro');
    mkdirSync(ro);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', ro]);
    try {
      mkdirSync(join(ro, 'home', 'sessions'), { recursive: true });
      execFileSync('mount', ['-o', 'remount,ro', ro]);
      for (const root of [join(ro, 'home', 'sessions'), join(ro, 'new', 'sessions')]) {
        const svc = new CoreService({ store: new SessionStore(root), createTarget: () => { throw new Error('not to be reached'); } });
        await expect(svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [] })).rejects.toMatchObject({
          code: 'E_CAPTURE_OUT', message: `cannot keep sessions in ${root}: the file system is read-only (TAPSCOPE_HOME chooses another folder for them)`,
        });
      }
    } finally {
      spawnSync('umount', [ro]);
    }
  });
});
