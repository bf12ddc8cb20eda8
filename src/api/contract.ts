// The one typed API between the renderer and the core. Electron IPC (preload) and the web-mode
// WebSocket both carry exactly these calls and events; payloads are validated at each boundary.
import type { Flow, LibraryBreakdownRow, LibraryTotals, StreamReset, TcpState } from '../model/flow.js';
import type { CaptureMode, NodeInfo, NodeStatus, PodChoice, Prompt } from '../targets/target.js';
import type { CaptureFilterCheck } from '../targets/capture-filter.js';

export interface TargetChoice {
  kind: 'local' | 'ssh' | 'k8s';
  /** URI usable with `tapscope capture --target` */
  uri: string;
  label: string;
  detail?: string;
}

export interface SessionSummary {
  id: string;
  name: string;
  target: string;
  mode: string | null;
  modeReason: string | null;
  /** The capture filter (tcpdump syntax) the nodes applied, null for none: what is not here was not captured. */
  captureFilter: string | null;
  /** packets and decrypted records the capture filter left out, as the nodes counted them */
  filtered: number;
  createdAt: number;
  endedAt: number | null;
  live: boolean;
  packets: number;
  bytes: number;
  flows: number;
  drops: number;
  nodes: string[];
  notes: string[];
  /**
   * The notes on what the flows lack (each also in notes): a block damaged in the middle of a file, a tail cut
   * short, a node's stream lost and resumed or failed. The app tells them on opening the session.
   */
  losses: string[];
  /** Absolute path of the session's pcapng */
  file: string;
}

export interface NodeCounters {
  node: string;
  packets: number;
  bytes: number;
  drops: number;
  phase: NodeStatus['phase'];
}

export interface HttpExchangeDetail {
  method: string | null;
  host: string | null;
  path: string | null;
  status: number | null;
  requestHeaders: [string, string][];
  responseHeaders: [string, string][];
  /** HTTP/2 and HTTP/3: how many of the request's (response's) headers were not kept, past 64 KiB of them; absent: none */
  requestHeadersDropped?: number;
  responseHeadersDropped?: number;
  requestBody: string | null;
  responseBody: string | null;
  /** 'decrypted' when it came from hook plaintext, 'plain' from cleartext TCP */
  source: 'decrypted' | 'plain';
  /** 'keylog': a 'decrypted' exchange whose records were opened with a key log's secrets, not read from TLS hooks */
  decryptedWith?: 'keylog';
  startedAt: number;
  /** its end was not seen (see HttpExchangeSummary.unfinished); absent otherwise */
  unfinished?: true;
  /**
   * With unfinished: what cut its request or response short ("response: the connection closed before its body's end";
   * several joined by "; "): the capture's end, or its connection's close or reset before a body's end.
   */
  unfinishedReason?: string;
  /** its HTTP/2 stream was reset (see HttpExchangeSummary.reset); absent otherwise */
  reset?: StreamReset;
  /** HTTP/1: what of its request or response could not be read (see HttpExchangeSummary.malformed); absent otherwise */
  malformed?: string;
  /** With details: what the HAR export needs of the request and of the response beyond their heads; absent: not seen */
  requestInfo?: HttpMessageInfo;
  responseInfo?: HttpMessageInfo;
}

/** One message of an exchange: its version, its times, and how much of its body the exchange kept. */
export interface HttpMessageInfo {
  /** "HTTP/1.0", "HTTP/1.1" (as its start line says), "HTTP/2", "HTTP/3"; null when its parser did not say */
  version: string | null;
  /** HTTP/1 responses: the status line's reason phrase, "" when it has none */
  reason?: string;
  /** ms since the epoch: its first bytes, and the last ones read of it (its end, or as far as it came) */
  firstAt: number;
  lastAt: number;
  /** body bytes read (after de-chunking, before any content decoding); of a truncated body, those read */
  bodySize: number;
  /** the body did not all come (a gap, the capture's end) or ran past the 64 KiB a message keeps */
  bodyTruncated?: true;
  /**
   * Where the body's bytes are: 'text': the exchange's text (requestBody/responseBody) is all the bytes kept, as UTF-8;
   * 'head': the text is their first 16 KiB; 'base64': bodyBase64 holds them (binary, not UTF-8, or content-encoded);
   * 'none': not kept (a binary body past its first 512 bytes, or the flow's body budget used): the text only describes it
   */
  body: 'text' | 'head' | 'base64' | 'none';
  bodyBase64?: string;
}

