/* The capture filter: tcpdump syntax compiled by libpcap for raw IP packets (LINKTYPE_RAW), run on each packet's
 * network header: in the kernel first (the socket's classic BPF program, its loads moved to the network header
 * with SKF_NET_OFF, since one socket sees every interface, each with its own link-layer header: Ethernet, none
 * on a tun, loopback), which cuts what it leaves out before the copy into the ring; then in userspace, which
 * decides and counts, and matches decrypted records. Filters on link-layer fields (ether host, vlan) do not
 * compile for raw IP and are refused with libpcap's message. */
#include "filter.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* linux/filter.h's, not included here: its BPF macros and pcap's would both be defined */
#define SKF_NET_OFF (-0x100000)

static struct bpf_program prog;
static int active;

int filter_compile(const char *expr, uint32_t snaplen, char *err, size_t errlen)
{
	pcap_t *p = pcap_open_dead(DLT_RAW, (int)snaplen);

	if (!p) {
		snprintf(err, errlen, "libpcap could not start");
		return -1;
	}
	if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		snprintf(err, errlen, "%s", pcap_geterr(p));
		pcap_close(p);
		return -1;
	}
	pcap_close(p);
	active = 1;
	return 0;
}

/* Before libpcap's program in the kernel: an IPv6 packet whose next header is an extension header passes whole, for
 * userspace to decide on its view without them (filter_packet): libpcap's tcp, udp and port tests read only the fixed
 * header's next-header byte, and would leave out every IPv6 BIG TCP super-packet (a hop-by-hop jumbo header) of the
 * very port they name. Ordinary packets cost three instructions more (IPv4), or five (IPv6 TCP). */
static const struct bpf_insn ext_pass[] = {
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
	BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x60, 0, 12),
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 10, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 9, 0),
	/* ip6_is_ext's */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 7, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 43, 6, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 44, 5, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 51, 4, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 60, 3, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 135, 2, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 139, 1, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 140, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, 1), /* pass (kernel_prog makes its k snaplen) */
};

/* The kernel's program, built from prog once per snap length (one ring per --iface attaches the same): NULL when it
 * cannot be. */
static struct bpf_insn *kernel_prog(uint32_t snaplen)
{
	const u_int pre = sizeof(ext_pass) / sizeof(ext_pass[0]);
	struct bpf_insn *k;
	u_int i;

	if (getenv("TAPSCOPE_FILTER_USERSPACE") || prog.bf_len + pre > 4096 || !(k = calloc(prog.bf_len + pre, sizeof(*k))))
		return NULL;
	for (i = 0; i < pre + prog.bf_len; i++) {
		struct bpf_insn in = i < pre ? ext_pass[i] : prog.bf_insns[i - pre];
		int cls = BPF_CLASS(in.code), mode = BPF_MODE(in.code);

		if (((cls == BPF_LD || cls == BPF_LDX) && mode == BPF_LEN) || (cls == BPF_RET && BPF_RVAL(in.code) != BPF_K)) {
			free(k);
			return NULL;
		}
		if ((cls == BPF_LD && (mode == BPF_ABS || mode == BPF_IND)) || (cls == BPF_LDX && mode == BPF_MSH))
			in.k = (bpf_u_int32)((int32_t)in.k + SKF_NET_OFF);
		if (cls == BPF_RET)
			in.k = in.k ? snaplen : FILTER_CUT;
		k[i] = in;
	}
	return k;
}

int filter_kernel_prog(uint32_t snaplen, const void **insns, unsigned short *len)
{
	static struct bpf_insn *k;
	static uint32_t built_for;
	static int built;

	if (!active)
		return -1;
	/* (the kernel copies a program when it is attached: the one built for another snap length can go) */
	if (!built || built_for != snaplen) {
		free(k);
		k = kernel_prog(snaplen);
		built = 1;
		built_for = snaplen;
	}
	if (!k)
		return -1;
	*insns = k;
	*len = (unsigned short)(prog.bf_len + sizeof(ext_pass) / sizeof(ext_pass[0]));
	return 0;
}

int filter_active(void)
{
	return active;
}

