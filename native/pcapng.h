/* pcapng writer for stdout (native/FORMAT.md): blocks are assembled in a buffer and written out only
 * whole, so a reader of the growing stream never sees half a block. */
#ifndef TAPSCOPE_PCAPNG_H
#define TAPSCOPE_PCAPNG_H

#include <stddef.h>
#include <stdint.h>

#define LINKTYPE_ETHERNET 1
#define LINKTYPE_RAW 101
#define LINKTYPE_WIRESHARK_UPPER_PDU 252
#define LINKTYPE_LINUX_SLL2 276

#define EPB_FLAG_INBOUND 1u
#define EPB_FLAG_OUTBOUND 2u

#define TAPSCOPE_PEN 32473u
#define PCAPNG_SECRETS_TLS_KEYLOG 0x544c534bu

void pcapng_open(int fd);
/* 0 = fine; -1 once a write failed (EPIPE: the reader went away) */
int pcapng_error(void);
void pcapng_flush(void);
/* flushes when more than `threshold` bytes wait */
void pcapng_maybe_flush(size_t threshold);

void pcapng_shb(const char *hardware, const char *os, const char *userappl);
/* returns the new interface id */
uint32_t pcapng_idb(uint16_t linktype, uint32_t snaplen, const char *name, const char *description);
/* two-part packet data: head then body (saves a copy for exported-PDU tags + plaintext) */
void pcapng_epb2(uint32_t ifid, uint64_t ts_ns, const void *head, uint32_t headlen, const void *body,
		 uint32_t bodylen, uint32_t origlen, uint32_t flags, const char *comment);
void pcapng_custom_json(const char *json, size_t len);
/* a decryption secrets block (pcapng 4.7) of `len` bytes of secrets of type `type` (PCAPNG_SECRETS_TLS_KEYLOG) */
void pcapng_dsb(uint32_t type, const void *data, size_t len);
void pcapng_isb(uint32_t ifid, uint64_t ts_ns, uint64_t recv, uint64_t drop, int have_drop, uint64_t osdrop);

#endif
