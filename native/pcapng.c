/* Implementation of pcapng.h. Host byte order (little-endian on every shipped platform). */
#include "pcapng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define BUF_CAP (4u << 20)

static int out_fd = 1;
static int failed;
static uint8_t *buf;
static size_t used;

void pcapng_open(int fd)
{
	out_fd = fd;
	buf = malloc(BUF_CAP);
	if (!buf)
		abort();
	used = 0;
}

int pcapng_error(void) { return failed ? -1 : 0; }

void pcapng_flush(void)
{
	size_t off = 0;

	while (!failed && off < used) {
		ssize_t n = write(out_fd, buf + off, used - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			failed = 1;
			break;
		}
		off += (size_t)n;
	}
	used = 0;
}

void pcapng_maybe_flush(size_t threshold)
{
	if (used > threshold)
		pcapng_flush();
}

static uint8_t *reserve(size_t n)
{
	uint8_t *p;

	if (used + n > BUF_CAP)
		pcapng_flush();
	if (n > BUF_CAP)
		return NULL;
	p = buf + used;
	used += n;
	return p;
}

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

static size_t opt_size(size_t len) { return 4 + pad4(len); }

static uint8_t *put_opt(uint8_t *p, uint16_t code, const void *val, size_t len)
{
	uint16_t hdr[2] = {code, (uint16_t)len};

	memcpy(p, hdr, 4);
	memcpy(p + 4, val, len);
	memset(p + 4 + len, 0, pad4(len) - len);
	return p + 4 + pad4(len);
}

static uint8_t *put_end(uint8_t *p)
{
	memset(p, 0, 4);
	return p + 4;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return p + 4;
}

static size_t str_opt_size(const char *s)
{
	return s && *s ? opt_size(strlen(s) > 65000 ? 65000 : strlen(s)) : 0;
}

static uint8_t *put_str_opt(uint8_t *p, uint16_t code, const char *s)
{
	if (!s || !*s)
		return p;
	return put_opt(p, code, s, strlen(s) > 65000 ? 65000 : strlen(s));
}

void pcapng_shb(const char *hardware, const char *os, const char *userappl)
{
	size_t len = 28 + str_opt_size(hardware) + str_opt_size(os) + str_opt_size(userappl) + 4;
	uint8_t *p = reserve(len), *q;
	uint16_t ver[2] = {1, 0};
	int64_t section_len = -1;

	if (!p)
		return;
	q = put32(p, 0x0A0D0D0A);
	q = put32(q, (uint32_t)len);
	q = put32(q, 0x1A2B3C4D);
	memcpy(q, ver, 4);
	q += 4;
	memcpy(q, &section_len, 8);
	q += 8;
	q = put_str_opt(q, 2, hardware);
	q = put_str_opt(q, 3, os);
	q = put_str_opt(q, 4, userappl);
	q = put_end(q);
	put32(q, (uint32_t)len);
}

uint32_t pcapng_idb(uint16_t linktype, uint32_t snaplen, const char *name, const char *description)
{
	static uint32_t next_id;
	uint8_t tsresol = 9;
	size_t len = 20 + str_opt_size(name) + str_opt_size(description) + opt_size(1) + 4;
	uint8_t *p = reserve(len), *q;
	uint16_t lt[2] = {linktype, 0};

	if (!p)
		return next_id++;
	q = put32(p, 1);
	q = put32(q, (uint32_t)len);
	memcpy(q, lt, 4);
	q += 4;
	q = put32(q, snaplen);
	q = put_str_opt(q, 2, name);
	q = put_str_opt(q, 3, description);
	q = put_opt(q, 9, &tsresol, 1);
	q = put_end(q);
	put32(q, (uint32_t)len);
	return next_id++;
}

/* why: copying big packets (GSO/GRO frames up to 64 KiB) into the buffer costs more than the write;
 * send them straight from the capture ring with writev, as one whole block */
#define DIRECT_MIN 8192

