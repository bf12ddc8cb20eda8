/* Implementation of afpacket.h. */
#include <net/if.h> /* why: before the linux/ headers, so libc-compat skips their duplicates */
#include "afpacket.h"
#include "filter.h"
#include "pcapng.h"
#include "procinfo.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct ring {
	int fd;
	int ifindex;        /* 0 = any */
	uint8_t *map;       /* NULL: no ring (see open_ring), packets are read with recvmsg */
	int auxdata;        /* no ring: PACKET_AUXDATA is on (each packet's length on the wire, its VLAN tag) */
	size_t map_len;
	uint32_t nr_blocks;
	uint32_t next;
	uint64_t drops;     /* accumulated tp_drops */
	uint64_t recv;      /* accumulated tp_packets: the packets the socket received, those it dropped among them */
	uint32_t ifid;      /* "any" (ifindex 0): the IDB that carries its counts (afp_write_isbs); UINT32_MAX before */
};

struct iface {
	int ifindex;
	uint16_t hatype;
	uint16_t linktype;
	uint32_t ifid;
	char name[IF_NAMESIZE + 8];
	uint64_t packets, bytes, cuts, drops;
	int bound;          /* has its own socket: drops are its own */
};

/* why: like libpcap, the smallest power-of-two block that holds one full snaplen packet: more, smaller
 * blocks hand packets to user space sooner and drop less under bursts than a few big ones */
static uint32_t block_size;

static struct ring rings[MAX_IFACES];
static int n_rings;
/* Every interface a packet came from, in order of first sight (so the IDB each got stays its place): the table
 * grows as interfaces come. why no limit: on a Kubernetes node every pod (each restart, each Job) adds a veth with a
 * new ifindex, and a fixed table would lose all later pods' packets. iface_slots maps an ifindex to its place + 1
 * (open addressing, linear probing, at most half full); 0 is a free slot. */
static struct iface *ifaces;
static int n_seen, cap_seen;
static uint32_t *iface_slots;
static uint32_t n_slots;

static uint16_t linktype_for(uint16_t hatype)
{
	switch (hatype) {
	case ARPHRD_ETHER:
	case ARPHRD_LOOPBACK:
		return LINKTYPE_ETHERNET;
	case ARPHRD_NONE:
	case ARPHRD_PPP:
	case ARPHRD_IPGRE:
	case ARPHRD_TUNNEL:
	case ARPHRD_TUNNEL6:
		return LINKTYPE_RAW;
	default:
		return LINKTYPE_LINUX_SLL2;
	}
}

/* The slot of ifindex in iface_slots (n_slots > 0): the one holding its place, or the free one it would take. */
static uint32_t *iface_slot(int ifindex)
{
	uint32_t h = ((uint32_t)ifindex * 2654435761u) & (n_slots - 1);

	while (iface_slots[h] && ifaces[iface_slots[h] - 1].ifindex != ifindex)
		h = (h + 1) & (n_slots - 1);
	return &iface_slots[h];
}

/* Makes room for one more interface: 0, or -1 when out of memory. */
static int iface_grow(void)
{
	if (n_seen == cap_seen) {
		int cap = cap_seen ? cap_seen * 2 : 64;
		struct iface *t = realloc(ifaces, (size_t)cap * sizeof(*t));

		if (!t)
			return -1;
		ifaces = t;
		cap_seen = cap;
	}
	if ((uint32_t)(n_seen + 1) * 2 > n_slots) {
		uint32_t n = n_slots ? n_slots * 2 : 128, i;
		uint32_t *t = calloc(n, sizeof(*t));

		if (!t)
			return -1;
		free(iface_slots);
		iface_slots = t;
		n_slots = n;
		for (i = 0; i < (uint32_t)n_seen; i++)
			*iface_slot(ifaces[i].ifindex) = i + 1;
	}
	return 0;
}

/* why: should the table fail to grow (out of memory), packets of further interfaces still go out, on one catch-all
 * LINUX_SLL2 interface whose header names each packet's own ifindex; none is left out */
static struct iface spill;
static int spill_used;

/* The interface of ifindex, its IDB written when first seen. */
static struct iface *iface_get(int ifindex, uint16_t hatype)
{
	struct iface *f;
	char desc[32];
	uint32_t *slot;
	int i;

	if (n_slots && *(slot = iface_slot(ifindex)))
		return &ifaces[*slot - 1];
	if (iface_grow() < 0) {
		if (!spill_used) {
			spill_used = 1;
			spill.linktype = LINKTYPE_LINUX_SLL2;
			snprintf(spill.name, sizeof(spill.name), "other");
			warnx_("out of memory for the interface table: packets of further interfaces go on the interface \"other\"");
			spill.ifid = pcapng_idb(spill.linktype, opts.snaplen, spill.name, "interfaces past the table (ifindex in each packet)");
		}
		return &spill;
	}
	/* why looked up again: iface_grow may have rebuilt the table */
	*iface_slot(ifindex) = (uint32_t)n_seen + 1;
	f = &ifaces[n_seen++];
	memset(f, 0, sizeof(*f));
	f->ifindex = ifindex;
	f->hatype = hatype;
	f->linktype = linktype_for(hatype);
	if (!if_indextoname((unsigned)ifindex, f->name))
		snprintf(f->name, sizeof(f->name), "if%d", ifindex);
	for (i = 0; i < n_rings; i++)
		if (rings[i].ifindex == ifindex)
			f->bound = 1;
	snprintf(desc, sizeof(desc), "ifindex=%d", ifindex);
	f->ifid = pcapng_idb(f->linktype, opts.snaplen, f->name, desc);
	return f;
}

/* where the capture filter runs: 0 none, 1 in the kernel and userspace, -1 in userspace only */
static int filter_in;

