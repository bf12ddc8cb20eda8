// Benchmark of the capture helper against tcpdump, measured in the same run on the same traffic:
// 1. iperf3 over a veth pair between two private namespaces, captured in turn by tcpdump -B N, the helper
//    --mode afpacket --ring-mb N and --mode ebpf --ring-mb N (same kernel buffer; all writing to /dev/null),
//    in interleaved rounds: drops as a fraction of packets offered, CPU seconds per GB carried, max RSS;
//    medians over rounds and helper/tcpdump ratios taken within each round.
// 2. TLS latency: sequential keep-alive HTTPS requests (Python, OpenSSL) in three configurations measured
//    in the same run, interleaved in rounds: no helper, helper --mode afpacket (packets only) and helper
//    --mode ebpf (packets + TLS hooks). ebpf/afpacket is the cost of the hooks; ebpf/none the whole helper.
//    A second figure, with the same helpers: requests each on a new connection (curl, full handshake).
// Prints figures and ratios; never gates on absolute times. Needs root. Run: npx tsx test/bench/helper-bench.ts
// 3. The capture filter: the same iperf3 traffic with a filter that leaves all of it out, tcpdump with the filter
//    against the helper running it in the kernel and, with TAPSCOPE_FILTER_USERSPACE, in userspace only.
// 4. The UDP watch (native/README.md, "Cost of the UDP watch"): an iperf3 UDP flood of 200-byte datagrams captured
//    as in 1 by tcpdump and the helper's two modes with and without the watch (TAPSCOPE_UDP_WATCH=0): CPU per GB,
//    watch on/off; then 400 datagrams a second (below the watch's flood guard), the helper's CPU per second.
// Knobs: BENCH_QUICK=1 (latency only, 3 rounds x 200 requests), BENCH_PART=throughput|filter|latency|udp|all,
// BENCH_ROUNDS, BENCH_REQUESTS, BENCH_NEW_CONN, BENCH_SECONDS, BENCH_HELPER_ARGS (extra helper flags),
// BENCH_BASELINE=/path/to/older/tapscope-helper (adds its --mode ebpf as a fourth, interleaved latency configuration,
// and its afpacket/ebpf modes as throughput capturers), BENCH_RING_MB (default 32), BENCH_TP_ROUNDS (default 3, also
// the UDP part's rounds), BENCH_UDP_RATE (iperf3 -b of the UDP flood: default 160M, 100,000 datagrams/s; 0 as fast as it can).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createLab, startHttpsServers, uniquePrefix, type Lab } from '../lib/lab.js';
import { HELPER } from '../lib/helper-process.js';

const QUICK = process.env.BENCH_QUICK === '1';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? (QUICK ? 200 : 500));
const NEW_CONN = Number(process.env.BENCH_NEW_CONN ?? (QUICK ? 100 : 200));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 3 : 5));
const PART = process.env.BENCH_PART ?? (QUICK ? 'latency' : 'all');
const HELPER_ARGS = (process.env.BENCH_HELPER_ARGS ?? '').split(' ').filter(Boolean);
const BASELINE = process.env.BENCH_BASELINE;
const RING_MB = Number(process.env.BENCH_RING_MB ?? 32);
const ROUNDS_TP = Number(process.env.BENCH_TP_ROUNDS ?? 3);

/** iperf3 in UDP mode: target bitrate (iperf3 -b, "0" for as fast as it can) and datagram payload size (-l). */
interface Udp { bitrate: string; len: number }
/** What iperf3 carried. UDP only: datagrams a second the client sent and the share the server never got. */
interface Iperf { gbps: number; udp?: { sentPps: number; receivedGbps: number; lostPct: number } }
interface Result extends Iperf { name: string; packets: number; drops: number; cpuS: number; startCpuS: number; maxRssMb: number; wallS: number }

function procUsage(pid: number): { cpuS: number; maxRssMb: number } {
  // why the on-CPU time of /proc/PID/task/*/schedstat (ns) rather than utime + stime (10 ms ticks): below the UDP
  // watch's flood guard the helper uses a few ms of CPU a second, a handful of ticks in a run
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuS: ns / 1e9, maxRssMb: Number(hwm?.[1] ?? 0) / 1024 };
}

