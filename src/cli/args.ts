// Command-line parsing for `tapscope`: turns argv into one typed command, or a usage TapscopeError.
// Pure (no I/O) so it can be table-tested.
import { parseArgs } from 'node:util';
import { TapscopeError } from '../errors.js';
import type { CaptureMode } from '../targets/target.js';

export const USAGE = `Usage:
  tapscope capture [--target local|ssh://[user@]host[:port]|k8s://CONTEXT[/NODE]] [--mode auto|ebpf|afpacket]
                   [--iface NAME]... [--duration SECONDS] [--capture-filter EXPR] [--keylog KEYS]... [--node-keylog PATH]...
                   --out FILE.pcapng
                   [--accept-new-host-key] [--pod NAMESPACE/NAME]... [--image IMAGE] [--namespace NS] [--kubeconfig PATH]     (Kubernetes targets)
  tapscope check [--target local|ssh://...|k8s://CONTEXT[/NODE]] [--json] [--accept-new-host-key]
                 [--image IMAGE] [--namespace NS] [--kubeconfig PATH]  (what stands in the way of capturing)
  tapscope flows FILE [--json] [--filter|-Y EXPR] [--keylog KEYS]...
  tapscope libraries FILE [--json] [--keylog KEYS]...
  tapscope follow FILE FLOW_ID [--hex]          (a flow's payload in order; ids from flows --json)
  tapscope packets FILE FLOW_ID [--json]        (a flow's packets, as Wireshark's packet list shows a TCP stream)
  tapscope export FILE --format pcapng|har|json --out PATH [--filter|-Y EXPR] [--include-secrets] [--keylog KEYS]...
  tapscope sessions [--json]
  tapscope serve [--port N] [SESSION]
  tapscope clean --target k8s://CONTEXT [--kubeconfig PATH] [--force]
  tapscope help filter                          (the --filter language and its fields)
  tapscope --help | --version

FILE is a pcapng/pcap path, - for standard input (\`tcpdump -w - | tapscope flows -\`), or a session id (see
\`tapscope sessions\`).
capture --out - writes the capture to standard output as it arrives (\`... --out - | wireshark -k -i -\`), the
nodes merged into one pcapng section; it is saved as a session too, and a slow reader gets all of it, after the
capture has stopped if need be. --capture-filter takes tcpdump syntax ('tcp port 443 or host 10.0.0.5'), applied on
each node to the IP packets and to the decrypted records (by their connection's addresses and ports); what it
leaves out is not captured. export --out - writes to standard output.
--keylog KEYS reads TLS secrets in the SSLKEYLOGFILE format (curl, browsers, Python, Node, Go, GnuTLS, NSS, Java
agents write it) and decrypts the TLS connections it has secrets for (TLS 1.3; TLS 1.2 AES-GCM, ChaCha20, AES-CBC;
TLS 1.0 and 1.1 AES-CBC); a capture's own decryption secrets block is used too. export --format pcapng
--include-secrets embeds the secrets of the exported connections, so that Wireshark decrypts them as well.
capture --keylog follows the key log while the capture runs (the clients write it as they connect) and, when the
capture stops, writes the secrets of its connections into FILE.pcapng: Wireshark and \`tapscope flows\` then
decrypt it with no key log given. KEYS is a file on this machine; --node-keylog PATH is a key log on each captured
node (an absolute path there, e.g. the SSLKEYLOGFILE of a service on it), followed there by the capture helper from
its current end: the lines its clients write go into the capture as it runs.
Secrets (Authorization, Cookie, Set-Cookie, Proxy-Authorization values) are redacted in exports unless --include-secrets.`;