/* Attaches the capture filter's kernel program to a ring's socket, cutting what it matches to snap bytes: 0, or -1
 * (no filter, or it cannot run there). */
static int attach_filter(int fd, uint32_t snap)
{
	struct sock_fprog prog;
	const void *insns;

	if (!filter_active())
		return -1;
	if (filter_kernel_prog(snap, &insns, &prog.len) < 0) {
		filter_in = -1;
		return -1;
	}
	prog.filter = (struct sock_filter *)insns;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
		if (filter_in != -1)
			logf_("capture filter: the kernel refused its program (%s); filtering in userspace", strerror(errno));
		filter_in = -1;
		return -1;
	}
	if (filter_in == 0)
		filter_in = 1;
	return 0;
}

static int open_ring(int ifindex)
{
	struct tpacket_req3 req;
	struct sockaddr_ll sll;
	struct ring *r = &rings[n_rings];
	int ver = TPACKET_V3, fd, err;
	struct sock_filter snap_insn = BPF_STMT(BPF_RET | BPF_K, opts.snaplen);
	struct sock_fprog snap_prog = {.len = 1, .filter = &snap_insn};
	uint32_t nr;
	int aux = 0, one = 1;

	r->map = NULL;
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (fd < 0) {
		err = errno;
		warnx_("AF_PACKET socket: %s", strerror(err));
		return err == EPERM || err == EACCES ? 2 : 4;
	}
	/* why: a classic BPF filter returning N is how the kernel cuts packets to the snap length; with a capture
	 * filter, its program does that and cuts what it leaves out to a few headers (filter_kernel_prog) */
	if (attach_filter(fd, opts.snaplen) < 0 && setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &snap_prog, sizeof(snap_prog)) < 0 &&
	    errno != ENOPROTOOPT)
		goto cleanup;
	/* test hook (test/integration): takes the path of kernels without the ring on one that has it */
	if (getenv("TAPSCOPE_TEST_NO_RING")) {
		errno = ENOPROTOOPT;
		goto no_ring;
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof(ver)) < 0) {
		if (errno == ENOPROTOOPT)
			goto no_ring;
		goto cleanup;
	}
	block_size = 1u << 16;
	while (block_size < opts.snaplen + 4096)
		block_size <<= 1;
	nr = (uint32_t)(((uint64_t)(opts.ring_mb ? opts.ring_mb : 32) << 20) / block_size);
	if (nr < 2)
		nr = 2;
	memset(&req, 0, sizeof(req));
	req.tp_block_size = block_size;
	req.tp_block_nr = nr;
	req.tp_frame_size = 2048;
	req.tp_frame_nr = (block_size / 2048) * nr;
	req.tp_retire_blk_tov = 50; /* ms: a quiet ring still hands over its block soon */
	if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
		if (errno == ENOPROTOOPT)
			goto no_ring;
		goto cleanup;
	}
	r->map_len = (size_t)block_size * nr;
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, fd, 0);
	if (r->map == MAP_FAILED)
		r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->map == MAP_FAILED)
		goto cleanup;
bind:
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		goto cleanup;
	r->fd = fd;
	r->ifindex = ifindex;
	r->nr_blocks = nr;
	r->auxdata = aux;
	r->next = 0;
	r->drops = 0;
	r->recv = 0;
	r->ifid = UINT32_MAX;
	n_rings++;
	return 0;
no_ring:
	/* why: some kernels' emulations of Linux have AF_PACKET without its mmap ring (ENOPROTOOPT: gVisor,
	 * qemu-user, which runs the aarch64 helper in the tests); packets are then read one recvmsg each, cut
	 * to the snap length here, timestamped on receipt. Slower, but no flow is left out. why PACKET_AUXDATA: the
	 * socket's program has already trimmed a packet to the snap length, so the read's length (even with MSG_TRUNC)
	 * is the trimmed one; the length on the wire (tp_len) and a VLAN tag taken out of the frame come only there */
	warnx_("AF_PACKET without an mmap ring here (%s): reading packets one at a time", strerror(errno));
	r->map = NULL;
	nr = 0;
	aux = setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) == 0;
	if (!aux) {
		/* why (qemu-user has no PACKET_AUXDATA): the kernel then leaves the packets it keeps whole, and the read's
		 * length with MSG_TRUNC is the one on the wire; they are cut to the snap length here. (A trimmed clone
		 * takes as much of the socket's buffer as a whole one: its memory is the original's) */
		warnx_("no PACKET_AUXDATA here (%s): packets are cut to the snap length here, not in the kernel", strerror(errno));
		snap_insn.k = UINT32_MAX;
		if (filter_in > 0 ? attach_filter(fd, UINT32_MAX) < 0
				  : setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &snap_prog, sizeof(snap_prog)) < 0)
			warnx_("AF_PACKET: could not leave packets whole in the kernel (%s): a cut packet's length is its cut length",
			       strerror(errno));
	}
	goto bind;
cleanup:
	err = errno;
	warnx_("AF_PACKET ring setup: %s", strerror(err));
	if (r->map && r->map != MAP_FAILED)
		munmap(r->map, r->map_len);
	r->map = NULL;
	close(fd);
	return err == EPERM || err == EACCES ? 2 : 4;
}

int afp_open(void)
{
	int i, err;

	if (opts.n_ifaces == 0)
		return open_ring(0);
	for (i = 0; i < opts.n_ifaces; i++) {
		unsigned idx;

		if (!strcmp(opts.ifaces[i], "any"))
			idx = 0;
		else if (!(idx = if_nametoindex(opts.ifaces[i]))) {
			warnx_("no such interface: %s", opts.ifaces[i]);
			return 4;
		}
		err = open_ring((int)idx);
		if (err)
			return err;
	}
	return 0;
}