function collect(child: ChildProcess): { text: () => string; exited: Promise<number | null> } {
  let text = '';
  child.stdout?.on('data', (d: Buffer) => { text += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { text += d.toString(); });
  return { text: () => text, exited: new Promise((r) => child.on('exit', (c) => r(c))) };
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function iperf(lab: Lab, udp?: Udp): Promise<Iperf> {
  const server = lab.spawnIn(lab.serverNs, 'iperf3', ['-s', '-1', '-B', lab.serverIp, '--forceflush']);
  const s = collect(server);
  await waitFor(() => s.text().includes('Server listening'), 10_000, 'iperf3 server');
  const r = await lab.execIn(lab.nodeNs, 'iperf3', ['-c', lab.serverIp, '-t', String(SECONDS), '-J',
    ...(udp ? ['-u', '-b', udp.bitrate, '-l', String(udp.len)] : [])], { timeoutMs: (SECONDS + 30) * 1000 });
  await s.exited;
  type Sum = { bits_per_second: number; seconds: number; packets?: number; lost_percent?: number };
  const j = JSON.parse(r.stdout) as { end: { sum_sent: Sum; sum_received: Sum } };
  if (!udp) return { gbps: j.end.sum_received.bits_per_second / 1e9 };
  // why the sender's side for UDP (TCP: the receiver's, the same bytes): the capture, in the client's namespace,
  // sees every datagram the client sent, and the server's namespace drops a share of a flood (its backlog or the
  // server's socket buffer full: 0-45 % from run to run on the 2-core lab VM) after the capture point; CPU per GB
  // received would count those datagrams as free of cost (checked: tcpdump captured 573,523 packets of a run whose
  // client sent 573,620 datagrams and whose server got 568,535)
  const sent = j.end.sum_sent, got = j.end.sum_received;
  return { gbps: sent.bits_per_second / 1e9,
    udp: { sentPps: (sent.packets ?? NaN) / sent.seconds, receivedGbps: got.bits_per_second / 1e9, lostPct: got.lost_percent ?? NaN } };
}

async function runCapture(lab: Lab, name: string, argv: string[], parse: (out: string) => { packets: number; drops: number }, ready: (out: string) => boolean,
  udp?: Udp): Promise<Result> {
  const child = spawn('ip', ['netns', 'exec', lab.nodeNs, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  const c = collect(child);
  await waitFor(() => ready(c.text()), 30_000, `${name} start`);
  // why: start-up work (the helper's eBPF mode verifies its programs, parses kernel BTF, hooks the TLS
  // libraries of running processes: ~0.2 s of CPU) is a fixed cost; reported on its own so CPU per GB
  // compares the capture itself, and also included in a second figure
  const startCpuS = procUsage(child.pid!).cpuS;
  const t0 = performance.now();
  const carried = await iperf(lab, udp);
  const wallS = (performance.now() - t0) / 1000;
  const usage = procUsage(child.pid!);
  child.kill('SIGTERM');
  await c.exited;
  return { name, ...parse(c.text()), ...usage, startCpuS, ...carried, wallS };
}

const helperStats = (out: string) => ({
  packets: Number(/stopped: packets=(\d+)/.exec(out)?.[1] ?? NaN),
  drops: Number(/ringDrops=(\d+)/.exec(out)?.[1] ?? NaN),
});

/** Median latency in microseconds of REQUESTS sequential requests on one keep-alive connection. */
// why the median request rather than the mean: other work on the shared cores stalls a few requests by
// milliseconds, which moves a mean by more than the hooks cost; a fixed per-request cost moves the median
async function tlsLatency(lab: Lab, ca: string): Promise<number> {
  const script = `
import http.client, ssl, time, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
c = http.client.HTTPSConnection(sys.argv[2], 443, context=ctx)
c.connect()
n = int(sys.argv[3])
ts = []
for i in range(n):
    t = time.perf_counter()
    c.request('GET', '/bench/%d' % i, headers={'Host': 'bench.tapscope.test'})
    c.getresponse().read()
    ts.append(time.perf_counter() - t)
ts.sort()
print(ts[n // 2] * 1e6)
`;
  const r = await lab.execIn(lab.nodeNs, '/usr/bin/python3', ['-c', script, ca, 'bench.tapscope.test', String(REQUESTS)], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`TLS latency client failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** Median latency in microseconds of NEW_CONN requests made by one curl, each on a new connection (TCP and a
 * full TLS handshake, no session resumption: `Connection: close`, --no-sessionid). curl uses libssl's
 * SSL_read/SSL_write (python the _ex functions). */
async function newConnLatency(lab: Lab, ca: string): Promise<number> {
  const config = Array.from({ length: NEW_CONN }, (_, i) => `url = "https://bench.tapscope.test/new/${i}"\noutput = "/dev/null"`).join('\n');
  const r = await lab.execIn(lab.nodeNs, 'curl', ['-sS', '--http1.1', '--no-sessionid', '--cacert', ca, '--resolve', `bench.tapscope.test:443:${lab.serverIp}`,
    '-H', 'Connection: close', '-w', '%{time_total}\n', '-K', '-'], { input: config + '\n', timeoutMs: 300_000 });
  const times = r.stdout.split('\n').filter(Boolean).map(Number);
  if (r.code !== 0 || times.length !== NEW_CONN) throw new Error(`new-connection latency client failed (${times.length} of ${NEW_CONN}): ${r.stderr}`);
  return median(times) * 1e6;
}

const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

interface Capturer { name: string; argv: string[]; parse: typeof helperStats; ready: (out: string) => boolean }

const tcpdumpStats = (out: string) => ({ packets: Number(/(\d+) packets captured/.exec(out)?.[1] ?? NaN),
  drops: Number(/(\d+) packets dropped by kernel/.exec(out)?.[1] ?? NaN) });
// why: like for like: tcpdump's kernel buffer (-B, KiB) and the helper's ring (--ring-mb) are the same size
const tcpdump = (filter: string[] = []): Capturer => ({
  name: `tcpdump -B ${RING_MB}M`, argv: ['tcpdump', '-i', 'any', '-B', String(RING_MB * 1024), '-w', '/dev/null', ...filter], parse: tcpdumpStats,
  ready: (out) => out.includes('listening on'),
});
const helper = (name: string, bin: string, mode: string, args: string[] = [], env: string[] = []): Capturer => ({
  name, argv: [...(env.length ? ['env', ...env] : []), bin, '--mode', mode, '--ring-mb', String(RING_MB), ...args, ...HELPER_ARGS],
  parse: helperStats, ready: (out: string) => out.includes('tapscope-helper: capturing'),
});

async function throughput(lab: Lab): Promise<void> {
  await compareCapturers(lab, 'iperf3 over veth', [
    tcpdump(),
    ...['afpacket', 'ebpf'].map((mode) => helper(`helper ${mode}`, HELPER, mode)),
    ...(BASELINE ? ['afpacket', 'ebpf'].map((mode) => helper(`baseline ${mode}`, BASELINE, mode)) : []),
  ]);
}

// A capture filter that leaves all of the iperf3 traffic out (tcpdump syntax): tcpdump runs it in the kernel; the
// helper runs it in the kernel (cutting what it leaves out to its headers before the copy into the ring) and in
// userspace (counting what it left out), or, with TAPSCOPE_FILTER_USERSPACE, in userspace only.
const LEAVE_OUT = 'icmp';

async function filtered(lab: Lab): Promise<void> {
  const rs = await compareCapturers(lab, `iperf3 over veth with the capture filter '${LEAVE_OUT}', which leaves all of it out`, [
    tcpdump([LEAVE_OUT]),
    helper('helper kernel', HELPER, 'afpacket', ['--filter', LEAVE_OUT]),
    helper('helper userspace', HELPER, 'afpacket', ['--filter', LEAVE_OUT], ['TAPSCOPE_FILTER_USERSPACE=1']),
  ]);
  // (tcpdump drops such packets in the kernel outright and uses next to no CPU: the helper's reference here is itself)
  const k = rs.get('helper kernel')!, u = rs.get('helper userspace')!;
  console.log(`ratio helper kernel/helper userspace: cpu/GB ${fmt(median(k.map((r, i) => cpuPerGb(r) / cpuPerGb(u[i]!))))} (median per round), ` +
    `iperf3 ${fmt(median(k.map((r) => r.gbps)))} vs ${fmt(median(u.map((r) => r.gbps)))} Gbps`);
}

// The UDP watch (afp_open_udp_watch): a packet socket woken by each UDP datagram going out, with a flood guard. Its
// cost is the helper's with it against the same build without it (TAPSCOPE_UDP_WATCH=0), in the same rounds.
// why a fixed rate (100,000 datagrams a second, 200 times the guard's 500) rather than iperf3 -b 0: as fast as it
// could, the client sent 112,000-194,000 a second from run to run on the 2 cores it shares with the server and the
// capturer, so each capturer had other traffic (a round's watch on/off ratio went 1.01-2.07); BENCH_UDP_RATE=0 for that
const UDP_FLOOD: Udp = { bitrate: process.env.BENCH_UDP_RATE ?? '160M', len: 200 };
// 400 datagrams a second (iperf3's rates are in 1000s), below the guard's 500: every datagram wakes the helper
const UDP_SLOW: Udp = { bitrate: '640K', len: 200 };
const range = (xs: number[]) => `${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}`;

async function udpWatch(lab: Lab): Promise<void> {
  const watchers = ['afpacket', 'ebpf'].flatMap((mode) => [helper(`helper ${mode}`, HELPER, mode), helper(`${mode} watch=0`, HELPER, mode, [], ['TAPSCOPE_UDP_WATCH=0'])]);
  const rs = await compareCapturers(lab, `iperf3 UDP flood over veth (-u -b ${UDP_FLOOD.bitrate} -l ${UDP_FLOOD.len})`, [tcpdump(), ...watchers], UDP_FLOOD);
  for (const mode of ['afpacket', 'ebpf']) {
    const on = rs.get(`helper ${mode}`)!, off = rs.get(`${mode} watch=0`)!;
    const ratios = on.map((r, i) => cpuPerGb(r) / cpuPerGb(off[i]!));
    console.log(`ratio helper ${mode} watch on/off: cpu/GB ${fmt(median(ratios))} (median per round; rounds ${range(ratios)}), ` +
      `datagrams/s sent ${fmt(median(on.map((r) => r.udp!.sentPps)), 0)} vs ${fmt(median(off.map((r) => r.udp!.sentPps)), 0)}`);
  }

  // Below the guard CPU per GB means nothing (a few MB in a run): the helper's CPU per second of traffic instead
  console.log(`\niperf3 UDP at ${UDP_SLOW.bitrate}bit/s of ${UDP_SLOW.len}-byte datagrams (400/s, below the flood guard), ${SECONDS}s per capture, ` +
    `${ROUNDS_TP} interleaved rounds; cpu_ms/s: the helper's CPU from "ready" to the end of the traffic per second of it`);
  console.log('round capturer          packets  cpu_ms/s  datagrams/s');
  const msPerS = (r: Result) => (r.cpuS - r.startCpuS) * 1000 / r.wallS;
  const slow = await rotatingRounds(lab, watchers, UDP_SLOW, (round, r) =>
    console.log(`${String(round + 1).padStart(5)} ${r.name.padEnd(16)} ${String(r.packets).padStart(8)} ${fmt(msPerS(r)).padStart(9)} ${fmt(r.udp!.sentPps, 0).padStart(12)}`));
  console.log(`medians of ${ROUNDS_TP} rounds:`);
  for (const [name, runs] of slow) console.log(`${name.padEnd(16)} cpu_ms/s ${fmt(median(runs.map(msPerS)))}  datagrams/s ${fmt(median(runs.map((r) => r.udp!.sentPps)), 0)}`);
  for (const mode of ['afpacket', 'ebpf']) {
    const on = slow.get(`helper ${mode}`)!, off = slow.get(`${mode} watch=0`)!;
    const extra = on.map((r, i) => msPerS(r) - msPerS(off[i]!));
    const ratios = on.map((r, i) => msPerS(r) / msPerS(off[i]!));
    console.log(`helper ${mode} at 400/s: watch on ${fmt(median(on.map(msPerS)))} vs off ${fmt(median(off.map(msPerS)))} cpu_ms/s; ` +
      `on-off ${fmt(median(extra))} ms/s (rounds ${range(extra)}), ${fmt(median(extra) * 1000 / median(on.map((r) => r.udp!.sentPps)), 1)} us per datagram; ` +
      `ratio on/off ${fmt(median(ratios))} (median per round; rounds ${range(ratios)})`);
  }
}

// why: GSO/GRO make packet counts swing between runs (one "packet" may carry 1.5 or 64 KB), so CPU is
// given per GB of traffic carried during the capture, and drops as a fraction of the packets the kernel offered
// (for UDP, the bytes the client sent: see iperf)
const gb = (r: Result) => r.gbps * SECONDS / 8;
const cpuPerGb = (r: Result) => (r.cpuS - r.startCpuS) / gb(r);

/**
 * ROUNDS_TP rounds of a capture by each capturer (iperf3 in UDP mode when `udp`), `each` told of every run as it ends;
 * the runs by capturer. why rounds in a rotating order: machine load on the shared cores drifts, and every round runs
 * every capturer.
 */
async function rotatingRounds(lab: Lab, capturers: Capturer[], udp: Udp | undefined, each: (round: number, r: Result) => void): Promise<Map<string, Result[]>> {
  const byName = new Map<string, Result[]>(capturers.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS_TP; round++) {
    for (let k = 0; k < capturers.length; k++) {
      const c = capturers[(k + round) % capturers.length]!;
      const r = await runCapture(lab, c.name, c.argv, c.parse, c.ready, udp);
      byName.get(c.name)!.push(r);
      each(round, r);
    }
  }
  return byName;
}

async function compareCapturers(lab: Lab, what: string, capturers: Capturer[], udp?: Udp): Promise<Map<string, Result[]>> {
  const totalCpuPerGb = (r: Result) => r.cpuS / gb(r);
  const dropFrac = (r: Result) => r.drops / (r.packets + r.drops);
  console.log(`${what}, ${SECONDS}s per capture, ${ROUNDS_TP} interleaved rounds, ring ${RING_MB} MiB, capture on the client namespace (-i any), output to /dev/null`);
  console.log('cpu_s/GB: CPU from "ready" to the end of the traffic per GB carried; start_cpu_s: CPU used before "ready"; total_s/GB: both');
  if (udp) console.log('iperf_Gbps, datagrams/s: what the client sent (all of it crossed the capture point); recv_Gbps, lost_%: what the server got');
  const udpCols = (r: Result) => (r.udp ? ` ${fmt(r.udp.sentPps, 0).padStart(11)} ${fmt(r.udp.receivedGbps, 3).padStart(9)} ${fmt(r.udp.lostPct, 1).padStart(6)}` : '');
  console.log('round capturer          packets    drops  drop_%   cpu_s  cpu_s/GB  start_cpu_s  total_s/GB  maxRSS_MB  iperf_Gbps' +
    (udp ? ' datagrams/s recv_Gbps lost_%' : ''));
  const byName = await rotatingRounds(lab, capturers, udp, (round, r) =>
    console.log(`${String(round + 1).padStart(5)} ${r.name.padEnd(16)} ${String(r.packets).padStart(8)} ${String(r.drops).padStart(8)} ` +
      `${fmt(dropFrac(r) * 100, 3).padStart(7)} ${fmt(r.cpuS).padStart(7)} ${fmt(cpuPerGb(r), 3).padStart(9)} ${fmt(r.startCpuS).padStart(12)} ` +
      `${fmt(totalCpuPerGb(r), 3).padStart(11)} ${fmt(r.maxRssMb, 1).padStart(10)} ${fmt(r.gbps, udp ? 3 : 2).padStart(11)}${udpCols(r)}`));
  console.log(`medians of ${ROUNDS_TP} rounds:`);
  console.log('capturer          drop_%  drops(total)  cpu_s/GB  start_cpu_s  total_s/GB  maxRSS_MB  iperf_Gbps' + (udp ? ' datagrams/s lost_%' : ''));
  for (const [name, rs] of byName) {
    console.log(`${name.padEnd(16)} ${fmt(median(rs.map(dropFrac)) * 100, 3).padStart(7)} ${String(rs.reduce((a, r) => a + r.drops, 0)).padStart(13)} ` +
      `${fmt(median(rs.map(cpuPerGb)), 3).padStart(9)} ${fmt(median(rs.map((r) => r.startCpuS))).padStart(12)} ${fmt(median(rs.map(totalCpuPerGb)), 3).padStart(11)} ` +
      `${fmt(median(rs.map((r) => r.maxRssMb)), 1).padStart(10)} ${fmt(median(rs.map((r) => r.gbps)), udp ? 3 : 2).padStart(11)}` +
      (udp ? ` ${fmt(median(rs.map((r) => r.udp!.sentPps)), 0).padStart(11)} ${fmt(median(rs.map((r) => r.udp!.lostPct)), 1).padStart(6)}` : ''));
  }
  const td = byName.get(capturers[0]!.name)!;
  for (const c of capturers.slice(1)) {
    const rs = byName.get(c.name)!;
    // why: ratios within each round first (same load), then the median
    const cpuRatio = median(rs.map((r, i) => cpuPerGb(r) / cpuPerGb(td[i]!)));
    const totalRatio = median(rs.map((r, i) => totalCpuPerGb(r) / totalCpuPerGb(td[i]!)));
    console.log(`ratio ${c.name}/${capturers[0]!.name}: cpu/GB ${fmt(cpuRatio)}, with start-up ${fmt(totalRatio)} (medians per round)  ` +
      `drop_% ${fmt(median(rs.map(dropFrac)) * 100, 3)} vs ${fmt(median(td.map(dropFrac)) * 100, 3)}`);
  }
  return byName;
}

type Config = 'none' | 'afpacket' | 'ebpf' | 'baseline';

/** One latency measurement with the helper in `config` (started before, stopped after the client). */
/** Per request: uprobe/uretprobe program runs, syscall tracepoint program runs, and BPF program time. */
interface HookCost { probeHits: number; probeUs: number; tpHits: number; tpUs: number }
type ProgStats = Map<number, { name: string; runs: number; ns: number }>;

function bpfPrograms(): ProgStats {
  const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j']).toString()) as
    Array<{ id: number; name?: string; run_cnt?: number; run_time_ns?: number }>;
  return new Map(progs.map((p) => [p.id, { name: p.name ?? '', runs: p.run_cnt ?? 0, ns: p.run_time_ns ?? 0 }]));
}

/** Runs `work` (`requests` requests) with kernel.bpf_stats_enabled and counts what the helper's programs `ids` did. */
// why: wall-clock ratios on the shared cores swing by more than the hooks cost; program runs and their time
// (kernel.bpf_stats_enabled) are exact, and with the per-hit trap costs in native/README.md give the floor
async function hookCost(ids: Set<number>, requests: number, work: () => Promise<number>): Promise<{ us: number; cost: HookCost }> {
  const sysctl = '/proc/sys/kernel/bpf_stats_enabled';
  const was = readFileSync(sysctl, 'utf8').trim();
  writeFileSync(sysctl, '1');
  try {
    const a = bpfPrograms();
    const us = await work();
    const b = bpfPrograms();
    const cost: HookCost = { probeHits: 0, probeUs: 0, tpHits: 0, tpUs: 0 };
    for (const id of ids) {
      const x = a.get(id), y = b.get(id);
      if (!x || !y) continue;
      const runs = (y.runs - x.runs) / requests, us = (y.ns - x.ns) / requests / 1000;
      if (/^u(ret)?probe_/.test(y.name)) {
        cost.probeHits += runs;
        cost.probeUs += us;
      } else if (/^tp_/.test(y.name)) {
        cost.tpHits += runs;
        cost.tpUs += us;
      }
    }
    return { us, cost };
  } finally {
    writeFileSync(sysctl, was);
  }
}

interface RunResult { us: number; usNew: number; events: number; cpuS: number; cost?: HookCost; costNew?: HookCost }

async function latencyRun(lab: Lab, ca: string, config: Config): Promise<RunResult> {
  if (config === 'none') return { us: await tlsLatency(lab, ca), usNew: await newConnLatency(lab, ca), events: 0, cpuS: 0 };
  const [bin, mode] = config === 'baseline' ? [BASELINE!, 'ebpf'] : [HELPER, config];
  const idsBefore = new Set(bpfPrograms().keys());
  const helper = spawn('ip', ['netns', 'exec', lab.nodeNs, bin, '--mode', mode, ...HELPER_ARGS], { stdio: ['ignore', 'ignore', 'pipe'] });
  const h = collect(helper);
  await waitFor(() => h.text().includes('tapscope-helper: capturing'), 30_000, `helper ${config} start`);
  // why: the helper's start (hooking running processes, first /proc scan) must not overlap the client
  await new Promise((r) => setTimeout(r, 300));
  // the programs this helper loaded (other helpers on the machine have programs of the same names)
  const ids = new Set([...bpfPrograms().keys()].filter((id) => !idsBefore.has(id)));
  const before = procUsage(helper.pid!).cpuS;
  const keepAlive = config === 'ebpf' ? await hookCost(ids, REQUESTS, () => tlsLatency(lab, ca)) : { us: await tlsLatency(lab, ca) };
  const cpuS = procUsage(helper.pid!).cpuS - before;
  const newConn = config === 'ebpf' ? await hookCost(ids, NEW_CONN, () => newConnLatency(lab, ca)) : { us: await newConnLatency(lab, ca) };
  helper.kill('SIGTERM');
  await h.exited;
  return { us: keepAlive.us, usNew: newConn.us, events: Number(/tlsEvents=(\d+)/.exec(h.text())?.[1] ?? 0), cpuS,
    cost: 'cost' in keepAlive ? keepAlive.cost : undefined, costNew: 'cost' in newConn ? newConn.cost : undefined };
}

function printHookCost(what: string, costs: HookCost[]): void {
  if (!costs.length) return;
  const m = (f: (c: HookCost) => number) => fmt(median(costs.map(f)), 1);
  // why "host-wide": probes and tracepoints fire for every process on the machine, so other work during the
  // run adds runs (mostly tracepoints: every read/write syscall)
  console.log(`hooks per ${what} (ebpf, kernel.bpf_stats_enabled, host-wide, median of rounds): ${m((c) => c.probeHits)} uprobe/uretprobe ` +
    `program runs taking ${m((c) => c.probeUs)} us, ${m((c) => c.tpHits)} tracepoint program runs taking ${m((c) => c.tpUs)} us; the traps come on ` +
    'top (~0.9 us per entry probe hit, ~0.6 us more with a return probe, on the lab VM: native/README.md)');
}

async function latency(lab: Lab): Promise<void> {
  const servers = await startHttpsServers(lab, [443]);
  try {
    await tlsLatency(lab, servers.ca); // warm-up
    // why: two shared cores make single runs noisy and machine load drifts; every round measures all three
    // configurations back to back (in a rotating order) so drift hits them alike, and ratios are also taken
    // within each round before the median
    const configs: Config[] = ['none', 'afpacket', 'ebpf', ...(BASELINE ? ['baseline' as const] : [])];
    const us: Record<Config, number[]> = { none: [], afpacket: [], ebpf: [], baseline: [] };
    const usNew: Record<Config, number[]> = { none: [], afpacket: [], ebpf: [], baseline: [] };
    const cpu: Record<Config, number[]> = { none: [], afpacket: [], ebpf: [], baseline: [] };
    const baselineRatio: number[] = [];
    const hooksRatio: number[] = [];
    const hooksRatioNew: number[] = [];
    const baselineRatioNew: number[] = [];
    const totalRatio: number[] = [];
    let events = 0;
    const costs: HookCost[] = [];
    const costsNew: HookCost[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const got: Partial<Record<Config, number>> = {};
      const gotNew: Partial<Record<Config, number>> = {};
      for (let k = 0; k < configs.length; k++) {
        const config = configs[(k + round) % configs.length]!;
        const r = await latencyRun(lab, servers.ca, config);
        got[config] = r.us;
        gotNew[config] = r.usNew;
        us[config].push(r.us);
        usNew[config].push(r.usNew);
        cpu[config].push(r.cpuS);
        events += r.events;
        if (r.cost) costs.push(r.cost);
        if (r.costNew) costsNew.push(r.costNew);
      }
      hooksRatio.push(got.ebpf! / got.afpacket!);
      hooksRatioNew.push(gotNew.ebpf! / gotNew.afpacket!);
      if (BASELINE) baselineRatioNew.push(gotNew.baseline! / gotNew.afpacket!);
      totalRatio.push(got.ebpf! / got.none!);
      if (BASELINE) baselineRatio.push(got.baseline! / got.afpacket!);
      console.log(`round ${round + 1}: keep-alive ` + configs.map((c) => `${c} ${fmt(got[c]!, 0)}`).join('  ') + ' us/req;  new connection ' +
        configs.map((c) => `${c} ${fmt(gotNew[c]!, 0)}`).join('  ') + ' us/req');
    }
    console.log(`TLS latency, ${REQUESTS} sequential keep-alive HTTPS requests (python3/OpenSSL to node), median request, medians of ${ROUNDS} rounds:`);
    for (const c of configs) {
      console.log(`  ${c.padEnd(9)} ${fmt(median(us[c]), 0).padStart(5)} us/req  (min ${fmt(Math.min(...us[c]), 0)}, max ${fmt(Math.max(...us[c]), 0)})` +
        (c === 'none' ? '' : `  helper cpu ${fmt(median(cpu[c]) * 1e6 / REQUESTS, 1)} us/req`));
    }
    console.log(`ratio ebpf/afpacket (cost of the TLS hooks): ${fmt(median(us.ebpf) / median(us.afpacket), 3)} of medians, ` +
      `${fmt(median(hooksRatio), 3)} median per round`);
    console.log(`ratio ebpf/none (whole helper): ${fmt(median(us.ebpf) / median(us.none), 3)} of medians, ` +
      `${fmt(median(totalRatio), 3)} median per round`);
    console.log(`ratio afpacket/none (packet capture): ${fmt(median(us.afpacket) / median(us.none), 3)} of medians`);
    if (BASELINE) {
      console.log(`baseline (${BASELINE}) ebpf/afpacket: ${fmt(median(us.baseline) / median(us.afpacket), 3)} of medians, ` +
        `${fmt(median(baselineRatio), 3)} median per round; ebpf/baseline ${fmt(median(us.ebpf) / median(us.baseline), 3)}`);
    }
    printHookCost('keep-alive request', costs);
    console.log(`TLS latency, ${NEW_CONN} HTTPS requests each on a new connection (curl/OpenSSL to node, full handshake), median request, medians of ${ROUNDS} rounds:`);
    for (const c of configs) {
      console.log(`  ${c.padEnd(9)} ${fmt(median(usNew[c]), 0).padStart(5)} us/req  (min ${fmt(Math.min(...usNew[c]), 0)}, max ${fmt(Math.max(...usNew[c]), 0)})`);
    }
    console.log(`ratio ebpf/afpacket, new connections: ${fmt(median(usNew.ebpf) / median(usNew.afpacket), 3)} of medians, ` +
      `${fmt(median(hooksRatioNew), 3)} median per round` +
      (BASELINE ? `; baseline ${fmt(median(usNew.baseline) / median(usNew.afpacket), 3)} of medians, ${fmt(median(baselineRatioNew), 3)} median per round` : ''));
    // why also against none: afpacket mode resolves each new connection's process at its SYN (sock_diag, /proc
    // fd maps), work that competes with the clients for the CPUs, so afpacket is not a neutral reference here
    console.log(`ratio ebpf/none, new connections: ${fmt(median(usNew.ebpf) / median(usNew.none), 3)} of medians; ` +
      `afpacket/none ${fmt(median(usNew.afpacket) / median(usNew.none), 3)}`);
    printHookCost('new-connection request', costsNew);
    console.log(`(the ebpf helpers saw ${events} TLS records in all; expected about ${ROUNDS * (REQUESTS + NEW_CONN) * 4 * (BASELINE ? 2 : 1)})`);
  } finally {
    await servers.stop();
  }
}

async function main(): Promise<void> {
  const lab = await createLab(uniquePrefix('tsh-bench-'), '10.231.50');
  try {
    if (PART === 'all' || PART === 'throughput') await throughput(lab);
    if (PART === 'all' || PART === 'filter') await filtered(lab);
    if (PART === 'all' || PART === 'udp') await udpWatch(lab);
    if (PART === 'all' || PART === 'latency') await latency(lab);
  } finally {
    await lab.close();
  }
}

await main();
