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
/* Whether a packet passes: its network-layer bytes (net, caplen of origlen on the wire); no filter passes all. */
int filter_packet(const uint8_t *net, uint32_t caplen, uint32_t origlen);
/* Whether a decrypted record of a connection passes: matched as its connection's packets in the record's
 * direction (addresses, ports, protocol); a record whose connection is unknown does not pass a filter. */
int filter_record(const struct tuple *t, int dir_out);

#endif
