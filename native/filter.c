/* The capture filter: tcpdump syntax compiled by libpcap for raw IP packets (LINKTYPE_RAW), run in userspace
 * on each packet's network header. why userspace and not the socket's kernel filter: one socket sees every
 * interface, each with its own link-layer header (Ethernet, none on a tun, loopback), and a classic BPF
 * program is compiled for one; the network header is the same on all of them. A filter's point on a busy node
 * is the stream to the laptop (SSH, the API server), which this narrows as well. Filters on link-layer fields
 * (ether host, vlan) do not compile for raw IP and are refused with libpcap's message. */
#include "filter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>

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
	/* an IPv6 header and a TCP header without options: the packet such a record's bytes would have crossed in */
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
