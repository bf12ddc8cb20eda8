/* The capture filter (--filter): a tcpdump expression, compiled by libpcap, that packets and decrypted records
 * must match to be written. */
#ifndef TAPSCOPE_FILTER_H
#define TAPSCOPE_FILTER_H

#include <stdint.h>
#include <stddef.h>
#include <linux/types.h>
#include "tapscope.h"

/* Compiles expr; 0, or -1 with libpcap's message in err. */
int filter_compile(const char *expr, uint32_t snaplen, char *err, size_t errlen);
/* 1 when a filter is set */
int filter_active(void);
/* Bytes kept of a packet the kernel's copy of the filter leaves out: enough for the link-layer, IP and TCP headers
 * that the helper's own checks (its stream's exclusion, the userspace filter) read, no payload. */
#define FILTER_CUT 128
/* The filter as a classic BPF program for a packet socket (instructions laid out as struct sock_filter): it reads
 * each packet from its network header (SKF_NET_OFF), whatever the interface's link-layer header, and cuts a packet
 * it matches to snaplen and one it leaves out to FILTER_CUT bytes (an IPv6 packet with extension headers passes
 * whole: filter_packet decides), so the copy into the ring skips what the
 * filter drops and userspace still sees, and counts, every packet. 0, or -1 when the filter cannot run there (it
 * reads the packet's length, which the kernel counts from the link-layer header) or TAPSCOPE_FILTER_USERSPACE is
 * set (benchmarks compare both). */
int filter_kernel_prog(uint32_t snaplen, const void **insns, unsigned short *len);
/* (snaplen UINT32_MAX: matched packets are not cut in the kernel) */
/* Whether a packet passes: its network-layer bytes (net, caplen of origlen on the wire); no filter passes all. An IPv6
 * packet with extension headers is matched as if it had none (the kernel's program passes it for this): net's bytes
 * are changed during the call, and put back. */
int filter_packet(uint8_t *net, uint32_t caplen, uint32_t origlen);
/* Whether a decrypted record of a connection passes: matched as its connection's packets in the record's
 * direction (addresses, ports, protocol); a record whose connection is unknown does not pass a filter. */
int filter_record(const struct tuple *t, int dir_out);

#endif
