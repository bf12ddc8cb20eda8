// zod schemas for the request of every API call. Both boundaries validate with them: the client before
// sending (a renderer bug fails where it is made) and the carrier's receiving side (main process or
// web-mode server) before calling the core, because the renderer is not trusted.
import { z } from 'zod';
import { TapscopeError } from '../errors.js';
import { MAX_NODE_KEY_LOGS } from '../targets/target.js';
import type { ApiCallName, ApiCalls } from './contract.js';

const id = z.string().min(1).max(512);
const mode = z.enum(['auto', 'ebpf', 'afpacket']);
const shortText = z.string().max(4096);

export const requestSchemas = {
  listTargets: z.undefined(),
  listNodes: z.strictObject({ target: id, check: z.boolean().optional() }),
  listPods: z.strictObject({ target: id }),
  startCapture: z.strictObject({
    target: id,
    nodes: z.array(id).max(10_000).optional(),
    mode,
    ifaces: z.array(z.string().min(1).max(64)).max(256),
    name: z.string().max(256).optional(),
    captureFilter: z.string().max(1024).optional(),
    pods: z.array(z.string().min(1).max(512)).max(256).optional(),
    nodeKeyLogs: z.array(z.string().min(1).max(4096)).max(MAX_NODE_KEY_LOGS).optional(),
  }),
  stopCapture: z.strictObject({ sessionId: id }),
  listSessions: z.undefined(),
  openSession: z.strictObject({ sessionId: id }),
  openFile: z.strictObject({ path: z.string().min(1).max(4096) }),
  addKeyLog: z.strictObject({ sessionId: id, path: z.string().min(1).max(4096) }),
  renameSession: z.strictObject({ sessionId: id, name: z.string().min(1).max(256) }),
  deleteSession: z.strictObject({ sessionId: id }),
  queryFlows: z.strictObject({
    sessionId: id,
    filter: shortText.optional(),
    offset: z.number().int().min(0),
    limit: z.number().int().min(0).max(10_000),
    sort: z.strictObject({ field: z.enum(['firstSeen', 'bytes', 'packets']), dir: z.enum(['asc', 'desc']) }).optional(),
  }),
  flowDetail: z.strictObject({ sessionId: id, flowId: id }),
  flowStream: z.strictObject({ sessionId: id, flowId: id }),
  flowPackets: z.strictObject({ sessionId: id, flowId: id }),
  tcpStates: z.strictObject({ sessionId: id }),
  packetBytes: z.strictObject({ sessionId: id, file: z.number().int().min(0), offset: z.number().int().min(0), record: z.boolean().optional() }),
  libraries: z.strictObject({ sessionId: id, filter: shortText.optional() }),
  checkFilter: z.strictObject({ filter: shortText }),
  checkCaptureFilter: z.strictObject({ filter: z.string().max(1024) }),
  exportSession: z.strictObject({
    sessionId: id,
    format: z.enum(['pcapng', 'har', 'json']),
    path: z.string().min(1).max(4096).optional(),
    filter: shortText.optional(),
    includeSecrets: z.boolean().optional(),
  }),
  openInWireshark: z.strictObject({ sessionId: id, filter: shortText.optional() }),
  openShell: z.strictObject({
    target: id,
    node: id.optional(),
    cols: z.number().int().min(1).max(1000),
    rows: z.number().int().min(1).max(1000),
  }),
  shellInput: z.strictObject({ shellId: id, data: z.string().max(1 << 20) }),
  shellResize: z.strictObject({ shellId: id, cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) }),
  shellClose: z.strictObject({ shellId: id }),
  answerPrompt: z.strictObject({ promptId: id, answer: z.union([z.string().max(4096), z.boolean(), z.null()]) }),
} satisfies Record<ApiCallName, z.ZodType>;

export type ApiRequest<C extends ApiCallName> = Parameters<ApiCalls[C]>[0];

/** Validates one call's request; throws TapscopeError E_USAGE naming the call and the bad field. */
export function parseRequest<C extends ApiCallName>(call: C, req: unknown): ApiRequest<C> {
  const schema: z.ZodType = requestSchemas[call];
  const res = schema.safeParse(req);
  if (!res.success) {
    const issue = res.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new TapscopeError('E_USAGE', `Invalid request for ${call}${where}: ${issue?.message ?? 'malformed'}`);
  }
  return res.data as ApiRequest<C>;
}
