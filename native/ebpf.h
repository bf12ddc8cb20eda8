/* eBPF mode: loads bpf/tapscope.bpf.c, attaches tracepoints and TLS uprobes per library file
 * (deduplicated by device and inode), turns ringbuf events into pcapng blocks. */
#ifndef TAPSCOPE_EBPF_H
#define TAPSCOPE_EBPF_H

#include <stdint.h>

struct sbuf;

extern int ebpf_active;

/* loads programs and attaches tracepoints (writes nothing); returns 0 or a helper exit code; reason gets a message on failure */
int ebpf_start(char *reason, int reason_len);
/* hooks system TLS libraries and those of running processes (writes `hook` CBs) */
void ebpf_hook_all(void);
/* epoll fd of the ringbuf, for poll() */
int ebpf_fd(void);
/* consumes pending events and releases deferred records that waited too long */
void ebpf_poll(void);
/* periodic work: rescans for processes/libraries to hook */
void ebpf_tick(void);
/* sums the kernel-side counters into ctr */
void ebpf_update_stats(void);
/* writes the ISB of the decrypted records' interface tapscope-tls (after ebpf_update_stats): isb_ifrecv = the records
 * the hooks handed over, isb_ifdrop = the events the ring buffer dropped; none while it has neither */
void ebpf_write_isb(uint64_t ts_ns);
/* consumes what is left in the ring buffer and writes held-back records (before the final blocks) */
void ebpf_flush_output(void);
/* detaches every probe and unloads (slow: a kernel grace period per probe); writes nothing */
void ebpf_stop(void);

struct stat;
/* appends a hooks[] entry for a file (st: its stat, or only st_dev and st_ino) when eBPF mode hooked it; returns 1 when written */
int ebpf_hook_json(struct sbuf *b, int comma, const struct stat *st, const char *path, const char *library);
/* ensures a file is hooked once (per (dev, inode), and once across overlay mounts of one file): display_path as the process sees it, open_path
 * reachable from the helper (e.g. through /proc/PID/root); pid only labels the hook CB */
void ebpf_hook_file(const char *library, const char *display_path, const char *open_path, uint32_t pid);
/* hooks the TLS libraries a process maps and its executable when it carries TLS itself */
void ebpf_hook_process(uint32_t pid);

#endif
