/* Process attribution from /proc: `proc` and `conn` custom blocks, TLS library detection from
 * /proc/PID/maps and the executable, and the periodic /proc/net + /proc/PID/fd scan. */
#ifndef TAPSCOPE_PROCINFO_H
#define TAPSCOPE_PROCINFO_H

#include <stdint.h>
#include <linux/types.h>
#include "tapscope.h"

struct sbuf;

/* ELF facts about a file, cached by (dev, inode) */
struct elf_facts {
	int exports_ssl_write;
	int boringssl;
	int go;
	int go_tls; /* a Go binary with crypto/tls linked in (name found in .gopclntab) */
	char release[16]; /* libgnutls*: the release string in .rodata ("3.7.9"), else "" */
};

int elf_inspect(const char *path, struct elf_facts *out);

/* TLS library identifier for a mapped file's basename, or NULL; version gets the soname version */
const char *tls_library_for_file(const char *base, char *version, int version_len);

/* The library tls_library_for_file named, as the file at path shows it to be: a libssl.so* is BoringSSL's or
 * OpenSSL's (same soname and ABI; told apart by exported symbols). version (may be NULL) is made the library's own:
 * none for BoringSSL (its soname number is not a BoringSSL version), for GnuTLS the release the file names
 * (libgnutls.so.30.34.3 is libtool's interface number of release 3.7.9), or none when it names none */
const char *tls_library_refine(const char *lib, const char *path, char *version, int version_len);

/* writes `proc` CB for pid unless already written; comm is used when /proc/PID is gone */
void proc_note(uint32_t pid, const char *comm);
/* like proc_note; when /proc could not tell the TLS library (process gone) but a hook fired, writes
 * (again) a `proc` CB with tls.via = "hook" */
void proc_note_tls(uint32_t pid, const char *comm, const char *hook_lib, const char *hook_fn);
/* ebpf mode: pid opened a TLS library file (path as the process names it, open_path where the helper opens
 * it); when its `proc` CB was written without a library, writes it again naming this one (tls.via "open") */
void proc_note_opened(uint32_t pid, const char *comm, const char *lib, const char *path, const char *open_path,
		      const char *version);
/* ebpf mode, at an exec: keeps what /proc tells about pid now (exe, command line, cgroup, the executable's own
 * TLS), for a `proc` CB written after the process is gone (`alive` false, `readAt` "exec") */
void proc_exec_snapshot(uint32_t pid);
/* forgets pid (exec: the next sighting writes a fresh `proc` CB) */
void proc_forget(uint32_t pid);
/* 1 when a TCP tuple has an end named by --exclude-tcp (the capture's own output connection) */
int tuple_excluded(const struct tuple *t);
/* writes a `conn` CB unless this connection (in network namespace netns, 0 = unknown) was already reported */
void conn_note(const struct tuple *t, uint32_t netns, int role, uint32_t pid, uint32_t tid, const char *comm,
	       const char *via, uint64_t ts_ns);
/* scans /proc/net/{tcp,tcp6,udp,udp6} of the helper's network namespace and attributes new sockets */
void proc_scan_conns(void);
/* Same, with or without TCP: the /proc/net/tcp* reads are the costly part (see proc_scan). */
void proc_scan(int with_tcp);
/* Only UDP sockets bound and not connected (ebpf mode's periodic scan: a socket bound at its first sendto, with no
 * bind or connect for a tracepoint to see, a QUIC or DNS client's) */
void proc_scan_bound_udp(void);
/* afpacket mode: queues a TCP SYN's tuple (as seen in the packet) for attribution via sock_diag;
 * dir: 1 outbound, -1 inbound, 0 both ends may be local (loopback) */
void proc_note_syn(const struct tuple *pkt, int dir);
/* both modes: queues the socket that sent a UDP datagram out (its tuple as seen in the packet, the source being the
 * local end) for attribution via sock_diag, once per local end (address, port, family) every 2 s; now_ns:
 * CLOCK_MONOTONIC, read once per batch of datagrams by the caller. Returns 0 when that end was looked up lately, else 1 */
int proc_note_udp(const struct tuple *pkt, uint64_t now_ns);
/* resolves queued SYNs and datagrams: sock_diag exact lookup -> inode -> pid from a cached /proc fd map, refreshed
 * on a miss at most every 20 ms; writes `conn` CBs for sockets not reported yet */
void proc_resolve_pending(void);
/* number of queued SYNs and datagrams (the poll loop wakes sooner while there are some) */
int proc_pending(void);
/* formats a tuple address as text */
void tuple_addr_str(const struct tuple *t, int local, char *out, int outlen);
/* boot-relative start time of capture, in clock ticks (for startedBeforeCapture) */
void procinfo_init(void);

#endif