static void writev_all(struct iovec *iov, int n)
{
	while (!failed && n > 0) {
		ssize_t w = writev(out_fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			failed = 1;
			return;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
}

static void epb_direct(uint32_t ifid, uint64_t ts_ns, const void *head, uint32_t headlen, const void *body,
		       uint32_t bodylen, uint32_t origlen, uint32_t flags, const char *comment)
{
	uint32_t caplen = headlen + bodylen;
	uint32_t len = (uint32_t)(32 + pad4(caplen) + str_opt_size(comment) + opt_size(4) + 4);
	uint8_t hdr[28], tail[2048], *q;
	uint32_t v[7] = {6, len, ifid, (uint32_t)(ts_ns >> 32), (uint32_t)ts_ns, caplen, origlen};
	struct iovec iov[4];
	int n = 0;

	pcapng_flush();
	memcpy(hdr, v, sizeof(hdr));
	q = tail;
	memset(q, 0, 3);
	q += pad4(caplen) - caplen;
	q = put_str_opt(q, 1, comment);
	q = put_opt(q, 2, &flags, 4);
	q = put_end(q);
	q = put32(q, len);
	iov[n++] = (struct iovec){hdr, sizeof(hdr)};
	if (headlen)
		iov[n++] = (struct iovec){(void *)head, headlen};
	if (bodylen)
		iov[n++] = (struct iovec){(void *)body, bodylen};
	iov[n++] = (struct iovec){tail, (size_t)(q - tail)};
	writev_all(iov, n);
}

void pcapng_epb2(uint32_t ifid, uint64_t ts_ns, const void *head, uint32_t headlen, const void *body,
		 uint32_t bodylen, uint32_t origlen, uint32_t flags, const char *comment)
{
	uint32_t caplen = headlen + bodylen;
	size_t len = 32 + pad4(caplen) + str_opt_size(comment) + opt_size(4) + 4;
	uint8_t *p, *q;

	if (bodylen >= DIRECT_MIN && (!comment || strlen(comment) < 1024)) {
		epb_direct(ifid, ts_ns, head, headlen, body, bodylen, origlen, flags, comment);
		return;
	}
	p = reserve(len);
	if (!p)
		return;
	q = put32(p, 6);
	q = put32(q, (uint32_t)len);
	q = put32(q, ifid);
	q = put32(q, (uint32_t)(ts_ns >> 32));
	q = put32(q, (uint32_t)ts_ns);
	q = put32(q, caplen);
	q = put32(q, origlen);
	if (headlen)
		memcpy(q, head, headlen);
	if (bodylen)
		memcpy(q + headlen, body, bodylen);
	memset(q + caplen, 0, pad4(caplen) - caplen);
	q += pad4(caplen);
	q = put_str_opt(q, 1, comment);
	q = put_opt(q, 2, &flags, 4);
	q = put_end(q);
	put32(q, (uint32_t)len);
}

/* A block of `type` whose body is `nw` 32-bit words, then `n` bytes of data padded to 32 bits. */
static void data_block(uint32_t type, const uint32_t *w, size_t nw, const void *data, size_t n)
{
	size_t len = 12 + 4 * nw + pad4(n), i;
	uint8_t *p = reserve(len), *q;

	if (!p)
		return;
	q = put32(p, type);
	q = put32(q, (uint32_t)len);
	for (i = 0; i < nw; i++)
		q = put32(q, w[i]);
	memcpy(q, data, n);
	memset(q + n, 0, pad4(n) - n);
	q += pad4(n);
	put32(q, (uint32_t)len);
}

void pcapng_custom_json(const char *json, size_t n)
{
	const uint32_t pen = TAPSCOPE_PEN;

	data_block(0x00000BAD, &pen, 1, json, n);
}

void pcapng_dsb(uint32_t type, const void *data, size_t n)
{
	const uint32_t w[2] = { type, (uint32_t)n };

	data_block(0x0000000A, w, 2, data, n);
}

void pcapng_isb(uint32_t ifid, uint64_t ts_ns, uint64_t recv, uint64_t drop, int have_drop, uint64_t osdrop)
{
	size_t len = 24 + opt_size(8) * (have_drop ? 3 : 2) + 4;
	uint8_t *p = reserve(len), *q;

	if (!p)
		return;
	q = put32(p, 5);
	q = put32(q, (uint32_t)len);
	q = put32(q, ifid);
	q = put32(q, (uint32_t)(ts_ns >> 32));
	q = put32(q, (uint32_t)ts_ns);
	q = put_opt(q, 4, &recv, 8);
	if (have_drop)
		q = put_opt(q, 5, &drop, 8);
	q = put_opt(q, 7, &osdrop, 8);
	q = put_end(q);
	put32(q, (uint32_t)len);
}
