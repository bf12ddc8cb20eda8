/* tapscope-helper: captures every packet (AF_PACKET) and, in eBPF mode, TLS plaintext and process
 * attribution, and writes it all as one pcapng stream on stdout (native/FORMAT.md). */
#include "afpacket.h"
#include "ebpf.h"
#include "filter.h"
#include "keylog.h"
#include "pcapng.h"
#include "probe.h"
#include "procinfo.h"
#include "util.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <ifaddrs.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: tapscope-helper [--mode auto|ebpf|afpacket] [--iface any|NAME]... [--duration SECONDS]\n"
	"                       [--snaplen N] [--ring-mb N] [--ringbuf-mb N] [--max-tls-record N]\n"
	"                       [--exclude-tcp IP:PORT]... [--filter EXPR [--check-filter]] [--keylog PATH]...\n"
	"                       [--probe] [--version]\n"
	"--filter EXPR: a capture filter in tcpdump syntax on the IP packet (e.g. 'tcp port 443 or host 10.0.0.5');\n"
	"decrypted records are matched on their connection's addresses and ports. --check-filter only compiles it\n"
	"(exit 0, or 1 with libpcap's message; needs no privileges).\n"
	"--keylog PATH: a TLS key log (SSLKEYLOGFILE) on this machine, followed from its current end; the lines its\n"
	"clients append go into the output as decryption secrets blocks.\n"
	"Writes pcapng to stdout. Exit codes: 0 ok, 1 usage, 2 not permitted, 3 mode unsupported, 4 runtime failure.\n";

/* The longest --duration, in seconds: 100 years (the CLI's limit too). why: the deadline is a count of nanoseconds in
 * 64 bits (2^64 ns is about 584 years); converting a longer duration overflowed (undefined behaviour) into a deadline
 * already past, and the capture stopped at once. */
#define MAX_DURATION_S 3153600000.0

