/* x64dis.h - x64 length disassembler and trampoline builder.
 *
 * An inline hook overwrites the first bytes of a function with a jump. The
 * instructions it overwrites ("stolen bytes") must still run, so they are
 * copied into a trampoline that ends with a jump back to the rest of the
 * function. Copying is only safe for instructions whose length we know for
 * certain and whose position-dependent fields (RIP-relative displacements,
 * relative branches) we recompute at their new address. So the decoder here
 * knows lengths and classifies operands, nothing more; anything it does not
 * positively recognise is refused with an error naming the byte, never
 * guessed.
 *
 * Portable C11: no Windows headers, no allocation, no stdio. Addresses are
 * plain integers so the unit tests can build trampolines for any address. */
#ifndef FVM_CORE_X64DIS_H
#define FVM_CORE_X64DIS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The architectural limit: longer encodings raise #GP. */
#define X64_MAX_INSN_LEN 15

/* `jmp rel32`: the 5-byte patch written over a hooked function. */
#define X64_JMP_REL32_LEN 5
/* `jmp [rip+0]; dq target`: reaches any address, 14 bytes. */
#define X64_JMP_ABS_LEN 14

/* The longest patch x64_build_trampoline accepts (min_len). */
#define X64_MAX_PATCH_LEN 32

/* Enough trampoline space for any patch of min_len bytes: at most
 * min_len + 14 bytes are stolen, no instruction grows more than 8-fold
 * (a 2-byte jcc rel8 becomes a 16-byte absolute jcc), plus the jump back. */
#define X64_TRAMPOLINE_CAP(min_len) (8 * ((min_len) + X64_MAX_INSN_LEN - 1) + X64_JMP_ABS_LEN)

/* What kind of position dependence an instruction has. */
typedef enum x64_insn_class {
    X64_INSN_PLAIN = 0,    /* position independent: copy as is */
    X64_INSN_RIP_RELATIVE, /* memory operand [rip+disp32] */
    X64_INSN_JMP_REL,      /* EB rel8, E9 rel32 */
    X64_INSN_JCC_REL,      /* 70-7F rel8, 0F 80-8F rel32 */
    X64_INSN_CALL_REL,     /* E8 rel32 */
    X64_INSN_LOOP_REL      /* E0-E3 loopne/loope/loop/jrcxz rel8 */
} x64_insn_class;

/* Control-flow facts, independent of the class. */
enum x64_insn_flag {
    X64_FLAG_RET = 1u << 0,           /* C2, C3, CA, CB (and iret) */
    X64_FLAG_INT3 = 1u << 1,          /* CC */
    X64_FLAG_ENDS_FLOW = 1u << 2,     /* never falls through: ret, jmp, int3, ud2, hlt */
    X64_FLAG_CALL = 1u << 3,          /* any call: pushes a return address */
    X64_FLAG_INDIRECT_JMP = 1u << 4,  /* FF /4, FF /5 */
    X64_FLAG_INDIRECT_CALL = 1u << 5, /* FF /2, FF /3 */
    X64_FLAG_SYSCALL = 1u << 6,       /* syscall, sysenter, int imm8 */
    X64_FLAG_ADDR32 = 1u << 7,        /* 67 prefix: 32-bit addressing */
    X64_FLAG_OPSIZE16 = 1u << 8,      /* 66 prefix */
    X64_FLAG_LOCK = 1u << 9,          /* F0 prefix */
    X64_FLAG_VEX = 1u << 10           /* C4/C5 VEX encoding */
};

/* Opcode maps. */
enum x64_opcode_map {
    X64_MAP_ONE_BYTE = 0,
    X64_MAP_0F = 1,
    X64_MAP_0F38 = 2,
    X64_MAP_0F3A = 3
};

/* One decoded instruction. Offsets are from the instruction's first byte;
 * a size of 0 means the field is absent. */