int afp_pollfds(struct pollfd *pfds, int max)
{
	int i;

	for (i = 0; i < n_rings && i < max; i++) {
		pfds[i].fd = rings[i].fd;
		pfds[i].events = POLLIN | POLLERR;
		pfds[i].revents = 0;
	}
	return i;
}

int afp_new_flows;
static int syn_fd = -1;
/* afpacket mode without the SYN watch: the ring's SYNs are queued for attribution instead */
static int syn_from_ring;
static int udp_fd = -1;
/* The UDP watch rests under a flood (see afp_udp_drain): its socket is neither polled nor read until then, and the
 * ring's datagrams going out are noted instead (at their time: ring_now, read once per block), except one from the
 * same local end as the one before it in the block (ring_udp_end: IP version, port, address) */
static uint64_t udp_rest_until, ring_now;
static uint8_t ring_udp_end[19];

/* The transport protocol of an IPv4 or IPv6 packet (its network header at net, len bytes of it), with *l4off at its
 * header (after IPv6's extension headers: ip6_transport): the protocol, or -1 when it is neither, is cut before its
 * ports, or is a fragment after the first (whose "ports" are payload). */
static int packet_l4(const uint8_t *net, uint32_t len, uint32_t *l4off)
{
	int proto;

	if (len >= 20 && (net[0] >> 4) == 4) {
		if ((net[6] & 0x1f) || net[7])
			return -1;
		*l4off = (uint32_t)(net[0] & 0xf) * 4;
		proto = net[9];
	} else if ((proto = ip6_transport(net, len, l4off)) < 0 || proto == 44) {
		return -1;
	}
	return len >= *l4off + 4 ? proto : -1;
}

/* The addresses and ports of a packet of transport protocol proto whose header packet_l4 found at l4off. */
static void packet_tuple(const uint8_t *net, uint32_t l4off, uint8_t proto, struct tuple *t)
{
	memset(t, 0, sizeof(*t));
	t->proto = proto;
	if ((net[0] >> 4) == 4) {
		t->family = AF_INET;
		memcpy(t->saddr, net + 12, 4);
		memcpy(t->daddr, net + 16, 4);
	} else {
		t->family = AF_INET6;
		memcpy(t->saddr, net + 8, 16);
		memcpy(t->daddr, net + 24, 16);
	}
	t->sport = (uint16_t)(net[l4off] << 8 | net[l4off + 1]);
	t->dport = (uint16_t)(net[l4off + 2] << 8 | net[l4off + 3]);
}

/* A packet of the ring, for attribution: counts TCP SYNs (new connections) so the /proc attribution scan can run soon
 * after, not only on its 500 ms period; queues pure SYNs when there is no SYN watch, and UDP datagrams going out while
 * the UDP watch rests. dir: 1 outbound, -1 inbound, 0 loopback (both ends local; the copy going in). */
static void note_packet(const uint8_t *net, uint32_t len, int proto, uint32_t l4off, int dir)
{
	struct tuple t;

	if (proto == IPPROTO_TCP && len >= l4off + 14 && (net[l4off + 13] & 0x02)) {
		afp_new_flows++;
		/* a pure SYN opens a flow: resolve its owner now, while the (maybe short-lived) socket exists */
		if (!(net[l4off + 13] & 0x10) && syn_from_ring) {
			packet_tuple(net, l4off, IPPROTO_TCP, &t);
			proc_note_syn(&t, dir);
		}
	} else if (proto == IPPROTO_UDP && udp_rest_until && dir >= 0 && (net[l4off] << 8 | net[l4off + 1]) >= 1024) {
		/* why: a flood fills the watch's small buffer, and a new socket's datagram would find no room there; under a
		 * flood the ring's blocks fill within milliseconds, so its datagrams come nearly as soon. why the comparison
		 * first: a flood from one socket is then a compare a datagram, not a tuple and a table probe */
		size_t alen = (net[0] >> 4) == 4 ? 4 : 16;

		if (ring_udp_end[0] == net[0] >> 4 && !memcmp(ring_udp_end + 1, net + l4off, 2) &&
		    !memcmp(ring_udp_end + 3, net + (alen == 4 ? 12 : 8), alen))
			return;
		ring_udp_end[0] = net[0] >> 4;
		memcpy(ring_udp_end + 1, net + l4off, 2);
		memcpy(ring_udp_end + 3, net + (alen == 4 ? 12 : 8), alen);
		packet_tuple(net, l4off, IPPROTO_UDP, &t);
		proc_note_udp(&t, ring_now);
	}
}

/* why: the helper's own output stream (SSH/API connection) would otherwise capture itself in a loop. proto and l4off:
 * as packet_l4 read them */
static int excluded(const uint8_t *net, int proto, uint32_t l4off)
{
	const uint8_t *src, *dst;
	int family, i;
	uint16_t sport, dport;

	if (!opts.n_excludes || proto != IPPROTO_TCP)
		return 0;
	if ((net[0] >> 4) == 4) {
		family = AF_INET;
		src = net + 12;
		dst = net + 16;
	} else {
		family = AF_INET6;
		src = net + 8;
		dst = net + 24;
	}
	sport = (uint16_t)(net[l4off] << 8 | net[l4off + 1]);
	dport = (uint16_t)(net[l4off + 2] << 8 | net[l4off + 3]);
	for (i = 0; i < opts.n_excludes; i++) {
		const struct exclude *x = &opts.excludes[i];
		size_t alen = family == AF_INET ? 4 : 16;

		if (x->family != family)
			continue;
		if ((x->port == sport && !memcmp(x->addr, src, alen)) || (x->port == dport && !memcmp(x->addr, dst, alen)))
			return 1;
	}
	return 0;
}