export type Command =
  /** topic 'filter': the filter language and its fields */
  | { cmd: 'help'; topic?: 'filter' }
  | { cmd: 'version' }
  | {
    cmd: 'capture'; target: string; mode: CaptureMode; ifaces: string[]; duration: number | undefined; out: string; acceptNewHostKey: boolean;
    /** key logs followed during the capture; their secrets for its connections are written into it at the end */
    keylogs: string[];
    /** key logs on the captured nodes (absolute paths there), followed by the helper on each */
    nodeKeylogs: string[];
    /** tcpdump syntax; undefined captures everything */
    captureFilter: string | undefined;
    /** NAMESPACE/NAME (Kubernetes targets): only these pods, on their nodes */
    pods: string[];
    k8s: { image?: string; namespace?: string; kubeconfig?: string };
  }
  | { cmd: 'check'; target: string; json: boolean; acceptNewHostKey: boolean; k8s: { image?: string; namespace?: string; kubeconfig?: string } }
  | { cmd: 'flows'; file: string; json: boolean; filter: string | undefined; keylogs: string[] }
  | { cmd: 'libraries'; file: string; json: boolean; keylogs: string[] }
  | { cmd: 'follow'; file: string; flowId: string; hex: boolean }
  | { cmd: 'packets'; file: string; flowId: string; json: boolean }
  | { cmd: 'export'; file: string; format: 'pcapng' | 'har' | 'json'; out: string; filter: string | undefined; includeSecrets: boolean; keylogs: string[] }
  | { cmd: 'sessions'; json: boolean }
  | { cmd: 'serve'; port: number | undefined; session: string | undefined }
  | { cmd: 'clean'; target: string; kubeconfig: string | undefined; force: boolean };

const KEYLOG = { type: 'string', multiple: true } as const;
/** --filter, or -Y as tshark's display filter option is spelled */
const FILTER = { type: 'string', short: 'Y' } as const;

function keylogs(values: Record<string, unknown>): string[] {
  return (values.keylog as string[] | undefined) ?? [];
}

function usage(message: string): TapscopeError {
  return new TapscopeError('E_USAGE', `${message}; see tapscope --help`);
}

type OptSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

function parse(args: string[], options: OptSpec, maxPositionals: number, cmd: string): { values: Record<string, unknown>; positionals: string[] } {
  let res: { values: Record<string, unknown>; positionals: string[] };
  try {
    res = parseArgs({ args: negativeValuesJoined(args, options), options, allowPositionals: true, strict: true }) as { values: Record<string, unknown>; positionals: string[] };
  } catch (e) {
    const lines = e instanceof Error ? e.message.split('\n') : [String(e)];
    // parseArgs: "Option '--out' argument is ambiguous." and, lines later, "... use '--out=-XYZ'."
    const ambiguous = /^Option '([^']+)' argument is ambiguous/.exec(lines[0] ?? '');
    if (ambiguous) {
      const spelled = /use '([^'=]+)=-XYZ'/.exec(lines.join(' '))?.[1] ?? ambiguous[1];
      throw usage(`${cmd}: ${ambiguous[1]} needs a value; a value that starts with a dash is written ${spelled}=-VALUE`);
    }
    throw usage(`${cmd}: ${(lines[0] ?? '').replace(/\. To specify a positional argument.*$/, '')}`);
  }
  if (res.positionals.length > maxPositionals) throw usage(`${cmd}: unexpected argument '${res.positionals[maxPositionals]}'`);
  return res;
}

/**
 * `--duration -1` as `--duration=-1`: a negative number after an option that takes a value is that value (parseArgs
 * takes it for an option and calls the argument ambiguous), so that the value's own check says what is wrong with it.
 */
