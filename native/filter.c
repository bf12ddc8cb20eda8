/* The capture filter: tcpdump syntax compiled by libpcap for raw IP packets (LINKTYPE_RAW), run on each packet's
 * network header: in the kernel first (the socket's classic BPF program, its loads moved to the network header
 * with SKF_NET_OFF, since one socket sees every interface, each with its own link-layer header: Ethernet, none
 * on a tun, loopback), which cuts what it leaves out before the copy into the ring; then in userspace, which
 * decides and counts, and matches decrypted records. Filters on link-layer fields (ether host, vlan) do not
 * compile for raw IP and are refused with libpcap's message. */
#include "filter.h"

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

/* The kernel's program, built once from prog (one ring per --iface attaches the same): NULL when it cannot be. */
static struct bpf_insn *kernel_prog(uint32_t snaplen)
{
	struct bpf_insn *k;
	u_int i;

	if (getenv("TAPSCOPE_FILTER_USERSPACE") || prog.bf_len > 4096 || !(k = calloc(prog.bf_len, sizeof(*k))))
		return NULL;
	for (i = 0; i < prog.bf_len; i++) {
		struct bpf_insn in = prog.bf_insns[i];
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
	static int built;

	if (!active)
		return -1;
	if (!built) {
		k = kernel_prog(snaplen);
		built = 1;
	}
	if (!k)
		return -1;
	*insns = k;
	*len = (unsigned short)prog.bf_len;
	return 0;
}

int filter_active(void)
{
	return active;
}

int filter_packet(const uint8_t *net, uint32_t caplen, uint32_t origlen)
{
	struct pcap_pkthdr h;

	if (!active)
		return 1;
	memset(&h, 0, sizeof(h));
	h.caplen = caplen;
	h.len = origlen;
	return pcap_offline_filter(&prog, &h, net) != 0;
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