export interface FlowDetail {
  flow: Flow;
  exchanges: HttpExchangeDetail[];
  /** Hex of the first bytes of each direction (client→server, server→client) */
  clientBytesHex: string;
  serverBytesHex: string;
}

/** One turn of a followed stream: consecutive bytes of one direction. */
export interface StreamChunk {
  dir: 'c2s' | 's2c';
  /** ms since the epoch of its first packet or record */
  ts: number;
  /** the bytes, hex */
  hex: string;
  /**
   * true: plain text on the wire before the connection switched to TLS in place (STARTTLS, a proxy's CONNECT, a
   * database's TLS request), shown before the decrypted records
   */
  beforeTls?: true;
}

/** "Follow stream" (flowStream): a flow's payload in order, its turns apart. */
export interface FlowStream {
  chunks: StreamChunk[];
  /** 'decrypted': the TLS hooks' plaintext records; 'wire': the packets' payload; null: no payload at all */
  source: 'decrypted' | 'wire' | null;
  /** bytes in chunks */
  bytes: number;
  /** the flow carried more than the limit (256 KiB) */
  truncated: boolean;
}

/** One packet of a flow (flowPackets), or one decrypted record of its TLS hooks, as a packet list shows it. */
export interface FlowPacketRow {
  /** its number among the flow's packets and records, from 1 */
  n: number;
  /** ms since the epoch */
  ts: number;
  dir: 'c2s' | 's2c';
  /** 'record': a TLS hook's decrypted record (its plaintext), not a packet */
  kind: 'packet' | 'record';
  /** bytes on the wire (the packet's original length); a record's plaintext bytes */
  len: number;
  /** transport payload bytes (by the IP header, also when the capture cut the packet); a record's plaintext bytes */
  payload: number;
  /** TCP flags as Wireshark names them ("SYN, ACK"); null for UDP and records */
  flags: string | null;
  /** TCP sequence and acknowledgment numbers relative to each direction's first (Wireshark's); null for UDP and records */
  seq: number | null;
  ack: number | null;
  /** what is notable: "retransmission", "keep-alive", "previous segment not captured"; for a record, who decrypted it */
  info: string;
  /** where its block is: the session's capture file (its index) and the block's offset in it (see packetBytes) */
  file: number;
  offset: number;
}

/**
 * The TLS libraries view (libraries): per library and side, the rows `tapscope libraries --json` prints (`sides`); and
 * per library and in all, each flow counted once whichever side(s) its libraries are on (LibraryTotals), the counts
 * the flows a library filter lists agree with.
 */
export interface LibraryBreakdown extends LibraryTotals {
  sides: LibraryBreakdownRow[];
}

/** A flow's packet list (flowPackets): its first rows, and how many packets and records it has in all. */
export interface FlowPackets {
  rows: FlowPacketRow[];
  /** packets and records */
  total: number;
  /** of `total`, the TLS hooks' decrypted records (not packets: the flow's `packets` does not count them) */
  records: number;
  /** the flow has more than the rows given (10,000) */
  truncated: boolean;
}

export interface FlowQuery {
  sessionId: string;
  filter?: string;
  offset: number;
  limit: number;
  sort?: { field: 'firstSeen' | 'bytes' | 'packets'; dir: 'asc' | 'desc' };
}

