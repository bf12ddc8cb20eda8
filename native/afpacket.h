/* Packet capture with AF_PACKET SOCK_RAW + TPACKET_V3 mmap rings: every packet of every flow, one
 * socket for "any" or one per named interface, drops from PACKET_STATISTICS. */
#ifndef TAPSCOPE_AFPACKET_H
#define TAPSCOPE_AFPACKET_H

#include <poll.h>
#include <stdint.h>

struct sbuf;

/* TCP SYNs seen so far (main loop triggers an early /proc attribution scan when this grows) */
extern int afp_new_flows;

/* opens the sockets; returns 0, or a helper exit code (2 not permitted, 4 failure) */
int afp_open(void);
/* adds the sockets' fds to pfds; returns how many */
int afp_pollfds(struct pollfd *pfds, int max);
/* drains every ready block of every ring */
void afp_drain(void);
/* reads PACKET_STATISTICS into the counters */
void afp_update_stats(void);
/* writes one ISB per interface seen so far, and one per all-interfaces socket that dropped packets (on its IDB `any`,
 * written at its first drop) */
void afp_write_isbs(uint64_t ts_ns);
/* appends `"ifaces":{...}` to a stats JSON object */
void afp_stats_json(struct sbuf *b);
void afp_close(void);
/* afpacket mode: a SYN-only packet socket that wakes the loop on each new TCP flow (0, or -1 when it
 * could not be opened: the ring then queues SYNs itself) */
int afp_open_syn_watch(void);
int afp_syn_fd(void);
/* queues the SYNs read from it for proc_resolve_pending() */
void afp_syn_drain(void);
/* both modes: a packet socket that wakes the loop on each UDP datagram going out (headers only, a small buffer);
 * 0, or -1 when it could not be opened (short-lived UDP sockets are then found by the scans only) */
int afp_open_udp_watch(void);
int afp_udp_fd(void);
/* queues the sockets that sent the datagrams read from it, each local end once, for proc_resolve_pending(); ready: its
 * fd polled readable (it is read only then, or when a rest under a flood ends) */
void afp_udp_drain(int ready);

#endif
