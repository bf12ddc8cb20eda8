// Routes the core's events into the state classes; called once at startup.
import { getApi } from './api.js';
import { flows } from './state/flows.svelte.js';
import { libraries } from './state/libraries.svelte.js';
import { prompts } from './state/prompts.svelte.js';
import { sessions } from './state/sessions.svelte.js';
import { terminals } from './state/terminals.svelte.js';
import { ui } from './state/ui.svelte.js';

export function wireEvents(): () => void {
  const api = getApi();
  /** the last counters version seen per session */
  const seen = new Map<string, number>();
  const offs = [
    api.on('sessionChanged', (s) => {
      sessions.upsert(s);
      if (s.id === flows.sessionId) flows.scheduleRefresh();
      if (s.id === sessions.currentId && ui.view === 'libraries') void libraries.load(s.id);
    }),
    api.on('counters', (c) => {
      sessions.setCounters(c.sessionId, { nodes: c.nodes, flows: c.flows });
      // why the version too: a flow already on screen changes (its bytes, a request parsed, plaintext from a hook
      // record that came after its ClientHello) without the flow count changing
      const changed = seen.get(c.sessionId) !== c.version;
      seen.set(c.sessionId, c.version);
      if (c.sessionId === flows.sessionId && (changed || c.flows !== flows.total)) flows.scheduleRefresh();
      // (the breakdown of a live capture grows as its flows do)
      if (changed && c.sessionId === sessions.currentId && ui.view === 'libraries') libraries.scheduleLoad(c.sessionId);
    }),
    api.on('nodeStatus', (n) => sessions.setNodeStatus(n.sessionId, n.status)),
    api.on('prompt', (p) => prompts.push(p)),
    api.on('shellData', (d) => terminals.data(d.shellId, d.data)),
    api.on('shellExit', (d) => terminals.exited(d.shellId, d.code)),
    api.on('exportProgress', (p) => {
      sessions.exportProgress[p.sessionId] = { done: p.done, total: p.total };
    }),
  ];
  return () => offs.forEach((off) => off());
}
