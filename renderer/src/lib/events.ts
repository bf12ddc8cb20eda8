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
  const offs = [
    api.on('sessionChanged', (s) => {
      sessions.upsert(s);
      if (s.id === flows.sessionId) flows.scheduleRefresh();
      if (s.id === sessions.currentId && ui.view === 'libraries') void libraries.load(s.id);
    }),
    api.on('counters', (c) => {
      sessions.setCounters(c.sessionId, { nodes: c.nodes, flows: c.flows });
      if (c.sessionId === flows.sessionId && c.flows !== flows.total) flows.scheduleRefresh();
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