/* One packet: its link-layer header at mac, its network header net_off bytes on, caplen bytes of it captured
 * (from mac) of origlen on the wire; vlan: the 802.1Q/802.1ad tag the kernel took out of the frame (TPID << 16 | TCI),
 * or 0. The packet's bytes are the helper's (a ring frame it holds, or its read buffer): the capture filter changes
 * some for a moment (filter_packet). */
static void emit_packet(const struct sockaddr_ll *sll, uint8_t *mac, uint32_t net_off, uint32_t caplen, uint32_t origlen,
			uint64_t ts, uint32_t vlan)
{
	uint8_t *net = mac + net_off;
	uint32_t flags, wcap, worig, hlen = 0;
	struct iface *f;
	uint8_t head[24];
	const uint8_t *body;
	uint32_t l4off = 0;
	int proto = 0, parsed = 0;

	if (sll->sll_pkttype == PACKET_OUTGOING && sll->sll_hatype == ARPHRD_LOOPBACK)
		return;
	if (net_off > caplen)
		return;
	/* (the transport header is found once a packet: for the exclusions, else after the filter, for attribution; the
	 * filter puts back any bytes it changes) */
	if (opts.n_excludes) {
		proto = packet_l4(net, caplen - net_off, &l4off);
		parsed = 1;
		if (excluded(net, proto, l4off)) {
			ctr.excluded++;
			return;
		}
	}
	if (!filter_packet(net, caplen - net_off, origlen > net_off ? origlen - net_off : 0)) {
		ctr.filtered++;
		if (filter_in > 0 && caplen == FILTER_CUT && origlen > FILTER_CUT)
			ctr.filter_cuts++;
		return;
	}
	if (!parsed)
		proto = packet_l4(net, caplen - net_off, &l4off);
	note_packet(net, caplen - net_off, proto, l4off, sll->sll_hatype == ARPHRD_LOOPBACK ? 0 : sll->sll_pkttype == PACKET_OUTGOING ? 1 : -1);
	f = iface_get(sll->sll_ifindex, sll->sll_hatype);
	flags = sll->sll_pkttype == PACKET_OUTGOING ? EPB_FLAG_OUTBOUND : EPB_FLAG_INBOUND;
	/* why the tag: the kernel takes it out of the frame (VLAN offload, or skb_vlan_untag on receive, before the packet
	 * taps) and hands it in the ring's header; without it two VLANs' packets of the same addresses and ports read as
	 * one flow. Like libpcap (pcap-linux.c) it goes back where it was on the wire, after the MAC addresses, the frame
	 * then cut to the snap length again. In LINUX_SLL2 the protocol field becomes the TPID and the tag's TCI and the
	 * protocol come before the network header: libpcap's layout for LINUX_SLL, whose protocol field ends its header
	 * (libpcap leaves the tag out of LINUX_SLL2); Wireshark and the core read it. RAW frames have no place for it.
	 * Each layout is a head of hlen bytes (built here) and a body of the packet's own, wcap bytes in all. */
	if (f->linktype == LINKTYPE_ETHERNET && vlan && caplen >= 12) {
		memcpy(head, mac, 12);
		head[12] = (uint8_t)(vlan >> 24);
		head[13] = (uint8_t)(vlan >> 16);
		head[14] = (uint8_t)(vlan >> 8);
		head[15] = (uint8_t)vlan;
		hlen = 16;
		body = mac + 12;
		wcap = caplen + 4 > opts.snaplen ? opts.snaplen : caplen + 4;
		worig = origlen + 4;
	} else if (f->linktype == LINKTYPE_ETHERNET) {
		body = mac;
		wcap = caplen;
		worig = origlen;
	} else if (f->linktype == LINKTYPE_RAW) {
		body = net;
		wcap = caplen - net_off;
		worig = origlen - net_off;
	} else {
		/* LINUX_SLL2 pseudo header, then the network-layer packet */
		uint32_t ifx = htonl((uint32_t)sll->sll_ifindex);
		uint16_t hat = htons(sll->sll_hatype);

		memset(head, 0, 20);
		memcpy(head, &sll->sll_protocol, 2);
		memcpy(head + 4, &ifx, 4);
		memcpy(head + 8, &hat, 2);
		head[10] = sll->sll_pkttype;
		head[11] = sll->sll_halen > 8 ? 8 : sll->sll_halen;
		memcpy(head + 12, sll->sll_addr, head[11]);
		hlen = 20;
		body = net;
		if (vlan) {
			memcpy(head + 22, head, 2);
			head[0] = (uint8_t)(vlan >> 24);
			head[1] = (uint8_t)(vlan >> 16);
			head[20] = (uint8_t)(vlan >> 8);
			head[21] = (uint8_t)vlan;
			hlen = 24;
		}
		wcap = caplen - net_off + hlen;
		worig = origlen - net_off + hlen;
	}
	f->packets++;
	f->bytes += origlen;
	ctr.packets++;
	ctr.bytes += origlen;
	if (wcap < worig) {
		f->cuts++;
		ctr.snaplen_cuts++;
	}
	pcapng_epb2(f->ifid, ts, head, hlen, body, wcap - hlen, worig, flags, NULL);
}

/* The tag the kernel took out of a frame (TPID << 16 | TCI), from a ring frame's or PACKET_AUXDATA's fields, or 0. As
 * libpcap reads it: a TCI of 0 without the flag is "no tag" on kernels before 3.0, which had no flag. */
static uint32_t vlan_of(uint32_t status, uint16_t tci, uint16_t tpid)
{
	if (!(status & TP_STATUS_VLAN_VALID) && !tci)
		return 0;
	return (uint32_t)((status & TP_STATUS_VLAN_TPID_VALID) || tpid ? tpid : ETH_P_8021Q) << 16 | tci;
}

