// The flows of a few TCP conversations, each its own client port, through the analyzer: for the tests of what a
// connection's first messages make of it (in-place TLS upgrades, PROXY protocol headers).
import { Analyzer } from '../../src/flows/analyzer.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import type { Flow } from '../../src/model/flow.js';

/** the first conversation's client; the next ones' ports follow */
export const CLIENT = { ip: '10.9.0.1', port: 41000 };
export const server = (port: number): { ip: string; port: number } => ({ ip: '10.9.0.2', port });

export type Conversation = {
  port: number; c2s: (Buffer | string | null)[]; s2c: (Buffer | string | null)[];
  /** the client's FIN after the last turn (default true) */
  fin?: boolean;
  /** blocks after a turn's segments */
  afterTurn?: (b: CaptureBuilder, client: { ip: string; port: number }, turn: number) => void;
};

/** The conversations' flows, in order (segments in turns: see tcpConversation). */
export function conversationFlows(conversations: Conversation[]): Flow[] {
  const b = new CaptureBuilder();
  const buf = (x: Buffer | string | null): Buffer | null => (typeof x === 'string' ? Buffer.from(x) : x);
  conversations.forEach((c, i) => {
    const client = { ...CLIENT, port: CLIENT.port + i };
    tcpConversation(b, client, server(c.port), c.c2s.map(buf), c.s2c.map(buf), { fin: c.fin ?? true, afterTurn: (t) => c.afterTurn?.(b, client, t) });
  });
  const a = new Analyzer();
  const feed = a.stream('n1');
  for (const blk of parseBuffer(b.build())) feed(blk);
  return a.flows();
}