typedef struct x64_insn {
    uint8_t length;        /* total length in bytes, 1..15 */
    uint8_t prefix_count;  /* legacy prefixes + REX (+ VEX bytes) before the opcode */
    uint8_t rex;           /* the REX byte, 0 if none */
    uint8_t map;           /* enum x64_opcode_map */
    uint8_t opcode;        /* the opcode byte within its map */
    uint8_t opcode_offset;
    uint8_t has_modrm;
    uint8_t modrm;
    uint8_t disp_offset;   /* memory displacement (incl. [rip+disp32]) */
    uint8_t disp_size;     /* 0, 1 or 4 */
    uint8_t imm_offset;    /* immediate(s); moffs of A0-A3 counts as imm */
    uint8_t imm_size;      /* 0, 1, 2, 3 (enter), 4 or 8 */
    uint8_t rel_offset;    /* the field holding a value relative to the next */
    uint8_t rel_size;      /* instruction: branch rel8/rel32 or rip disp32 */
    uint8_t condition;     /* jcc: condition code 0..15 (low nibble of opcode) */
    x64_insn_class cls;
    uint32_t flags;        /* enum x64_insn_flag */
    int32_t rel;           /* sign-extended value of the rel field */
} x64_insn;

/* Decodes ONE instruction at code (avail bytes readable). On success fills
 * out. Fails with FVM_E_INVALID on truncated input or an encoding invalid in
 * 64-bit mode, FVM_E_UNSUPPORTED on a valid encoding this decoder does not
 * know; the message names the byte offset and the opcode bytes.
 * Known opcodes used with a prefix combination that makes them #UD (an SSE
 * op missing its mandatory 66, say) still get their hardware length: a
 * copy faults exactly like the original would. */
fvm_status x64_decode(const uint8_t *code, size_t avail, x64_insn *out, fvm_error *err);

/* The absolute address a RIP-relative operand or relative branch refers to,
 * for an instruction located at insn_addr. Only meaningful if rel_size != 0. */
uint64_t x64_insn_target(const x64_insn *insn, uint64_t insn_addr);

/* Where each stolen instruction went, so a thread stopped in the middle of
 * the patched bytes can be moved to the same point in the trampoline. */
typedef struct x64_trampoline_map {
    size_t count;
    uint8_t src_offset[X64_MAX_PATCH_LEN]; /* instruction start in the original */
    uint16_t dst_offset[X64_MAX_PATCH_LEN]; /* the same instruction in the trampoline */
} x64_trampoline_map;

/* Copies whole instructions covering at least min_len bytes of src (src_avail
 * bytes readable; src runs at address src_addr) into dst (dst_cap bytes; runs
 * at dst_addr), relocating position-dependent ones, and appends a jump back
 * to src_addr + *stolen_len:
 *   - [rip+disp32] operands get a new disp32 reaching the same address;
 *     FVM_E_RANGE if it no longer fits.
 *   - jmp/jcc rel8 become rel32; call/jmp/jcc whose target is beyond +-2 GB
 *     become absolute forms through an inline 8-byte address.
 * Refused (nothing usable in dst): undecodable bytes, loop/jrcxz, a branch
 * into the stolen bytes themselves, a ret/jmp/int3 that ends the function
 * before min_len, a call that would return into the patched bytes, min_len
 * above X64_MAX_PATCH_LEN, dst too small (FVM_E_RANGE).
 * map may be NULL. */
fvm_status x64_build_trampoline(const uint8_t *src, size_t src_avail, uint64_t src_addr, size_t min_len,
                                uint8_t *dst, uint64_t dst_addr, size_t dst_cap,
                                size_t *stolen_len, size_t *tramp_len,
                                x64_trampoline_map *map, fvm_error *err);

/* The trampoline offset matching the original instruction boundary
 * src_offset; returns 0 (false) if src_offset is not one of the stolen
 * instruction boundaries. */
int x64_trampoline_map_offset(const x64_trampoline_map *map, size_t src_offset, size_t *dst_offset);

/* Does target fit a rel32 measured from next_insn_addr? */
int x64_rel32_fits(uint64_t next_insn_addr, uint64_t target);

/* Writes `jmp rel32` (E9, X64_JMP_REL32_LEN bytes) at dst, which runs at
 * from_addr, jumping to to_addr. FVM_E_RANGE if out of reach or dst_cap
 * is too small. */
fvm_status x64_write_jmp_rel32(uint8_t *dst, size_t dst_cap, uint64_t from_addr, uint64_t to_addr,
                               fvm_error *err);

/* Writes `jmp [rip+0]; dq to_addr` (FF 25 00000000 + 8 bytes,
 * X64_JMP_ABS_LEN bytes) at dst: reaches any address from anywhere.
 * FVM_E_RANGE if dst_cap is too small. */
fvm_status x64_write_jmp_abs(uint8_t *dst, size_t dst_cap, uint64_t to_addr, fvm_error *err);

#endif