static void handle_packet(struct tpacket3_hdr *h)
{
	const struct sockaddr_ll *sll = (const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof(*h)));

	if (h->tp_net < h->tp_mac)
		return;
	emit_packet(sll, (uint8_t *)h + h->tp_mac, h->tp_net - h->tp_mac, h->tp_snaplen, h->tp_len,
		    (uint64_t)h->tp_sec * 1000000000ull + h->tp_nsec, vlan_of(h->tp_status, h->hv1.tp_vlan_tci, h->hv1.tp_vlan_tpid));
}

/* A socket without a ring: every queued packet, one recvmsg each (see open_ring). */
static void drain_socket(struct ring *r)
{
	static uint8_t *buf;
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	} cbuf;
	struct sockaddr_ll sll;
	struct iovec iov;
	struct msghdr m;
	struct cmsghdr *c;
	ssize_t n;

	if (!buf && !(buf = malloc(opts.snaplen)))
		return;
	for (;;) {
		uint32_t caplen, origlen, net_off, vlan = 0;

		iov.iov_base = buf;
		iov.iov_len = opts.snaplen;
		memset(&m, 0, sizeof(m));
		m.msg_name = &sll;
		m.msg_namelen = sizeof(sll);
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = r->auxdata ? cbuf.b : NULL;
		m.msg_controllen = r->auxdata ? sizeof(cbuf.b) : 0;
		n = recvmsg(r->fd, &m, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			break;
		caplen = (uint32_t)n < opts.snaplen ? (uint32_t)n : opts.snaplen;
		origlen = (uint32_t)n;
		/* why 14: SOCK_RAW hands Ethernet and loopback frames with their header; devices without one (tun,
		 * wireguard) start at the network header, as the ring's tp_net says (and the auxdata's, when there) */
		net_off = sll.sll_hatype == ARPHRD_ETHER || sll.sll_hatype == ARPHRD_LOOPBACK ? 14 : 0;
		for (c = r->auxdata ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
			struct tpacket_auxdata ad;

			if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA || c->cmsg_len < CMSG_LEN(sizeof(ad)))
				continue;
			memcpy(&ad, CMSG_DATA(c), sizeof(ad));
			if (ad.tp_len > origlen)
				origlen = ad.tp_len;
			if (ad.tp_net <= caplen)
				net_off = ad.tp_net;
			vlan = vlan_of(ad.tp_status, ad.tp_vlan_tci, ad.tp_vlan_tpid);
		}
		emit_packet(&sll, buf, net_off, caplen, origlen, now_realtime_ns(), vlan);
		pcapng_maybe_flush(1u << 20);
		if (stop_requested && pcapng_error())
			return;
	}
}

