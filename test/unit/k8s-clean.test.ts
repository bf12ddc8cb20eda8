// What `tapscope clean` removes and what it leaves alone, from the objects it lists: running sessions (by the
// heartbeat on their DaemonSet, judged by the writer's interval and the API server's clock), sessions starting now, crashed sessions, and an
// older Tapscope's objects without a heartbeat.
import { describe, expect, it } from 'vitest';
import type { V1DaemonSet, V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { liveness, planClean } from '../../src/targets/k8s/clean.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const at = (secondsAgo: number) => new Date(NOW - secondsAgo * 1000);

function labels(session: string): Record<string, string> {
  return { 'app.kubernetes.io/managed-by': 'tapscope', 'tapscope.dev/session': session };
}

function ds(namespace: string, session: string, beat: { secondsAgo: number; interval?: string; by?: string } | null): V1DaemonSet {
  const annotations = beat ? {
    'tapscope.dev/heartbeat': at(beat.secondsAgo).toISOString(),
    ...(beat.interval ? { 'tapscope.dev/heartbeat-interval-seconds': beat.interval } : {}),
    ...(beat.by ? { 'tapscope.dev/started-by': beat.by } : {}),
  } : undefined;
  return { metadata: { name: `tapscope-${session}`, namespace, labels: labels(session), annotations, creationTimestamp: at(3600) } };
}

/** `o` as the API server keeps it when its heartbeat (or claim) annotation last changed `secondsAgo`, by its own clock. */
function stamped<T extends V1DaemonSet | V1Namespace>(o: T, secondsAgo: number, key = 'tapscope.dev/heartbeat'): T {
  o.metadata!.managedFields = [
    { manager: 'node-fetch', operation: 'Update', time: at(3600), fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': {} } } },
    { manager: 'tapscope-heartbeat', operation: 'Update', time: at(secondsAgo), fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:annotations': { [`f:${key}`]: {} } } } },
  ];
  return o;
}

function sa(namespace: string, session: string, secondsAgo = 3600): V1ServiceAccount {
  return { metadata: { name: `tapscope-${session}`, namespace, labels: labels(session), creationTimestamp: at(secondsAgo) } };
}

function ns(name: string, secondsAgo = 3600): V1Namespace {
  return { metadata: { name, labels: { ...labels('x'), 'tapscope.dev/created-namespace': 'true' }, creationTimestamp: at(secondsAgo) } };
}

describe('liveness', () => {
  it('counts a heartbeat as fresh for three of the writer\'s intervals, and says when it was and who started the session', () => {
    expect(liveness(ds('t', 'a', { secondsAgo: 12, interval: '20', by: 'alice@laptop' }), NOW)).toEqual({ running: true, said: 'heartbeat 12 s ago, started by alice@laptop' });
    expect(liveness(ds('t', 'a', { secondsAgo: 61, interval: '20' }), NOW)).toEqual({ running: false, said: 'last heartbeat 61 s ago' });
    // the writer's interval, not ours: a 2 s writer missed three, a 60 s one did not
    expect(liveness(ds('t', 'a', { secondsAgo: 7, interval: '2' }), NOW).running).toBe(false);
    expect(liveness(ds('t', 'a', { secondsAgo: 150, interval: '60' }), NOW)).toEqual({ running: true, said: 'heartbeat 3 min ago' });
    // no interval recorded (or a nonsense one): the default, 20 s
    expect(liveness(ds('t', 'a', { secondsAgo: 59 }), NOW).running).toBe(true);
    expect(liveness(ds('t', 'a', { secondsAgo: 61, interval: 'soon' }), NOW).running).toBe(false);
    expect(liveness(ds('t', 'a', { secondsAgo: 3 * 86400 }), NOW).said).toBe('last heartbeat 3 d ago');
  });

  it('takes a DaemonSet without a heartbeat for an older Tapscope\'s leftover, and one ahead of our clock for running', () => {
    expect(liveness(ds('t', 'a', null), NOW)).toEqual({ running: false, said: 'no heartbeat: made by a Tapscope from before heartbeats' });
    expect(liveness(ds('t', 'a', { secondsAgo: -300, interval: '20' }), NOW)).toEqual({ running: true, said: 'heartbeat 5 min ahead of the API server\'s clock' });
  });

  it('judges the heartbeat by the API server\'s stamp of its last change, not by the clock of the machine that wrote it', () => {
    // a writer whose clock runs 10 min behind, refreshing every 20 s: its last refresh, by the server, 5 s ago
    expect(liveness(stamped(ds('t', 'a', { secondsAgo: 600, interval: '20' }), 5), NOW)).toEqual({ running: true, said: 'heartbeat 5 s ago' });
    // a writer whose clock runs 10 min ahead, gone for 2 min
    expect(liveness(stamped(ds('t', 'a', { secondsAgo: -600, interval: '20' }), 120), NOW)).toEqual({ running: false, said: 'last heartbeat 2 min ago' });
    // the entry that owns the annotation is the one that counts, not the newest: another manager changed something else since
    const d = stamped(ds('t', 'a', { secondsAgo: 0, interval: '20' }), 300);
    d.metadata!.managedFields!.push({ manager: 'kubectl-label', operation: 'Update', time: at(1), fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:team': {} } } } });
    expect(liveness(d, NOW)).toEqual({ running: false, said: 'last heartbeat 5 min ago' });
  });
});

describe('planClean', () => {
  const removed = (p: ReturnType<typeof planClean>) => p.remove.map((r) => `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`);

  it('keeps a running session with its ServiceAccount and namespace; removes a crashed one and its objects', () => {
    const p = planClean(
      [ds('tapscope', 'live', { secondsAgo: 5, interval: '20', by: 'alice@laptop' }), ds('tapscope', 'dead', { secondsAgo: 900, interval: '20' }), ds('old', 'gone', null)],
      [sa('tapscope', 'live'), sa('tapscope', 'dead'), sa('old', 'gone')],
      [ns('tapscope'), ns('old')],
      NOW, false,
    );
    expect(p.kept).toEqual(['running capture tapscope/tapscope-live (heartbeat 5 s ago, started by alice@laptop)']);
    expect(removed(p)).toEqual([
      'daemonset tapscope/tapscope-dead', 'daemonset old/tapscope-gone', 'serviceaccount tapscope/tapscope-dead', 'serviceaccount old/tapscope-gone', 'namespace old',
    ]);
    expect(p.remove.find((r) => r.name === 'tapscope-dead')?.said).toBe('last heartbeat 15 min ago');
  });

  it('keeps a session that is starting: its ServiceAccount and namespace made moments ago, its DaemonSet not yet', () => {
    const p = planClean([], [sa('new', 'fresh', 2), sa('new', 'stale', 600)], [ns('new', 3), ns('empty', 4), ns('abandoned', 600)], NOW, false);
    expect(p.kept).toEqual([
      'starting capture new/tapscope-fresh (its ServiceAccount made 2 s ago, no DaemonSet yet)',
      'namespace empty (made 4 s ago: a session may be starting in it)',
    ]);
    expect(removed(p)).toEqual(['serviceaccount new/tapscope-stale', 'namespace abandoned']);
  });

  it('keeps a namespace made long ago that a session claimed moments ago (by the server\'s stamp), its objects not made yet', () => {
    const claimed = stamped(ns('reused', 3600), 10, 'tapscope.dev/claimed-by');
    claimed.metadata!.annotations = { 'tapscope.dev/claimed-by': 'c0ffee01' };
    const stale = stamped(ns('stale', 3600), 600, 'tapscope.dev/claimed-by');
    const p = planClean([], [], [claimed, stale], NOW, false);
    expect(p.kept).toEqual(['namespace reused (claimed by session c0ffee01 10 s ago: a session may be starting in it)']);
    expect(removed(p)).toEqual(['namespace stale']);
  });

  it('deletes each object on the condition that it is as listed (its resourceVersion); with force, unconditionally', () => {
    const d = { ...ds('t', 'dead', { secondsAgo: 900 }) };
    d.metadata = { ...d.metadata, resourceVersion: '41' };
    const n = ns('t');
    n.metadata = { ...n.metadata, resourceVersion: '7' };
    expect(planClean([d], [], [n], NOW, false).remove.map((r) => r.resourceVersion)).toEqual(['41', '7']);
    expect(planClean([d], [], [n], NOW, true).remove.map((r) => r.resourceVersion)).toEqual([undefined, undefined]);
  });

  it('names a host shell as a shell', () => {
    const p = planClean([ds('tapscope', 'shell-ab12cd', { secondsAgo: 1, interval: '20' })], [sa('tapscope', 'shell-ab12cd')], [], NOW, false);
    expect(p.kept).toEqual(['running shell tapscope/tapscope-shell-ab12cd (heartbeat 1 s ago)']);
    expect(p.remove).toEqual([]);
  });

  it('with force, removes everything, saying which sessions were running', () => {
    const p = planClean([ds('tapscope', 'live', { secondsAgo: 5, interval: '20' })], [sa('tapscope', 'live'), sa('tapscope', 'starting', 1)], [ns('tapscope', 1)], NOW, true);
    expect(p.kept).toEqual([]);
    expect(removed(p)).toEqual(['daemonset tapscope/tapscope-live', 'serviceaccount tapscope/tapscope-live', 'serviceaccount tapscope/tapscope-starting', 'namespace tapscope']);
    expect(p.remove[0]?.said).toBe('running: heartbeat 5 s ago');
  });
});