static int usage_error(const char *fmt, const char *arg)
{
	fputs("tapscope-helper: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	fputs(usage_text, stderr);
	return 1;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_exclude(const char *s, struct exclude *x)
{
	char host[64];
	const char *colon;
	uint32_t port;
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
	}
	host[hl] = 0;
	if (parse_u32(colon + 1, 1, 65535, &port))
		return -1;
	x->port = (uint16_t)port;
	memset(x->addr, 0, sizeof(x->addr));
	if (inet_pton(AF_INET, host, x->addr) == 1)
		x->family = AF_INET;
	else if (inet_pton(AF_INET6, host, x->addr) == 1)
		x->family = AF_INET6;
	else
		return -1;
	return 0;
}

static void on_signal(int sig) { stop_requested = 1; }

/* Adds fd, read when readable, at pfds[*n]; its index. */
static int poll_add(struct pollfd *pfds, int *n, int fd)
{
	pfds[*n].fd = fd;
	pfds[*n].events = POLLIN;
	pfds[*n].revents = 0;
	return (*n)++;
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !getenv("TAPSCOPE_HELPER_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void write_stats(int final, uint64_t ts_ns)
{
	struct sbuf b = {0};

	sb_printf(&b,
		  "{\"t\":\"stats\",\"final\":%s,\"tsNs\":%llu,\"packets\":%llu,\"bytes\":%llu,\"ringDrops\":%llu,"
		  "\"ringbufDrops\":%llu,\"snaplenCuts\":%llu,\"excluded\":%llu,\"filtered\":%llu,\"tlsEvents\":%llu,\"tlsBytes\":%llu,"
		  "\"tlsTruncated\":%llu,\"tlsConnUnknown\":%llu,\"tlsCallsLost\":%llu,\"tlsReadFails\":%llu,\"conns\":%llu,"
		  "\"procs\":%llu,\"hooksAttached\":%llu,\"hooksFailed\":%llu,",
		  final ? "true" : "false", (unsigned long long)ts_ns, (unsigned long long)ctr.packets,
		  (unsigned long long)ctr.bytes, (unsigned long long)ctr.ring_drops, (unsigned long long)ctr.ringbuf_drops,
		  (unsigned long long)ctr.snaplen_cuts, (unsigned long long)ctr.excluded, (unsigned long long)ctr.filtered,
		  (unsigned long long)ctr.tls_events, (unsigned long long)ctr.tls_bytes, (unsigned long long)ctr.tls_truncated,
		  (unsigned long long)ctr.tls_conn_unknown, (unsigned long long)ctr.tls_calls_lost,
		  (unsigned long long)ctr.tls_read_fails, (unsigned long long)ctr.conns, (unsigned long long)ctr.procs,
		  (unsigned long long)ctr.hooks_attached, (unsigned long long)ctr.hooks_failed);
	afp_stats_json(&b);
	sb_putc(&b, '}');
	pcapng_custom_json(b.p, b.len);
	sb_free(&b);
}

/* The counters brought up to date, then written: each interface's ISB (Wireshark reads drops only there) and the
 * stats block. Each second, and once at the end (final). */
static void write_counts(int use_ebpf, int final)
{
	/* (one moment for the ISBs and the stats block: the counts they carry were read together) */
	uint64_t now;

	afp_update_stats();
	if (use_ebpf)
		ebpf_update_stats();
	now = now_realtime_ns();
	afp_write_isbs(now);
	if (use_ebpf)
		ebpf_write_isb(now);
	write_stats(final, now);
}

/* Inode of the helper's network namespace: the one its packet sockets and /proc/net scans see. */
static uint32_t own_netns(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) ? 0 : (uint32_t)st.st_ino;
}

static void write_capture_cb(const char *mode, const char *reason, const struct probe_report *pr)
{
	struct sbuf b = {0};
	char host[256] = "";
	int i;

	gethostname(host, sizeof(host) - 1);
	sb_printf(&b, "{\"t\":\"capture\",\"v\":1,\"helper\":\"%s\",\"mode\":\"%s\",\"requestedMode\":\"%s\",\"reason\":",
		  TAPSCOPE_VERSION, mode, opts.mode);
	sb_json_str(&b, reason);
	sb_puts(&b, ",\"kernel\":");
	sb_json_str(&b, pr->kernel);
	sb_puts(&b, ",\"arch\":");
	sb_json_str(&b, pr->machine);
	sb_puts(&b, ",\"hostname\":");
	sb_json_str(&b, host);
	sb_printf(&b, ",\"startNs\":%llu,\"snaplen\":%u,\"maxTlsRecord\":%u,\"ifaces\":[",
		  (unsigned long long)capture_start_ns, opts.snaplen, opts.max_tls_record);
	if (!opts.n_ifaces)
		sb_puts(&b, "\"any\"");
	sb_json_strs(&b, opts.ifaces, opts.n_ifaces);
	sb_puts(&b, "],\"excludedTcp\":[");
	for (i = 0; i < opts.n_excludes; i++) {
		char a[64];

		inet_ntop(opts.excludes[i].family, opts.excludes[i].addr, a, sizeof(a));
		sb_printf(&b, "%s{\"ip\":\"%s\",\"port\":%u}", i ? "," : "", a, opts.excludes[i].port);
	}
	sb_putc(&b, ']');
	if (opts.n_keylogs) {
		sb_puts(&b, ",\"keylogs\":[");
		sb_json_strs(&b, opts.keylogs, opts.n_keylogs);
		sb_putc(&b, ']');
	}
	if (opts.filter) {
		sb_puts(&b, ",\"filter\":");
		sb_json_str(&b, opts.filter);
	}
	/* the addresses of this network namespace's interfaces: a flow end at one of them is a process here, so a
	 * verdict without its process says it was not attributed rather than that it is elsewhere */
	sb_puts(&b, ",\"addrs\":[");
	{
		struct ifaddrs *ifa0 = NULL, *ifa;
		int n = 0;

		if (getifaddrs(&ifa0) == 0) {
			for (ifa = ifa0; ifa && n < 256; ifa = ifa->ifa_next) {
				char a[64];
				const void *src;

				if (!ifa->ifa_addr || (ifa->ifa_addr->sa_family != AF_INET && ifa->ifa_addr->sa_family != AF_INET6))
					continue;
				src = ifa->ifa_addr->sa_family == AF_INET ? (const void *)&((struct sockaddr_in *)ifa->ifa_addr)->sin_addr
									 : (const void *)&((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
				if (!inet_ntop(ifa->ifa_addr->sa_family, src, a, sizeof(a)))
					continue;
				sb_printf(&b, "%s\"%s\"", n++ ? "," : "", a);
			}
			freeifaddrs(ifa0);
		}
	}
	sb_putc(&b, ']');
	if (capture_netns)
		sb_printf(&b, ",\"netns\":%u", capture_netns);
	sb_putc(&b, '}');
	pcapng_custom_json(b.p, b.len);
	sb_free(&b);
}

int main(int argc, char **argv)
{
	struct probe_report pr;
	struct utsname u;
	struct sigaction sa;
	char reason[400] = "", os[400], appl[64], fail[300] = "";
	const char *mode, *udp_watch = getenv("TAPSCOPE_UDP_WATCH");
	uint64_t next_sec, next_scan, last_scan = 0, deadline = 0;
	int syns_scanned = 0, tcp_scan_tick = 0;
	int i, err, want_probe = 0, check_filter = 0, use_ebpf = 0, exit_code = 0;

	opts.mode = "auto";
	opts.snaplen = 262144;
	opts.ring_mb = 32;
	opts.ringbuf_mb = 8;
	opts.max_tls_record = 16384;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		char name[64];
		const char *eq = strchr(a, '=');
		uint32_t n;

		if (strncmp(a, "--", 2))
			return usage_error("unexpected argument: %s", a);
		if (eq && (size_t)(eq - a) < sizeof(name)) {
			memcpy(name, a, (size_t)(eq - a));
			name[eq - a] = 0;
			v = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", a);
		}
		if (!strcmp(name, "--version")) {
			printf("tapscope-helper %s\n", TAPSCOPE_VERSION);
			return 0;
		}
		if (!strcmp(name, "--probe")) {
			want_probe = 1;
			continue;
		}
		if (!strcmp(name, "--check-filter")) {
			check_filter = 1;
			continue;
		}
		if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (strcmp(name, "--mode") && strcmp(name, "--iface") && strcmp(name, "--duration") && strcmp(name, "--snaplen") &&
		    strcmp(name, "--ring-mb") && strcmp(name, "--ringbuf-mb") && strcmp(name, "--max-tls-record") &&
		    strcmp(name, "--exclude-tcp") && strcmp(name, "--filter") && strcmp(name, "--keylog"))
			return usage_error("unknown flag: %s", name);
		if (!v) {
			if (i + 1 >= argc)
				return usage_error("missing value for %s", name);
			v = argv[++i];
		}
		if (!strcmp(name, "--mode")) {
			if (strcmp(v, "auto") && strcmp(v, "ebpf") && strcmp(v, "afpacket"))
				return usage_error("bad --mode: %s (auto, ebpf or afpacket)", v);
			opts.mode = v;
		} else if (!strcmp(name, "--iface")) {
			if (!strcmp(v, "any"))
				continue;
			if (opts.n_ifaces >= MAX_IFACES || !*v)
				return usage_error("bad or too many --iface: %s", v);
			opts.ifaces[opts.n_ifaces++] = v;
		} else if (!strcmp(name, "--duration")) {
			char *end;

			opts.duration = strtod(v, &end);
			/* (written so that NaN, which compares false, is refused too) */
			if (*end || end == v || !(opts.duration > 0 && opts.duration <= MAX_DURATION_S))
				return usage_error("bad --duration: %s (seconds > 0, at most 3153600000: 100 years)", v);
		} else if (!strcmp(name, "--snaplen")) {
			if (parse_u32(v, 64, 262144, &n))
				return usage_error("bad --snaplen: %s (64..262144)", v);
			opts.snaplen = n;
		} else if (!strcmp(name, "--ring-mb")) {
			if (parse_u32(v, 1, 1024, &n))
				return usage_error("bad --ring-mb: %s (1..1024)", v);
			opts.ring_mb = n;
		} else if (!strcmp(name, "--ringbuf-mb")) {
			if (parse_u32(v, 1, 1024, &n))
				return usage_error("bad --ringbuf-mb: %s (1..1024)", v);
			opts.ringbuf_mb = n;
		} else if (!strcmp(name, "--max-tls-record")) {
			if (parse_u32(v, 0, TLS_DATA_MAX, &n))
				return usage_error("bad --max-tls-record: %s (0..32512)", v);
			opts.max_tls_record = n;
		} else if (!strcmp(name, "--exclude-tcp")) {
			if (opts.n_excludes >= MAX_EXCLUDES || parse_exclude(v, &opts.excludes[opts.n_excludes]))
				return usage_error("bad --exclude-tcp: %s (IP:PORT or [IPv6]:PORT)", v);
			opts.n_excludes++;
		} else if (!strcmp(name, "--keylog")) {
			if (opts.n_keylogs >= MAX_KEYLOGS || !*v)
				return usage_error("bad or too many --keylog: %s", v);
			opts.keylogs[opts.n_keylogs++] = v;
		} else if (!strcmp(name, "--filter")) {
			/* (compiled below, once the snap length is known) */
			opts.filter = *v ? v : NULL;
		} else {
			return usage_error("unknown flag: %s", name);
		}
	}

	if (opts.filter) {
		char why[512];

		/* (one line, without the usage: the last lines of stderr are what the app shows) */
		if (filter_compile(opts.filter, opts.snaplen, why, sizeof(why))) {
			logf_("bad --filter '%s': %s", opts.filter, why);
			return 1;
		}
	}
	if (check_filter)
		return opts.filter ? 0 : usage_error("%s", "--check-filter needs --filter EXPR");
	libbpf_set_print(libbpf_log);
	probe_run(&pr);
	if (want_probe) {
		probe_print_json(&pr);
		return 0;
	}
	if (!pr.root && !pr.afpacket) {
		logf_("not permitted: run as root (or with CAP_NET_RAW, CAP_BPF and CAP_PERFMON)");
		return 2;
	}

	/* why before the capture starts: a handshake whose packets are captured writes its secrets after the point
	 * each key log is followed from */
	for (i = 0; i < opts.n_keylogs; i++) {
		char why[400];

		if (keylog_open(opts.keylogs[i], why, sizeof(why))) {
			logf_("%s", why);
			return 1;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* why: a terminal or ssh session that closes sends its process group SIGHUP; stop as on SIGINT (final statistics,
	 * probes detached), as tcpdump does, not die with the capture's end unsaid */
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	clock_sync();
	capture_start_ns = now_realtime_ns();
	capture_netns = own_netns();
	procinfo_init();

	if (!strcmp(opts.mode, "afpacket")) {
		snprintf(reason, sizeof(reason), "afpacket requested");
	} else {
		char why[320];

		use_ebpf = probe_ebpf_ok(&pr, why, sizeof(why));
		if (!use_ebpf && !strcmp(opts.mode, "ebpf")) {
			if (pr.load_errno == EPERM || pr.load_errno == EACCES) {
				logf_("not permitted to load BPF programs: run as root (or with CAP_BPF and CAP_PERFMON)");
				return 2;
			}
			logf_("eBPF mode not supported here: %s", why);
			return 3;
		}
		snprintf(reason, sizeof(reason), "%s: %s", opts.mode, why);
	}
	err = afp_open();
	if (err) {
		logf_("%s", err == 2 ? "not permitted to open AF_PACKET sockets (needs root or CAP_NET_RAW)"
				     : "cannot set up packet capture");
		return err;
	}
	if (use_ebpf) {
		err = ebpf_start(fail, sizeof(fail));
		if (err) {
			if (!strcmp(opts.mode, "ebpf")) {
				logf_("eBPF mode failed: %s", fail);
				afp_close();
				return 3;
			}
			use_ebpf = 0;
			snprintf(reason, sizeof(reason), "auto: eBPF failed (%s), falling back to afpacket", fail);
		}
	}
	mode = use_ebpf ? "ebpf" : "afpacket";
	logf_("mode %s (%s)", mode, reason);
	if (!use_ebpf && afp_open_syn_watch() < 0)
		logf_("SYN watch socket: %s (connections are attributed when the ring hands over packets)", strerror(errno));
	/* why in eBPF mode too: a UDP socket bound at its first sendto (a DNS or QUIC client's that never binds nor
	 * connects) makes no call a tracepoint names, and one that lives less than 500 ms escapes the scans */
	/* (TAPSCOPE_UDP_WATCH=0: without it, for test/bench/helper-bench.ts to measure what it costs) */
	if (udp_watch && !strcmp(udp_watch, "0"))
		logf_("UDP watch socket: off, TAPSCOPE_UDP_WATCH=0 (a UDP socket living less than the 500 ms between scans may go unattributed)");
	else if (afp_open_udp_watch() < 0)
		logf_("UDP watch socket: %s (a UDP socket living less than the 500 ms between scans may go unattributed)", strerror(errno));

	pcapng_open(STDOUT_FILENO);
	/* why: a bigger pipe (1 MiB, the default pipe-max-size) absorbs a reader's short stalls (SSH, the core
	 * parsing) so the ring keeps draining; not a pipe or not allowed: keep what there is */
	fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);
	uname(&u);
	snprintf(os, sizeof(os), "%s %s %s", u.sysname, u.release, u.version);
	snprintf(appl, sizeof(appl), "tapscope-helper %s", TAPSCOPE_VERSION);
	pcapng_shb(u.machine, os, appl);
	write_capture_cb(mode, reason, &pr);
	pcapng_flush();
	capture_yield_hook = afp_drain;
	if (use_ebpf)
		ebpf_hook_all();
	proc_scan_conns();
	pcapng_flush();
	logf_("capturing");
	for (i = 0; i < opts.n_keylogs; i++)
		logf_("following key log %s", opts.keylogs[i]);

	next_sec = now_monotonic_ns() + 1000000000ull;
	next_scan = now_monotonic_ns() + 500000000ull;
	if (opts.duration > 0)
		deadline = now_monotonic_ns() + (uint64_t)(opts.duration * 1e9);
	while (!stop_requested) {
		struct pollfd pfds[MAX_IFACES + 3];
		int n = afp_pollfds(pfds, MAX_IFACES), syn_i = -1, udp_i = -1;
		uint64_t now;

		if (use_ebpf)
			poll_add(pfds, &n, ebpf_fd());
		else if (afp_syn_fd() >= 0)
			syn_i = poll_add(pfds, &n, afp_syn_fd());
		if (afp_udp_fd() >= 0)
			udp_i = poll_add(pfds, &n, afp_udp_fd());
		/* why: queued SYNs and datagrams are retried every few ms while their (maybe short-lived) socket exists */
		if (poll(pfds, (nfds_t)n, proc_pending() ? 5 : 100) < 0 && errno != EINTR) {
			logf_("poll: %s", strerror(errno));
			exit_code = 4;
			break;
		}
		for (i = 0; i < n; i++)
			if (pfds[i].revents & POLLERR) {
				logf_("capture socket error");
				exit_code = 4;
				stop_requested = 1;
			}
		afp_drain();
		if (use_ebpf) {
			ebpf_poll();
			ebpf_tick();
		}
		keylog_poll();
		now = now_monotonic_ns();
		/* why: in afpacket mode /proc is the only attribution: each new TCP flow is resolved at its SYN, each
		 * new local UDP end at its first datagram out, and a scan runs every 500 ms (sooner, at most every 50 ms
		 * after a SYN, without the SYN watch), since short-lived sockets close before the next periodic scan.
		 * In eBPF mode the connect/accept/bind tracepoints see every new connection; the scan at start covered
		 * the older ones, so walking every process's fds again would only cost CPU; the UDP watch names the
		 * sockets no call named. why only when poll said so: under steady UDP traffic each datagram wakes the loop,
		 * and an empty read per watch was a third of its system calls */
		if (syn_i >= 0 && (pfds[syn_i].revents & POLLIN))
			afp_syn_drain();
		afp_udp_drain(udp_i >= 0 && (pfds[udp_i].revents & POLLIN));
		proc_resolve_pending();
		/* why the early scan only without the SYN watch: with it, every SYN is resolved at once (and retried
		 * for 500 ms), so a scan 50 ms after each new flow found nothing more and, under many new
		 * connections, read /proc/net/tcp* (a walk of the kernel's TCP hash) several times a second: 40 %
		 * of the helper's CPU while curl opened 350 connections/s */
		if (!use_ebpf && (now >= next_scan ||
				  (afp_syn_fd() < 0 && afp_new_flows != syns_scanned && now >= last_scan + 50000000ull))) {
			/* why: reading /proc/net/tcp* walks the kernel's whole TCP hash table (15-30 ms under load, long
			 * enough to overflow the ring just as a new flow starts sending); with the SYN watch every new TCP
			 * flow is resolved at its SYN (proc_resolve_pending), so the scan reads the TCP tables only every
			 * 2 s as a fallback, UDP every time */
			int with_tcp = afp_syn_fd() < 0 || ++tcp_scan_tick % 4 == 0;

			syns_scanned = afp_new_flows;
			proc_scan(with_tcp);
			last_scan = now;
			next_scan = now + 500000000ull;
		}
		/* why: a UDP socket bound at its first sendto (a QUIC client's, a DNS client's that never connects) makes
		 * no bind or connect for a tracepoint; the scan of UDP sockets alone finds the ones that live 500 ms */
		if (use_ebpf && now >= next_scan) {
			proc_scan_bound_udp();
			next_scan = now + 500000000ull;
		}
		if (now >= next_sec) {
			write_counts(use_ebpf, 0);
			next_sec = now + 1000000000ull;
		}
		pcapng_flush();
		if (pcapng_error()) {
			logf_("stdout closed, stopping");
			break;
		}
		if (deadline && now >= deadline)
			break;
	}

	/* why: the ring's current block is handed over only when full or after its retire timeout (50 ms);
	 * wait for it so the packets of the last moments are not lost */
	if (!pcapng_error())
		usleep(80 * 1000);
	afp_drain();
	if (use_ebpf) {
		ebpf_poll();
		ebpf_flush_output();
	}
	/* (lines written in the last moments: their handshakes are in the packets above) */
	keylog_poll();
	write_counts(use_ebpf, 1);
	pcapng_flush();
	afp_close();
	/* why: detaching uprobes takes seconds (see ebpf_stop); the reader gets the complete stream and its
	 * end of file first, the process exits once the probes are gone */
	close(STDOUT_FILENO);
	logf_("stopped: packets=%llu bytes=%llu ringDrops=%llu snaplenCuts=%llu excluded=%llu filtered=%llu tlsEvents=%llu "
	      "tlsBytes=%llu ringbufDrops=%llu tlsConnUnknown=%llu tlsCallsLost=%llu conns=%llu procs=%llu hooksAttached=%llu hooksFailed=%llu keylogLines=%llu",
	      (unsigned long long)ctr.packets, (unsigned long long)ctr.bytes, (unsigned long long)ctr.ring_drops,
	      (unsigned long long)ctr.snaplen_cuts, (unsigned long long)ctr.excluded, (unsigned long long)ctr.filtered,
	      (unsigned long long)ctr.tls_events, (unsigned long long)ctr.tls_bytes, (unsigned long long)ctr.ringbuf_drops,
	      (unsigned long long)ctr.tls_conn_unknown, (unsigned long long)ctr.tls_calls_lost, (unsigned long long)ctr.conns,
	      (unsigned long long)ctr.procs, (unsigned long long)ctr.hooks_attached, (unsigned long long)ctr.hooks_failed, keylog_lines());
	if (use_ebpf) {
		ebpf_stop();
		logf_("probes detached");
	}
	return exit_code;
}