int filter_packet(uint8_t *net, uint32_t caplen, uint32_t origlen)
{
	struct pcap_pkthdr h;
	uint8_t fixed[40], saved[40];
	uint32_t l4off, ext, plen;
	int proto, r;

	if (!active)
		return 1;
	memset(&h, 0, sizeof(h));
	h.caplen = caplen;
	h.len = origlen;
	if (caplen < 48 || (net[0] >> 4) != 6 || !ip6_is_ext(net[6]) || (proto = ip6_transport(net, caplen, &l4off)) < 0 ||
	    l4off > caplen)
		return pcap_offline_filter(&prog, &h, net) != 0;
	/* An IPv6 packet with extension headers is matched as if it had none: its fixed header, its next header the
	 * transport's (or 44, a fragment after the first: no transport header) and its payload length without them,
	 * followed by its transport header. The view is made in place, its fixed header written over the 40 bytes before
	 * the transport header (saved, and put back after): the packet's bytes are the helper's until it writes them. */
	ext = l4off - 40;
	memcpy(fixed, net, 40);
	fixed[6] = (uint8_t)proto;
	plen = (uint32_t)(net[4] << 8 | net[5]);
	if (plen)
		plen = plen > ext ? plen - ext : 0;
	else /* a jumbogram (BIG TCP): its length is the packet's */
		plen = origlen > l4off && origlen - l4off <= 0xffff ? origlen - l4off : 0;
	fixed[4] = (uint8_t)(plen >> 8);
	fixed[5] = (uint8_t)plen;
	memcpy(saved, net + ext, 40);
	memcpy(net + ext, fixed, 40);
	h.caplen = caplen - ext;
	h.len = origlen > ext ? origlen - ext : h.caplen;
	r = pcap_offline_filter(&prog, &h, net + ext) != 0;
	memcpy(net + ext, saved, 40);
	return r;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int filter_record(const struct tuple *t, int dir_out)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	/* room for an IPv6 header and a TCP header without options (or a UDP header: a DTLS record's datagram): the
	 * packet such a record's bytes would have crossed in */
	uint8_t pkt[60];
	const uint8_t *src, *dst;
	uint16_t sport, dport;
	uint32_t l4, len;

	if (!active)
		return 1;
	if (t->family == 0)
		return 0;
	src = dir_out ? t->saddr : t->daddr;
	dst = dir_out ? t->daddr : t->saddr;
	sport = dir_out ? t->sport : t->dport;
	dport = dir_out ? t->dport : t->sport;
	memset(pkt, 0, sizeof(pkt));
	if (t->family == AF_INET || (!memcmp(src, v4mapped, 12) && !memcmp(dst, v4mapped, 12))) {
		int off = t->family == AF_INET ? 0 : 12;

		pkt[0] = 0x45;
		pkt[8] = 64;
		pkt[9] = t->proto ? t->proto : IPPROTO_TCP;
		memcpy(pkt + 12, src + off, 4);
		memcpy(pkt + 16, dst + off, 4);
		l4 = 20;
	} else {
		pkt[0] = 0x60;
		pkt[6] = t->proto ? t->proto : IPPROTO_TCP;
		pkt[7] = 64;
		memcpy(pkt + 8, src, 16);
		memcpy(pkt + 24, dst, 16);
		l4 = 40;
	}
	put16(pkt + l4, sport);
	put16(pkt + l4 + 2, dport);
	if (pkt[l4 == 20 ? 9 : 6] == IPPROTO_TCP) {
		pkt[l4 + 12] = 5 << 4; /* data offset: 20 bytes */
		pkt[l4 + 13] = 0x18;   /* PSH, ACK: a segment carrying data */
		len = l4 + 20;
	} else {
		put16(pkt + l4 + 4, 8);
		len = l4 + 8;
	}
	if (l4 == 20)
		put16(pkt + 2, (uint16_t)len);
	else
		put16(pkt + 4, (uint16_t)(len - 40));
	return filter_packet(pkt, len, len);
}

/* why: libpcap's static archive brings libdbus (its D-Bus capture source), whose static archive calls these two
 * systemd functions for socket activation; Debian ships no static libsystemd, and the helper never opens a D-Bus
 * capture, so they answer "no sockets passed" as libsystemd does outside systemd */
int sd_listen_fds(int unset_environment);
int sd_is_socket(int fd, int family, int type, int listening);

int sd_listen_fds(int unset_environment)
{
	(void)unset_environment;
	return 0;
}

int sd_is_socket(int fd, int family, int type, int listening)
{
	(void)fd;
	(void)family;
	(void)type;
	(void)listening;
	return 0;
}
