/* Where to put a uprobe in a function so the kernel emulates the probed instruction instead of
 * single-stepping it. On the lab VM (kernel 6.18, Firecracker) a hit on an instruction the kernel
 * emulates (push, call, jmp, jcc, nop) costs ~0.6-0.9 us; on any other (sub, mov, xor, test, endbr64,
 * ret) it is executed out of line under a debug trap: ~10-12 us per hit. On arm64 every probe stays at a
 * function's first instruction (probe_skip 0), and wrapper_callee / calls_target decode arm64's BL: OpenSSL 3's
 * BIOs (`s_server`, BIO_f_ssl users) call ssl_read_internal / ssl_write_internal directly, not SSL_read_ex,
 * so only a probe on the callee sees them. Other architectures: no better site, probed at the entry. */
#ifndef TAPSCOPE_PROBESITE_H
#define TAPSCOPE_PROBESITE_H

#include <stddef.h>
#include <stdint.h>

/* x86-64 register numbers (ModRM encoding order), as bits of a `keep` mask */
enum { PS_AX, PS_CX, PS_DX, PS_BX, PS_SP, PS_BP, PS_SI, PS_DI, PS_R8, PS_R9, PS_R10, PS_R11, PS_R12, PS_R13, PS_R14 };
#define PS_REG(r) (1u << (r))

/* Offset from the start of `code` (a function's first n bytes) of the first instruction the kernel
 * emulates, reached by skipping only straight-line instructions that write none of the registers in
 * `keep` (the ones the BPF program reads) -- and, with a return probe, not %rsp, because the return
 * probe takes the return address at the probed instruction's stack pointer. -1 when there is none. */
long probe_skip(const uint8_t *code, size_t n, uint32_t keep, int with_return);

/* 1 when code is a wrapper that only reserves stack and calls another function with the same
 * arguments: `[endbr64;] sub $imm8,%rsp; call rel32` (arm64: `stp x29, x30, [sp, #-N]!; mov x29, sp; bl`)
 * (OpenSSL 3's SSL_read_ex/SSL_write_ex around
 * ssl_read_internal/ssl_write_internal); *callee_off is the callee's offset relative to code_off's base. */
int wrapper_callee(const uint8_t *code, size_t n, uint64_t code_off, uint64_t *callee_off);

/* 1 when code, within its first n bytes, sets the second argument to imm (`mov $imm,%esi`) and then
 * tail-calls (`jmp rel32`, within 24 bytes) another function: GnuTLS's gnutls_record_recv jumps to
 * _gnutls_recv_int(session, GNUTLS_APPLICATION_DATA = 23, data, size, ...). *callee_off as in wrapper_callee. */
int tail_call_with_arg2(const uint8_t *code, size_t n, uint64_t code_off, uint32_t imm, uint64_t *callee_off);

/* 1 when code (at offset code_off) contains a `call rel32` to target within its first n bytes */
int calls_target(const uint8_t *code, size_t n, uint64_t code_off, uint64_t target);

/* Offset of a Go function's stack-check branch, the conditional jump to runtime.morestack that ends its
 * prologue (amd64: `[lea -N(%rsp),%r12;] cmp 16(%r14),%rsp|%r12; jbe`; arm64: `ldr x16, [x28, #16];
 * [sub x17, sp, #N;] cmp sp|x17, x16; b.ls`), or -1 when code does not begin so. */
long go_stack_check(const uint8_t *code, size_t n);

#endif