function negativeValuesJoined(args: string[], options: OptSpec): string[] {
  const byShort = new Map(Object.entries(options).filter(([, o]) => o.short).map(([name, o]) => [`-${o.short}`, name]));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return [...out, ...args.slice(i)];
    const name = a.startsWith('--') ? a.slice(2) : byShort.get(a);
    const next = args[i + 1];
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * The longest --duration, in seconds: 100 years. why: the helper counts a capture's end in nanoseconds in 64 bits
 * (2^64 ns is about 584 years) and refuses more than this too; a longer one was cut to a moment by the overflow.
 */
export const MAX_DURATION_S = 100 * 365 * 24 * 3600;

function positiveNumber(v: string | undefined, what: string, cmd: string, max: number, maxText: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw usage(`${cmd}: ${what} must be a positive number, got '${v}'`);
  if (n > max) throw usage(`${cmd}: ${what} must be at most ${maxText}, got '${v}'`);
  return n;
}

/** A --target that was given empty: refused (taken as local, it would capture where the user did not ask). */
function target(v: unknown, cmd: string): string {
  const t = str(v);
  if (t !== undefined && !t.trim()) throw usage(`${cmd}: --target needs a value: local, ssh://[user@]host[:port] or k8s://CONTEXT[/NODE]`);
  return t ?? 'local';
}

/** --image/--namespace/--kubeconfig only mean something for a Kubernetes target: refuse them elsewhere. */
function k8sOptions(target: string, o: { image?: string; namespace?: string; kubeconfig?: string }, cmd: string): { image?: string; namespace?: string; kubeconfig?: string } {
  const given = Object.entries(o).filter(([, v]) => v !== undefined);
  if (given.length && !target.startsWith('k8s://')) throw usage(`${cmd}: --${given.map(([k]) => k).join(', --')} only applies to k8s:// targets`);
  return Object.fromEntries(given);
}

export function parseCommand(argv: string[]): Command {
  const [first, ...rest] = argv;
  if (first === 'help' && rest[0] === 'filter') return { cmd: 'help', topic: 'filter' };
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') return { cmd: 'help' };
  if (first === '--version' || first === '-V' || first === 'version') return { cmd: 'version' };
  if (rest.includes('--help') || rest.includes('-h')) return { cmd: 'help' };
  switch (first) {
    case 'capture': {
      const { values } = parse(rest, {
        target: { type: 'string' }, mode: { type: 'string' }, iface: { type: 'string', multiple: true }, duration: { type: 'string' },
        out: { type: 'string' }, 'accept-new-host-key': { type: 'boolean' }, 'capture-filter': { type: 'string' }, pod: { type: 'string', multiple: true },
        image: { type: 'string' }, namespace: { type: 'string' }, kubeconfig: { type: 'string' }, keylog: KEYLOG,
        'node-keylog': { type: 'string', multiple: true },
      }, 0, 'capture');
      const captureFilter = str(values['capture-filter']);
      if (captureFilter !== undefined && !captureFilter.trim()) throw usage("capture: --capture-filter needs an expression (tcpdump syntax, e.g. 'tcp port 443')");
      const pods = (values.pod as string[] | undefined) ?? [];
      if (pods.length > 0 && !(str(values.target) ?? '').startsWith('k8s://')) throw usage('capture: --pod needs a Kubernetes target (--target k8s://CONTEXT)');
      const mode = str(values.mode) ?? 'auto';
      if (mode !== 'auto' && mode !== 'ebpf' && mode !== 'afpacket') throw usage(`capture: --mode must be auto, ebpf or afpacket, got '${mode}'`);
      const out = str(values.out);
      if (!out) throw usage('capture: --out FILE.pcapng is required');
      const nodeKeylogs = (values['node-keylog'] as string[] | undefined) ?? [];
      for (const p of nodeKeylogs) {
        if (!p.startsWith('/')) throw usage(`capture: --node-keylog takes an absolute path on the node, got '${p}'`);
      }
      const t = target(values.target, 'capture');
      const ifaces = (values.iface as string[] | undefined) ?? [];
      if (ifaces.some((i) => !i.trim())) throw usage('capture: --iface needs an interface name (without --iface: every interface)');
      return {
        cmd: 'capture', target: t, mode, ifaces,
        duration: positiveNumber(str(values.duration), '--duration', 'capture', MAX_DURATION_S, `${MAX_DURATION_S} seconds (100 years)`), out, acceptNewHostKey: values['accept-new-host-key'] === true,
        captureFilter: captureFilter?.trim(), pods, keylogs: keylogs(values), nodeKeylogs,
        k8s: k8sOptions(t, { image: str(values.image), namespace: str(values.namespace), kubeconfig: str(values.kubeconfig) }, 'capture'),
      };
    }
    case 'check': {
      const { values } = parse(rest, {
        target: { type: 'string' }, json: { type: 'boolean' }, 'accept-new-host-key': { type: 'boolean' },
        image: { type: 'string' }, namespace: { type: 'string' }, kubeconfig: { type: 'string' },
      }, 0, 'check');
      const t = target(values.target, 'check');
      return {
        cmd: 'check', target: t, json: values.json === true, acceptNewHostKey: values['accept-new-host-key'] === true,
        k8s: k8sOptions(t, { image: str(values.image), namespace: str(values.namespace), kubeconfig: str(values.kubeconfig) }, 'check'),
      };
    }
    case 'flows': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' }, filter: FILTER, keylog: KEYLOG }, 1, 'flows');
      if (!positionals[0]) throw usage('flows: FILE is required');
      return { cmd: 'flows', file: positionals[0], json: values.json === true, filter: str(values.filter), keylogs: keylogs(values) };
    }
    case 'libraries': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' }, keylog: KEYLOG }, 1, 'libraries');
      if (!positionals[0]) throw usage('libraries: FILE is required');
      return { cmd: 'libraries', file: positionals[0], json: values.json === true, keylogs: keylogs(values) };
    }
    case 'follow': {
      const { values, positionals } = parse(rest, { hex: { type: 'boolean' } }, 2, 'follow');
      if (!positionals[0] || !positionals[1]) throw usage('follow: FILE and FLOW_ID are required (flow ids: tapscope flows FILE --json)');
      return { cmd: 'follow', file: positionals[0], flowId: positionals[1], hex: values.hex === true };
    }
    case 'packets': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } }, 2, 'packets');
      if (!positionals[0] || !positionals[1]) throw usage('packets: FILE and FLOW_ID are required (flow ids: tapscope flows FILE --json)');
      return { cmd: 'packets', file: positionals[0], flowId: positionals[1], json: values.json === true };
    }
    case 'export': {
      const { values, positionals } = parse(rest, {
        format: { type: 'string' }, out: { type: 'string' }, filter: FILTER, 'include-secrets': { type: 'boolean' }, keylog: KEYLOG,
      }, 1, 'export');
      if (!positionals[0]) throw usage('export: FILE is required');
      const format = str(values.format);
      if (format !== 'pcapng' && format !== 'har' && format !== 'json') throw usage(`export: --format must be pcapng, har or json${format ? `, got '${format}'` : ''}`);
      const out = str(values.out);
      if (!out) throw usage('export: --out PATH is required');
      return { cmd: 'export', file: positionals[0], format, out, filter: str(values.filter), includeSecrets: values['include-secrets'] === true, keylogs: keylogs(values) };
    }
    case 'sessions': {
      const { values } = parse(rest, { json: { type: 'boolean' } }, 0, 'sessions');
      return { cmd: 'sessions', json: values.json === true };
    }
    case 'serve': {
      const { values, positionals } = parse(rest, { port: { type: 'string' } }, 1, 'serve');
      const port = str(values.port);
      const n = port === undefined ? undefined : Number(port);
      if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > 65535)) throw usage(`serve: --port must be 0-65535, got '${port}'`);
      return { cmd: 'serve', port: n, session: positionals[0] };
    }
    case 'clean': {
      const { values } = parse(rest, { target: { type: 'string' }, kubeconfig: { type: 'string' }, force: { type: 'boolean' } }, 0, 'clean');
      const target = str(values.target);
      if (!target || !target.startsWith('k8s://')) throw usage('clean: --target k8s://CONTEXT is required');
      return { cmd: 'clean', target, kubeconfig: str(values.kubeconfig), force: values.force === true };
    }
    default:
      throw usage(`unknown command '${first}'`);
  }
}