export interface ApiCalls {
  listTargets(): Promise<TargetChoice[]>;
  /** The target's nodes; with `check`, each with what stands in the way of capturing on it (NodeInfo.check). */
  listNodes(req: { target: string; check?: boolean }): Promise<NodeInfo[]>;
  /** The pods of a Kubernetes target, to capture only some of them (startCapture's `pods`); none for other targets. */
  listPods(req: { target: string }): Promise<PodChoice[]>;
  /** `captureFilter`: tcpdump syntax, applied on each node (CaptureOptions.filter); a bad one fails each node's helper with libpcap's message. */
  /** `pods` (`NAMESPACE/NAME`, Kubernetes targets): capture only them, on their nodes (CaptureOptions.pods). */
  /**
   * `nodeKeyLogs`: TLS key logs (SSLKEYLOGFILE, absolute paths on each node) the helper follows there while it captures
   * (CaptureOptions.keyLogs); the TLS connections whose clients write their secrets into them are decrypted.
   */
  startCapture(req: { target: string; nodes?: string[]; mode: CaptureMode; ifaces: string[]; name?: string; captureFilter?: string; pods?: string[]; nodeKeyLogs?: string[] }): Promise<SessionSummary>;
  stopCapture(req: { sessionId: string }): Promise<SessionSummary>;
  listSessions(): Promise<SessionSummary[]>;
  openSession(req: { sessionId: string }): Promise<SessionSummary>;
  openFile(req: { path: string }): Promise<SessionSummary>;
  /** Adds a TLS key log file (SSLKEYLOGFILE lines) to a saved session, which is analyzed again with it. */
  addKeyLog(req: { sessionId: string; path: string }): Promise<{ session: SessionSummary; secrets: number; decrypted: number }>;
  renameSession(req: { sessionId: string; name: string }): Promise<SessionSummary>;
  deleteSession(req: { sessionId: string }): Promise<void>;
  queryFlows(req: FlowQuery): Promise<{ total: number; rows: Flow[] }>;
  flowDetail(req: { sessionId: string; flowId: string }): Promise<FlowDetail>;
  /** "Follow stream": the flow's payload in order, decrypted when its hooks captured it (reads the capture again) */
  flowStream(req: { sessionId: string; flowId: string }): Promise<FlowStream>;
  /** The flow's packets (and decrypted records) as a packet list, with TCP's relative numbers and notes (reads the capture again) */
  flowPackets(req: { sessionId: string; flowId: string }): Promise<FlowPackets>;
  /** One row's bytes (a FlowPacketRow's file and offset): the packet as captured, or a decrypted record's plaintext */
  packetBytes(req: { sessionId: string; file: number; offset: number; record?: boolean }): Promise<{ hex: string; length: number }>;
  /** The session's TCP flows by how their connection went (flow.tcp.state): kept by the analyzer, no flow is read */
  tcpStates(req: { sessionId: string }): Promise<Record<TcpState, number>>;
  /** The session's TLS flows (those `filter` matches) by library: per side, and each flow once (LibraryBreakdown) */
  libraries(req: { sessionId: string; filter?: string }): Promise<LibraryBreakdown>;
  checkFilter(req: { filter: string }): Promise<{ ok: true } | { ok: false; message: string; position: number }>;
  /** A capture filter (tcpdump syntax) compiled by this machine's helper; ok null: not checked here (see capture-filter.ts). */
  checkCaptureFilter(req: { filter: string }): Promise<CaptureFilterCheck>;
  exportSession(req: { sessionId: string; format: 'pcapng' | 'har' | 'json'; path?: string; filter?: string; includeSecrets?: boolean }): Promise<{ path: string; bytes: number }>;
  /**
   * Opens the session in Wireshark on this machine: a live one as a growing capture from its first packet, a saved one as
   * a pcapng export; with a filter, the flows it accepts as they are now (a pcapng export), e.g. one flow by its id.
   */
  openInWireshark(req: { sessionId: string; filter?: string }): Promise<{ live: boolean }>;
  openShell(req: { target: string | 'local-pty'; node?: string; cols: number; rows: number }): Promise<{ shellId: string }>;
  shellInput(req: { shellId: string; data: string }): Promise<void>;
  shellResize(req: { shellId: string; cols: number; rows: number }): Promise<void>;
  shellClose(req: { shellId: string }): Promise<void>;
  answerPrompt(req: { promptId: string; answer: string | boolean | null }): Promise<void>;
}

export interface ApiEvents {
  nodeStatus: { sessionId: string; status: NodeStatus };
  /** `version` changes whenever anything of the capture changed (a packet, a record), also of flows already listed */
  counters: { sessionId: string; nodes: NodeCounters[]; flows: number; version: number };
  sessionChanged: SessionSummary;
  prompt: { promptId: string; prompt: Prompt };
  shellData: { shellId: string; data: string };
  shellExit: { shellId: string; code: number | null };
  exportProgress: { sessionId: string; done: number; total: number };
}

export type ApiCallName = keyof ApiCalls;
export type ApiEventName = keyof ApiEvents;