void afp_drain(void)
{
	int i;

	for (i = 0; i < n_rings; i++) {
		struct ring *r = &rings[i];

		if (!r->map) {
			drain_socket(r);
			continue;
		}
		for (;;) {
			struct tpacket_block_desc *bd = (void *)(r->map + (size_t)r->next * block_size);
			struct tpacket3_hdr *h;
			uint32_t n;

			if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
				break;
			h = (void *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
			if (udp_rest_until) {
				ring_now = now_monotonic_ns();
				ring_udp_end[0] = 0;
			}
			for (n = 0; n < bd->hdr.bh1.num_pkts; n++) {
				handle_packet(h);
				h = (void *)((uint8_t *)h + h->tp_next_offset);
			}
			__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
			r->next = (r->next + 1) % r->nr_blocks;
			pcapng_maybe_flush(1u << 20);
			if (stop_requested && pcapng_error())
				return;
		}
	}
	pcapng_flush();
}

/* The ARPHRD type of interface ifindex (its IDB's link type), asked of the kernel: for an interface bound to a socket
 * of its own that dropped packets before one was read. */
static uint16_t iface_hatype(int fd, int ifindex)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	if (!if_indextoname((unsigned)ifindex, ifr.ifr_name) || ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		return ARPHRD_VOID;
	return (uint16_t)ifr.ifr_hwaddr.sa_family;
}

void afp_update_stats(void)
{
	int i, j;

	for (i = 0; i < n_rings; i++) {
		struct tpacket_stats_v3 st;
		socklen_t len = sizeof(st);
		int found = 0;

		/* why: PACKET_STATISTICS resets the kernel's counters on each read, so accumulate (tp_packets counts the
		 * dropped ones too) */
		if (getsockopt(rings[i].fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0)
			continue;
		rings[i].drops += st.tp_drops;
		rings[i].recv += st.tp_packets;
		ctr.ring_drops += st.tp_drops;
		if (!rings[i].ifindex)
			continue;
		for (j = 0; j < n_seen; j++)
			if (ifaces[j].ifindex == rings[i].ifindex) {
				ifaces[j].drops += st.tp_drops;
				found = 1;
			}
		/* why: drops before any packet of the interface was read (a filter leaving all out, a reader stalled from
		 * the start) would otherwise have no ISB to go in; its IDB is written now */
		if (!found && rings[i].drops) {
			struct iface *f = iface_get(rings[i].ifindex, iface_hatype(rings[i].fd, rings[i].ifindex));

			if (f != &spill)
				f->drops = rings[i].drops;
		}
	}
}

void afp_write_isbs(uint64_t ts_ns)
{
	int i;

	/* why an interface "any": one socket serves every interface, and which interface a packet it dropped would have
	 * crossed is not known; Wireshark reads drops only from ISBs, and an ISB needs an interface: this one carries the
	 * socket's counts and no packets (those are on the interfaces they crossed). Written at its first drop, with the
	 * first interface's link type: libpcap (tcpdump -r) refuses a pcapng file whose interfaces differ in link type, so
	 * a capture of one link type, with drops or not, stays one */
	for (i = 0; i < n_rings; i++) {
		if (rings[i].ifindex)
			continue;
		if (rings[i].ifid == UINT32_MAX && rings[i].drops)
			rings[i].ifid = pcapng_idb(n_seen ? ifaces[0].linktype : LINKTYPE_LINUX_SLL2, opts.snaplen, "any",
						   "the all-interfaces packet socket: its counts (received, dropped); its packets are on the interfaces they crossed");
		if (rings[i].ifid != UINT32_MAX)
			pcapng_isb(rings[i].ifid, ts_ns, rings[i].recv, rings[i].drops, 1, 0);
	}
	for (i = 0; i < n_seen; i++)
		pcapng_isb(ifaces[i].ifid, ts_ns, ifaces[i].packets, ifaces[i].drops, ifaces[i].bound, 0);
	if (spill_used)
		pcapng_isb(spill.ifid, ts_ns, spill.packets, 0, 0, 0);
}

void afp_stats_json(struct sbuf *b)
{
	int i;

	sb_puts(b, "\"ifaces\":{");
	for (i = 0; i < n_seen + spill_used; i++) {
		const struct iface *f = i < n_seen ? &ifaces[i] : &spill;

		if (i)
			sb_putc(b, ',');
		sb_json_str(b, f->name);
		sb_printf(b, ":{\"packets\":%llu,\"bytes\":%llu,\"drops\":%llu,\"snaplenCuts\":%llu}",
			  (unsigned long long)f->packets, (unsigned long long)f->bytes,
			  (unsigned long long)(f->bound ? f->drops : 0), (unsigned long long)f->cuts);
	}
	sb_putc(b, '}');
	if (filter_in)
		sb_printf(b, ",\"filterIn\":\"%s\",\"filterCuts\":%llu", filter_in > 0 ? "kernel" : "userspace",
			  (unsigned long long)ctr.filter_cuts);
}

void afp_close(void)
{
	int i;

	if (syn_fd >= 0) {
		close(syn_fd);
		syn_fd = -1;
	}
	if (udp_fd >= 0) {
		close(udp_fd);
		udp_fd = -1;
	}
	for (i = 0; i < n_rings; i++) {
		if (rings[i].map)
			munmap(rings[i].map, rings[i].map_len);
		close(rings[i].fd);
	}
	n_rings = 0;
}

/* ---- watches: second, filtered packet sockets that wake the helper at once on each new TCP flow (afpacket mode)
 * and on each UDP datagram going out (both modes), instead of when the ring hands over its block ---- */

/* A watch socket running the classic BPF program code (n instructions) with a receive buffer of rcvbuf bytes
 * (0: the default); its fd, or -1 with errno set. SOCK_DGRAM: the program and the reads start at the network header. */
static int watch_open(struct sock_filter *code, unsigned short n, int rcvbuf)
{
	struct sock_fprog prog = {.len = n, .filter = code};
	struct sockaddr_ll sll;
	/* why protocol 0 until the bind: no packet is queued before the program is in place */
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -1;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
	    (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* A classic BPF program with forward jumps to labels, built in two passes (jt, jf, and ja's k name labels). */
#define AS_MAX 200
#define WATCH_LEVELS 4 /* IPv6 extension headers walked; a SYN or datagram behind more is left to the /proc scans */
#define SYNW_SNAP 256
#define UDPW_SNAP 96
enum { L_NEXT = -1, L_L4, L_ACCEPT, L_REJECT, L_V6, L_LEVEL, L_EXT = L_LEVEL + WATCH_LEVELS + 1,
       L_AH = L_EXT + WATCH_LEVELS, L_FRAG = L_AH + WATCH_LEVELS, L_COUNT = L_FRAG + WATCH_LEVELS };
struct bpf_asm {
	struct sock_filter code[AS_MAX];
	int jt[AS_MAX], jf[AS_MAX];
	int label[L_COUNT];
	int n;
};

static void as_op(struct bpf_asm *a, uint16_t code, uint32_t k, int jt, int jf)
{
	if (a->n < AS_MAX) {
		a->code[a->n] = (struct sock_filter)BPF_STMT(code, k);
		a->jt[a->n] = jt;
		a->jf[a->n] = jf;
	}
	a->n++;
}

/* Resolves the labels: the instruction count, or 0 when a jump does not fit (too long, or backwards). */
static unsigned short as_link(struct bpf_asm *a)
{
	int i;

	if (a->n > AS_MAX)
		return 0;
	for (i = 0; i < a->n; i++) {
		struct sock_filter *c = &a->code[i];
		int t = a->jt[i] == L_NEXT ? i + 1 : a->label[a->jt[i]], f = a->jf[i] == L_NEXT ? i + 1 : a->label[a->jf[i]];

		if (BPF_CLASS(c->code) != BPF_JMP)
			continue;
		if (t <= i || f <= i || (BPF_OP(c->code) != BPF_JA && (t - i - 1 > 255 || f - i - 1 > 255)))
			return 0;
		if (BPF_OP(c->code) == BPF_JA) {
			c->k = (uint32_t)(t - i - 1);
		} else {
			c->jt = (uint8_t)(t - i - 1);
			c->jf = (uint8_t)(f - i - 1);
		}
	}
	return (unsigned short)a->n;
}

#define AS_LABEL(a, l) ((a)->label[l] = (a)->n)

/* The watches' way to a packet's transport header: on to L_L4, X at that header, when the packet is IPv4 or IPv6 of
 * transport protocol proto, else to L_REJECT; a fragment after the first has no transport header. On IPv6 it walks up
 * to WATCH_LEVELS extension headers (the C walk's, ip6_transport, unrolled: classic BPF jumps only forward), X at
 * each header, A its type. */
static void as_transport(struct bpf_asm *a, uint8_t proto)
{
	static const uint8_t generic[] = {0, 43, 60, 135, 139, 140};
	int lv, i;

	as_op(a, BPF_LD | BPF_B | BPF_ABS, 0, 0, 0);
	as_op(a, BPF_ALU | BPF_AND | BPF_K, 0xf0, 0, 0);
	as_op(a, BPF_JMP | BPF_JEQ | BPF_K, 0x40, L_NEXT, L_V6);
	as_op(a, BPF_LD | BPF_B | BPF_ABS, 9, 0, 0);
	as_op(a, BPF_JMP | BPF_JEQ | BPF_K, proto, L_NEXT, L_REJECT);
	as_op(a, BPF_LD | BPF_H | BPF_ABS, 6, 0, 0);
	as_op(a, BPF_JMP | BPF_JSET | BPF_K, 0x1fff, L_REJECT, L_NEXT);
	as_op(a, BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0);
	as_op(a, BPF_JMP | BPF_JA, 0, L_L4, L_L4);
	AS_LABEL(a, L_V6);
	as_op(a, BPF_JMP | BPF_JEQ | BPF_K, 0x60, L_NEXT, L_REJECT);
	as_op(a, BPF_LDX | BPF_W | BPF_IMM, 40, 0, 0);
	as_op(a, BPF_LD | BPF_B | BPF_ABS, 6, 0, 0);
	for (lv = 0; lv < WATCH_LEVELS; lv++) {
		AS_LABEL(a, L_LEVEL + lv);
		as_op(a, BPF_JMP | BPF_JEQ | BPF_K, proto, L_L4, L_NEXT);
		as_op(a, BPF_JMP | BPF_JEQ | BPF_K, 44, L_FRAG + lv, L_NEXT);
		as_op(a, BPF_JMP | BPF_JEQ | BPF_K, 51, L_AH + lv, L_NEXT);
		for (i = 0; i < (int)sizeof(generic); i++)
			as_op(a, BPF_JMP | BPF_JEQ | BPF_K, generic[i], L_EXT + lv, i + 1 < (int)sizeof(generic) ? L_NEXT : L_REJECT);
		/* hop-by-hop, routing, destination options...: (length + 1) * 8 bytes; authentication: (length + 2) * 4 */
		for (i = 0; i < 2; i++) {
			AS_LABEL(a, (i ? L_AH : L_EXT) + lv);
			as_op(a, BPF_LD | BPF_B | BPF_IND, 0, 0, 0);
			as_op(a, BPF_ST, 0, 0, 0);
			as_op(a, BPF_LD | BPF_B | BPF_IND, 1, 0, 0);
			as_op(a, BPF_ALU | BPF_ADD | BPF_K, i ? 2 : 1, 0, 0);
			as_op(a, BPF_ALU | BPF_LSH | BPF_K, i ? 2 : 3, 0, 0);
			as_op(a, BPF_ALU | BPF_ADD | BPF_X, 0, 0, 0);
			as_op(a, BPF_MISC | BPF_TAX, 0, 0, 0);
			as_op(a, BPF_LD | BPF_MEM, 0, 0, 0);
			as_op(a, BPF_JMP | BPF_JA, 0, L_LEVEL + lv + 1, L_LEVEL + lv + 1);
		}
		/* fragment: 8 bytes; one after the first has no transport header */
		AS_LABEL(a, L_FRAG + lv);
		as_op(a, BPF_LD | BPF_H | BPF_IND, 2, 0, 0);
		as_op(a, BPF_JMP | BPF_JSET | BPF_K, 0xfff8, L_REJECT, L_NEXT);
		as_op(a, BPF_LD | BPF_B | BPF_IND, 0, 0, 0);
		as_op(a, BPF_ST, 0, 0, 0);
		as_op(a, BPF_MISC | BPF_TXA, 0, 0, 0);
		as_op(a, BPF_ALU | BPF_ADD | BPF_K, 8, 0, 0);
		as_op(a, BPF_MISC | BPF_TAX, 0, 0, 0);
		as_op(a, BPF_LD | BPF_MEM, 0, 0, 0);
	}
	AS_LABEL(a, L_LEVEL + WATCH_LEVELS);
	as_op(a, BPF_JMP | BPF_JEQ | BPF_K, proto, L_L4, L_REJECT);
}

/* Ends a watch's program: L_ACCEPT keeps snap bytes of the packet, L_REJECT none. Its length, as as_link's. */
static unsigned short as_verdicts(struct bpf_asm *a, uint32_t snap)
{
	AS_LABEL(a, L_ACCEPT);
	as_op(a, BPF_RET | BPF_K, snap, 0, 0);
	AS_LABEL(a, L_REJECT);
	as_op(a, BPF_RET | BPF_K, 0, 0, 0);
	return as_link(a);
}

/* The SYN watch's program: IPv4 or IPv6 TCP with SYN and not ACK. */
static unsigned short syn_watch_prog(struct bpf_asm *a)
{
	memset(a, 0, sizeof(*a));
	as_transport(a, IPPROTO_TCP);
	AS_LABEL(a, L_L4);
	as_op(a, BPF_LD | BPF_B | BPF_IND, 13, 0, 0);
	as_op(a, BPF_ALU | BPF_AND | BPF_K, 0x12, 0, 0);
	as_op(a, BPF_JMP | BPF_JEQ | BPF_K, 0x02, L_ACCEPT, L_REJECT);
	return as_verdicts(a, SYNW_SNAP);
}

int afp_open_syn_watch(void)
{
	static struct bpf_asm a;
	unsigned short n = syn_watch_prog(&a);

	syn_fd = n ? watch_open(a.code, n, 0) : -1;
	syn_from_ring = syn_fd < 0;
	return syn_fd < 0 ? -1 : 0;
}

int afp_syn_fd(void) { return syn_fd; }

void afp_syn_drain(void)
{
	uint8_t buf[SYNW_SNAP];

	if (syn_fd < 0)
		return;
	for (;;) {
		struct sockaddr_ll sll;
		socklen_t sl = sizeof(sll);
		ssize_t n = recvfrom(syn_fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&sll, &sl);
		struct tuple t;
		uint32_t l4off;

		if (n <= 0)
			return;
		if (sll.sll_pkttype == PACKET_OUTGOING && sll.sll_hatype == ARPHRD_LOOPBACK)
			continue;
		if (packet_l4(buf, (uint32_t)n, &l4off) != IPPROTO_TCP || excluded(buf, IPPROTO_TCP, l4off))
			continue;
		packet_tuple(buf, l4off, IPPROTO_TCP, &t);
		proc_note_syn(&t, sll.sll_hatype == ARPHRD_LOOPBACK ? 0 : sll.sll_pkttype == PACKET_OUTGOING ? 1 : -1);
	}
}

/* The UDP watch's program: IPv4 or IPv6 UDP going out from a port >= 1024 (on loopback that is the outgoing copy, so
 * each datagram once), its ports within the UDPW_SNAP bytes kept. why going out only: the source of a datagram sent
 * from this host is the local end of the socket that sent it; an arriving one names a socket only by its destination,
 * and servers that only receive are bound (the bind tracepoint, the scans). why not below 1024: those are servers'
 * ports (DNS, NTP, QUIC on 443), bound explicitly, and a busy server's answers would all come here. why the ports
 * within the bytes kept: behind long extension headers they may lie past them, and the datagram would wake the loop
 * for nothing */
static unsigned short udp_watch_prog(struct bpf_asm *a)
{
	memset(a, 0, sizeof(*a));
	as_op(a, BPF_LD | BPF_B | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE, 0, 0);
	as_op(a, BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, L_NEXT, L_REJECT);
	as_transport(a, IPPROTO_UDP);
	AS_LABEL(a, L_L4);
	as_op(a, BPF_MISC | BPF_TXA, 0, 0, 0);
	as_op(a, BPF_JMP | BPF_JGT | BPF_K, UDPW_SNAP - 4, L_REJECT, L_NEXT);
	as_op(a, BPF_LD | BPF_H | BPF_IND, 0, 0, 0);
	as_op(a, BPF_JMP | BPF_JGE | BPF_K, 1024, L_ACCEPT, L_REJECT);
	return as_verdicts(a, UDPW_SNAP);
}

int afp_open_udp_watch(void)
{
	static struct bpf_asm a;
	unsigned short n = udp_watch_prog(&a);

	/* why a small buffer: a datagram here is a hint, looked at once per local end; under a flood most are
	 * duplicates, and the kernel drops what does not fit before copying it */
	udp_fd = n ? watch_open(a.code, n, 32 << 10) : -1;
	return udp_fd < 0 ? -1 : 0;
}

int afp_udp_fd(void) { return udp_rest_until ? -1 : udp_fd; }

/* The UDP watch's flood guard: more than WATCH_FLOOD datagrams from ends looked up lately within WATCH_WINDOW_NS (500
 * a second) is a flood; the watch then rests WATCH_REST_NS at a time, until a rest in which the kernel dropped none of
 * its datagrams. why a rate, not a burst: a new socket's first datagrams (a QUIC handshake) come in bursts. Below the
 * guard each datagram read is a wakeup, 28-37 us of the helper's CPU on the lab VM (BENCH_PART=udp of
 * test/bench/helper-bench.ts): at most ~2 % of a core */
#define WATCH_BATCH 32
#define WATCH_FLOOD 50
#define WATCH_WINDOW_NS (100ull * 1000000ull)
#define WATCH_REST_NS (100ull * 1000000ull)

/* The datagrams the kernel dropped from the UDP watch since the last call (its buffer was full). */
static uint32_t udp_watch_drops(void)
{
	struct tpacket_stats st;
	socklen_t len = sizeof(st);

	/* (PACKET_STATISTICS counts since its last read) */
	return getsockopt(udp_fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0 ? st.tp_drops : 0;
}

void afp_udp_drain(int ready)
{
	static uint8_t bufs[WATCH_BATCH][UDPW_SNAP];
	static uint64_t win_start;
	static uint32_t win_known;
	struct mmsghdr msgs[WATCH_BATCH];
	struct iovec iov[WATCH_BATCH];
	uint64_t now;
	int i, n;

	if (udp_fd < 0)
		return;
	now = now_monotonic_ns();
	if (udp_rest_until) {
		if (now < udp_rest_until)
			return;
		if (udp_watch_drops()) {
			udp_rest_until = now + WATCH_REST_NS;
			return;
		}
		/* (what the buffer holds is from the flood's end: it starts no new one) */
		udp_rest_until = 0;
		win_known = 0;
	} else if (!ready) {
		return;
	}
	if (now - win_start > WATCH_WINDOW_NS) {
		win_start = now;
		win_known = 0;
	}
	for (i = 0; i < WATCH_BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	/* why in batches: one system call for what a burst queued */
	while ((n = recvmmsg(udp_fd, msgs, WATCH_BATCH, MSG_DONTWAIT, NULL)) > 0) {
		for (i = 0; i < n; i++) {
			struct tuple t;
			uint32_t l4off;

			if (packet_l4(bufs[i], msgs[i].msg_len, &l4off) != IPPROTO_UDP)
				continue;
			packet_tuple(bufs[i], l4off, IPPROTO_UDP, &t);
			if (!proc_note_udp(&t, now))
				win_known++;
		}
		/* why rest: read as they come, the datagrams of a flood (120,000 a second) cost the helper 28 times its
		 * CPU in afpacket mode, 37 times in eBPF mode (native/README.md); resting, it reads none, and the ring's are
		 * noted */
		if (win_known > WATCH_FLOOD) {
			udp_rest_until = now + WATCH_REST_NS;
			udp_watch_drops();
			return;
		}
		if (n < WATCH_BATCH)
			return;
	}
}
