/* x64dis.c - x64 length disassembler and trampoline builder (see x64dis.h).
 *
 * Decoding follows the hardware's own order: legacy prefixes, REX or VEX,
 * the opcode (one-byte map, 0F, 0F 38, 0F 3A), ModRM/SIB/displacement, then
 * immediates. Each opcode map is an explicit list of the encodings we know,
 * so an unknown byte is an error rather than a guess: a wrong length would
 * make the hook copy half an instruction and crash the boxed program far
 * away from the cause.
 *
 * The trampoline builder then copies whole instructions and re-encodes the
 * position-dependent ones for their new address. */
#include "core/x64dis.h"
#include "core/bytes.h"

#include <string.h>

/* ---- decoding ---------------------------------------------------------- */

/* Immediate or relative operand an opcode carries after ModRM. */
typedef enum operand_kind {
    OPERAND_NONE,
    OPERAND_IMM8,
    OPERAND_IMM16,
    OPERAND_IMM16_IMM8, /* enter imm16, imm8 */
    OPERAND_IMMZ,       /* imm16 with 66, else imm32 */
    OPERAND_IMMV,       /* B8+r: imm16 with 66, imm64 with REX.W, else imm32 */
    OPERAND_MOFFS,      /* A0-A3: 8-byte address, 4 with 67 */
    OPERAND_REL8,
    OPERAND_REL32
} operand_kind;

/* What an opcode looks like before its ModRM.reg is known. */
typedef struct opcode_form {
    int known;      /* 0: refuse */
    int invalid;    /* with known == 0: #UD in 64-bit mode (else just unknown to us) */
    int has_modrm;
    operand_kind operand;
    x64_insn_class cls;
    uint32_t flags;
} opcode_form;

typedef struct decoder {
    const uint8_t *code;
    size_t avail;
    size_t base;      /* offset of code within the caller's buffer, for messages */
    size_t pos;       /* next byte to read, relative to code */
    x64_insn *insn;
    fvm_error *err;
    int opsize16;     /* 66 */
    int addr32;       /* 67 */
    int rep;          /* F2 or F3 */
    int lock;         /* F0 */
    int rex_w;
} decoder;

static fvm_status need_bytes(decoder *d, size_t count)
{
    if (d->pos + count > X64_MAX_INSN_LEN)
        return fvm_error_set(d->err, FVM_E_INVALID,
                             "instruction at byte %u is longer than %d bytes", (unsigned)d->base,
                             X64_MAX_INSN_LEN);
    if (d->pos + count > d->avail)
        return fvm_error_set(d->err, FVM_E_INVALID,
                             "truncated instruction at byte %u: needs byte %u, only %u available",
                             (unsigned)d->base, (unsigned)(d->base + d->pos + count - 1),
                             (unsigned)(d->base + d->avail));
    return FVM_OK;
}

/* Names the opcode bytes for an error message, e.g. "0f 38 ff". */
static fvm_status refuse_opcode(decoder *d, int invalid_in_64bit, const char *detail)
{
    const x64_insn *insn = d->insn;
    const uint8_t *op = d->code + insn->opcode_offset;
    size_t at = d->base + insn->opcode_offset;
    const char *what = invalid_in_64bit ? "invalid in 64-bit mode" : "unsupported";
    fvm_status status = invalid_in_64bit ? FVM_E_INVALID : FVM_E_UNSUPPORTED;
    const char *sep = detail ? " " : "";

    detail = detail ? detail : "";
    if (insn->flags & X64_FLAG_VEX)
        return fvm_error_set(d->err, status, "%s VEX opcode map %u op %02x at byte %u%s%s", what,
                             insn->map, insn->opcode, (unsigned)at, sep, detail);
    switch (insn->map) {
    case X64_MAP_0F:
        return fvm_error_set(d->err, status, "%s opcode 0f %02x at byte %u%s%s", what, op[1], (unsigned)at,
                             sep, detail);
    case X64_MAP_0F38:
    case X64_MAP_0F3A:
        return fvm_error_set(d->err, status, "%s opcode 0f %02x %02x at byte %u%s%s", what, op[1], op[2],
                             (unsigned)at, sep, detail);
    default:
        return fvm_error_set(d->err, status, "%s opcode %02x at byte %u%s%s", what, op[0], (unsigned)at,
                             sep, detail);
    }
}

static int is_legacy_prefix(uint8_t b)
{
    switch (b) {
    case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65: /* segment / branch hints */
    case 0x66: case 0x67: case 0xf0: case 0xf2: case 0xf3:
        return 1;
    default:
        return 0;
    }
}

static int is_rex(uint8_t b) { return (b & 0xf0) == 0x40; }

/* Legacy prefixes in any order, then at most one REX, which must come last:
 * a REX followed by anything but the opcode is ignored by the CPU, which
 * changes operand sizes, so we refuse it instead of modelling it. */
static fvm_status decode_prefixes(decoder *d)
{
    for (;;) {
        fvm_status status = need_bytes(d, 1);
        uint8_t b;
        if (status != FVM_OK)
            return status;
        b = d->code[d->pos];
        if (is_legacy_prefix(b)) {
            if (b == 0x66) d->opsize16 = 1;
            if (b == 0x67) d->addr32 = 1;
            if (b == 0xf0) d->lock = 1;
            if (b == 0xf2 || b == 0xf3) d->rep = 1;
            d->pos++;
            continue;
        }
        if (is_rex(b)) {
            d->insn->rex = b;
            d->rex_w = (b & 0x08) != 0;
            d->pos++;
            status = need_bytes(d, 1);
            if (status != FVM_OK)
                return status;
            if (is_legacy_prefix(d->code[d->pos]) || is_rex(d->code[d->pos]))
                return fvm_error_set(d->err, FVM_E_UNSUPPORTED,
                                     "REX prefix %02x at byte %u is followed by another prefix %02x", b,
                                     (unsigned)(d->base + d->pos - 1), d->code[d->pos]);
        }
        return FVM_OK;
    }
}

/* ModRM, optional SIB, displacement. [rip+disp32] is mod=00 rm=101
 * whatever REX.B says; a SIB base of 101 with mod=00 means disp32, no base. */
static fvm_status decode_modrm(decoder *d)
{
    x64_insn *insn = d->insn;
    fvm_status status = need_bytes(d, 1);
    uint8_t modrm, mod, rm;
    size_t disp_size = 0;

    if (status != FVM_OK)
        return status;
    modrm = d->code[d->pos++];
    mod = modrm >> 6;
    rm = modrm & 7;
    insn->has_modrm = 1;
    insn->modrm = modrm;
    if (mod == 3)
        return FVM_OK;
    if (rm == 4) {
        uint8_t sib;
        status = need_bytes(d, 1);
        if (status != FVM_OK)
            return status;
        sib = d->code[d->pos++];
        if (mod == 0 && (sib & 7) == 5)
            disp_size = 4;
    }
    if (mod == 0 && rm == 5) {
        disp_size = 4;
        insn->cls = X64_INSN_RIP_RELATIVE;
    }
    if (mod == 1) disp_size = 1;
    if (mod == 2) disp_size = 4;
    if (disp_size == 0)
        return FVM_OK;
    status = need_bytes(d, disp_size);
    if (status != FVM_OK)
        return status;
    insn->disp_offset = (uint8_t)d->pos;
    insn->disp_size = (uint8_t)disp_size;
    if (insn->cls == X64_INSN_RIP_RELATIVE) {
        insn->rel_offset = insn->disp_offset;
        insn->rel_size = 4;
        insn->rel = (int32_t)get_le32(d->code + d->pos);
    }
    d->pos += disp_size;
    return FVM_OK;
}

static uint8_t modrm_reg(const x64_insn *insn) { return (insn->modrm >> 3) & 7; }
static uint8_t modrm_mod(const x64_insn *insn) { return insn->modrm >> 6; }

static fvm_status decode_operand(decoder *d, operand_kind kind)
{
    x64_insn *insn = d->insn;
    size_t size = 0;
    int relative = 0;
    fvm_status status;

    switch (kind) {
    case OPERAND_NONE: return FVM_OK;
    case OPERAND_IMM8: size = 1; break;
    case OPERAND_IMM16: size = 2; break;
    case OPERAND_IMM16_IMM8: size = 3; break;
    case OPERAND_IMMZ: size = d->opsize16 && !d->rex_w ? 2 : 4; break;
    case OPERAND_IMMV: size = d->rex_w ? 8 : d->opsize16 ? 2 : 4; break;
    case OPERAND_MOFFS: size = d->addr32 ? 4 : 8; break;
    case OPERAND_REL8: size = 1; relative = 1; break;
    case OPERAND_REL32: size = 4; relative = 1; break;
    }
    /* 66 on a relative branch truncates RIP to 16 bits on AMD but is
     * ignored on Intel: no single meaning, so no relocation either. */
    if (relative && d->opsize16)
        return refuse_opcode(d, 0, "with an operand-size prefix (vendor-specific branch width)");
    status = need_bytes(d, size);
    if (status != FVM_OK)
        return status;
    if (relative) {
        insn->rel_offset = (uint8_t)d->pos;
        insn->rel_size = (uint8_t)size;
        insn->rel = size == 1 ? (int8_t)d->code[d->pos] : (int32_t)get_le32(d->code + d->pos);
    } else {
        insn->imm_offset = (uint8_t)d->pos;
        insn->imm_size = (uint8_t)size;
    }
    d->pos += size;
    return FVM_OK;
}

static opcode_form form(int has_modrm, operand_kind operand)
{
    opcode_form f = { 1, 0, has_modrm, operand, X64_INSN_PLAIN, 0 };
    return f;
}

static opcode_form form_flow(operand_kind operand, x64_insn_class cls, uint32_t flags)
{
    opcode_form f = { 1, 0, 0, operand, cls, flags };
    return f;
}

static const opcode_form FORM_UNKNOWN = { 0, 0, 0, OPERAND_NONE, X64_INSN_PLAIN, 0 };
static const opcode_form FORM_INVALID = { 0, 1, 0, OPERAND_NONE, X64_INSN_PLAIN, 0 };

/* The one-byte opcode map in 64-bit mode. Prefixes, REX, 0F and VEX never
 * get here. Groups whose meaning depends on ModRM.reg are refined later. */
static opcode_form one_byte_form(uint8_t op)
{
    /* add/or/adc/sbb/and/sub/xor/cmp: r/m forms, then AL,imm8 and eAX,immz */
    if (op < 0x40 && (op & 7) < 6) {
        if ((op & 7) < 4) return form(1, OPERAND_NONE);
        return form(0, (op & 7) == 4 ? OPERAND_IMM8 : OPERAND_IMMZ);
    }
    if (op >= 0x50 && op <= 0x5f) return form(0, OPERAND_NONE);              /* push/pop r64 */
    if (op >= 0x70 && op <= 0x7f) return form_flow(OPERAND_REL8, X64_INSN_JCC_REL, 0);
    if (op >= 0x84 && op <= 0x8e) return form(1, OPERAND_NONE);              /* test xchg mov lea */
    if (op >= 0x90 && op <= 0x9f && op != 0x9a) return form(0, OPERAND_NONE); /* xchg nop cbw... */
    if (op >= 0xa0 && op <= 0xa3) return form(0, OPERAND_MOFFS);
    if (op >= 0xa4 && op <= 0xaf && op != 0xa8 && op != 0xa9) return form(0, OPERAND_NONE); /* string ops */
    if (op >= 0xb0 && op <= 0xb7) return form(0, OPERAND_IMM8);
    if (op >= 0xb8 && op <= 0xbf) return form(0, OPERAND_IMMV);
    if (op >= 0xd8 && op <= 0xdf) return form(1, OPERAND_NONE);              /* x87 */
    if (op >= 0xe4 && op <= 0xe7) return form(0, OPERAND_IMM8);              /* in/out imm8 */
    if (op >= 0xec && op <= 0xef) return form(0, OPERAND_NONE);              /* in/out dx */
    if (op >= 0xf8 && op <= 0xfd) return form(0, OPERAND_NONE);              /* clc..std */
    if (op >= 0x6c && op <= 0x6f) return form(0, OPERAND_NONE);              /* ins/outs */
    if (op >= 0xe0 && op <= 0xe3) return form_flow(OPERAND_REL8, X64_INSN_LOOP_REL, 0);

    switch (op) {
    case 0x63: return form(1, OPERAND_NONE);          /* movsxd */
    case 0x68: return form(0, OPERAND_IMMZ);          /* push imm */
    case 0x69: return form(1, OPERAND_IMMZ);          /* imul r, r/m, imm */
    case 0x6a: return form(0, OPERAND_IMM8);
    case 0x6b: return form(1, OPERAND_IMM8);
    case 0x80: return form(1, OPERAND_IMM8);          /* group 1 */
    case 0x81: return form(1, OPERAND_IMMZ);
    case 0x83: return form(1, OPERAND_IMM8);
    case 0x8f: return form(1, OPERAND_NONE);          /* pop r/m (reg 0 only) */
    case 0xa8: return form(0, OPERAND_IMM8);          /* test al, imm8 */
    case 0xa9: return form(0, OPERAND_IMMZ);
    case 0xc0: case 0xc1: return form(1, OPERAND_IMM8); /* group 2 shifts */
    case 0xc2: return form_flow(OPERAND_IMM16, X64_INSN_PLAIN, X64_FLAG_RET | X64_FLAG_ENDS_FLOW);
    case 0xc3: return form_flow(OPERAND_NONE, X64_INSN_PLAIN, X64_FLAG_RET | X64_FLAG_ENDS_FLOW);
    case 0xc6: return form(1, OPERAND_IMM8);          /* mov r/m8, imm8 (reg 0) */
    case 0xc7: return form(1, OPERAND_IMMZ);          /* mov r/m, immz (reg 0) */
    case 0xc8: return form(0, OPERAND_IMM16_IMM8);    /* enter */
    case 0xc9: return form(0, OPERAND_NONE);          /* leave */
    case 0xca: return form_flow(OPERAND_IMM16, X64_INSN_PLAIN, X64_FLAG_RET | X64_FLAG_ENDS_FLOW);
    case 0xcb: return form_flow(OPERAND_NONE, X64_INSN_PLAIN, X64_FLAG_RET | X64_FLAG_ENDS_FLOW);
    case 0xcc: return form_flow(OPERAND_NONE, X64_INSN_PLAIN, X64_FLAG_INT3 | X64_FLAG_ENDS_FLOW);
    case 0xcd: return form_flow(OPERAND_IMM8, X64_INSN_PLAIN, X64_FLAG_SYSCALL);
    case 0xcf: return form_flow(OPERAND_NONE, X64_INSN_PLAIN, X64_FLAG_RET | X64_FLAG_ENDS_FLOW); /* iret */
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: return form(1, OPERAND_NONE);
    case 0xd7: return form(0, OPERAND_NONE);          /* xlat */
    case 0xe8: return form_flow(OPERAND_REL32, X64_INSN_CALL_REL, X64_FLAG_CALL);
    case 0xe9: return form_flow(OPERAND_REL32, X64_INSN_JMP_REL, X64_FLAG_ENDS_FLOW);
    case 0xeb: return form_flow(OPERAND_REL8, X64_INSN_JMP_REL, X64_FLAG_ENDS_FLOW);
    case 0xf1: return form(0, OPERAND_NONE);          /* int1 */
    case 0xf4: return form_flow(OPERAND_NONE, X64_INSN_PLAIN, X64_FLAG_ENDS_FLOW); /* hlt */
    case 0xf5: return form(0, OPERAND_NONE);          /* cmc */
    case 0xf6: case 0xf7: case 0xfe: case 0xff: return form(1, OPERAND_NONE); /* groups 3, 4, 5 */
    /* Removed in 64-bit mode: push/pop seg, daa/das/aaa/aas, pusha/popa,
     * bound (62 is EVEX), 82 alias, far call/jmp ptr, les/lds (VEX), into,
     * aam/aad, salc. */
    case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17: case 0x1e: case 0x1f:
    case 0x27: case 0x2f: case 0x37: case 0x3f: case 0x60: case 0x61: case 0x82:
    case 0x9a: case 0xce: case 0xd4: case 0xd5: case 0xd6: case 0xea:
        return FORM_INVALID;
    default:
        return FORM_UNKNOWN; /* 62 (EVEX) and anything else */
    }
}

/* One-byte opcodes whose meaning (and immediate) depends on ModRM.reg. */
static fvm_status refine_one_byte_group(decoder *d, opcode_form *f)
{
    x64_insn *insn = d->insn;
    uint8_t reg = modrm_reg(insn), mod = modrm_mod(insn);

    switch (insn->opcode) {
    case 0x8d: /* lea needs a memory operand */
        if (mod == 3) return refuse_opcode(d, 1, "(lea with a register operand)");
        break;
    case 0x8f: /* reg != 0 is AMD's XOP escape */
        if (reg != 0) return refuse_opcode(d, 0, "(XOP encoding)");
        break;
    case 0xc6: case 0xc7: /* only mov; C6 F8 / C7 F8 are xabort / xbegin */
        if (reg != 0) return refuse_opcode(d, 0, "(xabort/xbegin or reserved group member)");
        break;
    case 0xf6: case 0xf7: /* test takes an immediate; /1 is an undocumented alias */
        if (reg == 1) return refuse_opcode(d, 0, "(undocumented test alias /1)");
        if (reg == 0) f->operand = insn->opcode == 0xf6 ? OPERAND_IMM8 : OPERAND_IMMZ;
        break;
    case 0xfe: /* inc/dec r/m8 only */
        if (reg > 1) return refuse_opcode(d, 1, "(reserved group 4 member)");
        break;
    case 0xff:
        if (reg == 7 || ((reg == 3 || reg == 5) && mod == 3))
            return refuse_opcode(d, 1, "(reserved group 5 member)");
        if (reg == 2 || reg == 3) f->flags |= X64_FLAG_CALL | X64_FLAG_INDIRECT_CALL;
        if (reg == 4 || reg == 5) f->flags |= X64_FLAG_INDIRECT_JMP | X64_FLAG_ENDS_FLOW;
        break;
    default:
        break;
    }
    return FVM_OK;
}

/* The 0F map (two-byte opcodes) without VEX. */
static opcode_form two_byte_form(uint8_t op)
{
    if (op >= 0x10 && op <= 0x1f) return form(1, OPERAND_NONE);  /* SSE moves, prefetch, hint nops */
    if (op >= 0x28 && op <= 0x2f) return form(1, OPERAND_NONE);
    if (op >= 0x40 && op <= 0x6f) return form(1, OPERAND_NONE);  /* cmovcc, SSE/MMX arithmetic */
    if (op >= 0x70 && op <= 0x73) return form(1, OPERAND_IMM8);  /* pshuf*, shift groups */
    if (op >= 0x74 && op <= 0x76) return form(1, OPERAND_NONE);
    if (op >= 0x7c && op <= 0x7f) return form(1, OPERAND_NONE);
    if (op >= 0x80 && op <= 0x8f) return form_flow(OPERAND_REL32, X64_INSN_JCC_REL, 0);
    if (op >= 0x90 && op <= 0x9f) return form(1, OPERAND_NONE);  /* setcc */
    if (op >= 0xb0 && op <= 0xb7) return form(1, OPERAND_NONE);  /* cmpxchg lss btr lfs lgs movzx */
    if (op >= 0xbb && op <= 0xbf) return form(1, OPERAND_NONE);  /* btc bsf bsr movsx */
    if (op >= 0xc8 && op <= 0xcf) return form(0, OPERAND_NONE);  /* bswap */
    if (op >= 0xd0 && op <= 0xfe) return form(1, OPERAND_NONE);  /* SSE/MMX */
    if (op >= 0x30 && op <= 0x35) return form(0, OPERAND_NONE);  /* wrmsr rdtsc rdmsr rdpmc sysenter sysexit */

    switch (op) {
    case 0x00: case 0x01: case 0x02: case 0x03: return form(1, OPERAND_NONE); /* groups 6, 7, lar, lsl */
    case 0x05: return form_flow(OPERAND_NONE, X64_INSN_PLAIN, X64_FLAG_SYSCALL);
    case 0x06: case 0x07: case 0x08: case 0x09: return form(0, OPERAND_NONE); /* clts sysret invd wbinvd */
    case 0x0b: return form_flow(OPERAND_NONE, X64_INSN_PLAIN, X64_FLAG_ENDS_FLOW); /* ud2 */
    case 0x0d: return form(1, OPERAND_NONE);                 /* prefetch(w) */
    case 0x37: return form(0, OPERAND_NONE);                 /* getsec */
    case 0x77: return form(0, OPERAND_NONE);                 /* emms */
    case 0xa0: case 0xa1: case 0xa2: case 0xa8: case 0xa9: case 0xaa:
        return form(0, OPERAND_NONE);                        /* push/pop fs/gs, cpuid, rsm */
    case 0xa3: case 0xa5: case 0xab: case 0xad: case 0xae: case 0xaf:
        return form(1, OPERAND_NONE);                        /* bt shld bts shrd group15 imul */
    case 0xa4: case 0xac: return form(1, OPERAND_IMM8);      /* shld/shrd imm8 */
    case 0xb8: return form(1, OPERAND_NONE);                 /* popcnt (F3 only, checked later) */
    case 0xb9: {                                             /* ud1, with ModRM */
        opcode_form ud1 = form(1, OPERAND_NONE);
        ud1.flags = X64_FLAG_ENDS_FLOW;
        return ud1;
    }
    case 0xba: return form(1, OPERAND_IMM8);                 /* group 8: bt* imm8 */
    case 0xc0: case 0xc1: case 0xc3: case 0xc7: return form(1, OPERAND_NONE); /* xadd movnti group9 */
    case 0xc2: case 0xc4: case 0xc5: case 0xc6: return form(1, OPERAND_IMM8); /* cmpps pinsrw pextrw shufps */
    default:
        /* 04 0a 0c 0e 0f(3DNow!) 20-27 (mov cr/dr: ModRM ignores mod) 36 39 3b-3f
         * 78 79 (vmread/vmwrite vs. SSE4a extrq/insertq) 7a 7b a6 a7 ff ... */
        return FORM_UNKNOWN;
    }
}

static int in_ranges(uint8_t op, const uint8_t (*ranges)[2], size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (op >= ranges[i][0] && op <= ranges[i][1])
            return 1;
    return 0;
}

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* 0F 38 xx: every legacy member has ModRM and no immediate. */
static const uint8_t map_0f38_known[][2] = {
    { 0x00, 0x0b }, { 0x10, 0x10 }, { 0x14, 0x15 }, { 0x17, 0x17 }, { 0x1c, 0x1e },
    { 0x20, 0x25 }, { 0x28, 0x2b }, { 0x30, 0x35 }, { 0x37, 0x41 }, { 0x80, 0x82 },
    { 0xc8, 0xcd }, { 0xcf, 0xcf }, { 0xdb, 0xdf }, { 0xf0, 0xf1 }, { 0xf6, 0xf6 },
};
/* 0F 3A xx: ModRM and imm8. */
static const uint8_t map_0f3a_known[][2] = {
    { 0x08, 0x0f }, { 0x14, 0x17 }, { 0x20, 0x22 }, { 0x40, 0x42 }, { 0x44, 0x44 },
    { 0x60, 0x63 }, { 0xcc, 0xcc }, { 0xce, 0xcf }, { 0xdf, 0xdf },
};
/* VEX maps, each a list of known opcodes. VEX 0F 38 members have ModRM and
 * no immediate; VEX 0F 3A members have ModRM and imm8. */
static const uint8_t vex_0f_modrm[][2] = {
    { 0x10, 0x17 }, { 0x28, 0x2f }, { 0x50, 0x6f }, { 0x74, 0x76 }, { 0x7c, 0x7f },
    { 0xae, 0xae }, { 0xd0, 0xfe },
};
static const uint8_t vex_0f_modrm_imm8[][2] = {
    { 0x70, 0x73 }, { 0xc2, 0xc2 }, { 0xc4, 0xc6 },
};
static const uint8_t vex_0f38_known[][2] = {
    { 0x00, 0x0f }, { 0x13, 0x13 }, { 0x16, 0x1e }, { 0x20, 0x25 }, { 0x28, 0x2f },
    { 0x30, 0x47 }, { 0x58, 0x5a }, { 0x78, 0x79 }, { 0x8c, 0x8c }, { 0x8e, 0x8e },
    { 0x90, 0x93 }, { 0x96, 0x9f }, { 0xa6, 0xaf }, { 0xb6, 0xbf }, { 0xdb, 0xdf },
    { 0xf2, 0xf3 }, { 0xf5, 0xf7 },
};
static const uint8_t vex_0f3a_known[][2] = {
    { 0x00, 0x06 }, { 0x08, 0x0f }, { 0x14, 0x19 }, { 0x1d, 0x1d }, { 0x20, 0x22 },
    { 0x38, 0x39 }, { 0x40, 0x42 }, { 0x44, 0x44 }, { 0x46, 0x46 }, { 0x4a, 0x4c },
    { 0x60, 0x63 }, { 0xdf, 0xdf }, { 0xf0, 0xf0 },
};

static opcode_form three_byte_form(uint8_t map, uint8_t op)
{
    if (map == X64_MAP_0F38)
        return in_ranges(op, map_0f38_known, COUNT_OF(map_0f38_known)) ? form(1, OPERAND_NONE) : FORM_UNKNOWN;
    return in_ranges(op, map_0f3a_known, COUNT_OF(map_0f3a_known)) ? form(1, OPERAND_IMM8) : FORM_UNKNOWN;
}

static opcode_form vex_form(uint8_t map, uint8_t op)
{
    switch (map) {
    case X64_MAP_0F:
        if (op == 0x77) return form(0, OPERAND_NONE); /* vzeroupper / vzeroall */
        if (in_ranges(op, vex_0f_modrm, COUNT_OF(vex_0f_modrm))) return form(1, OPERAND_NONE);
        if (in_ranges(op, vex_0f_modrm_imm8, COUNT_OF(vex_0f_modrm_imm8))) return form(1, OPERAND_IMM8);
        return FORM_UNKNOWN;
    case X64_MAP_0F38:
        return in_ranges(op, vex_0f38_known, COUNT_OF(vex_0f38_known)) ? form(1, OPERAND_NONE) : FORM_UNKNOWN;
    default:
        return in_ranges(op, vex_0f3a_known, COUNT_OF(vex_0f3a_known)) ? form(1, OPERAND_IMM8) : FORM_UNKNOWN;
    }
}

/* Reads the opcode (and VEX bytes) at d->pos and returns its form. */
static fvm_status decode_opcode(decoder *d, opcode_form *f)
{
    x64_insn *insn = d->insn;
    uint8_t op = d->code[d->pos];
    fvm_status status;

    insn->opcode_offset = (uint8_t)d->pos;
    if (op == 0xc4 || op == 0xc5) {
        /* VEX: in 64-bit mode C4/C5 are never les/lds. The map comes from
         * C4's m-mmmm field (C5 implies 0F); 66/F2/F3/F0/REX before it #UD. */
        size_t vex_len = op == 0xc4 ? 3 : 2;
        status = need_bytes(d, vex_len + 1);
        if (status != FVM_OK)
            return status;
        insn->flags |= X64_FLAG_VEX;
        insn->map = X64_MAP_0F;
        if (op == 0xc4) {
            uint8_t mmmmm = d->code[d->pos + 1] & 0x1f;
            if (mmmmm < 1 || mmmmm > 3)
                return fvm_error_set(d->err, FVM_E_UNSUPPORTED, "unsupported VEX opcode map %u at byte %u",
                                     mmmmm, (unsigned)(d->base + d->pos));
            insn->map = mmmmm;
        }
        if (d->opsize16 || d->rep || d->lock || insn->rex)
            return fvm_error_set(d->err, FVM_E_INVALID,
                                 "VEX prefix at byte %u after a 66/F2/F3/F0/REX prefix",
                                 (unsigned)(d->base + d->pos));
        d->pos += vex_len;
        insn->opcode = d->code[d->pos++];
        *f = vex_form(insn->map, insn->opcode);
        return FVM_OK;
    }
    if (op != 0x0f) {
        insn->map = X64_MAP_ONE_BYTE;
        insn->opcode = op;
        d->pos++;
        *f = one_byte_form(op);
        return FVM_OK;
    }
    status = need_bytes(d, 2);
    if (status != FVM_OK)
        return status;
    op = d->code[d->pos + 1];
    if (op == 0x38 || op == 0x3a) {
        status = need_bytes(d, 3);
        if (status != FVM_OK)
            return status;
        insn->map = op == 0x38 ? X64_MAP_0F38 : X64_MAP_0F3A;
        insn->opcode = d->code[d->pos + 2];
        d->pos += 3;
        *f = three_byte_form(insn->map, insn->opcode);
        return FVM_OK;
    }
    insn->map = X64_MAP_0F;
    insn->opcode = op;
    d->pos += 2;
    *f = two_byte_form(op);
    return FVM_OK;
}

static fvm_status refine_two_byte_group(decoder *d, opcode_form *f)
{
    x64_insn *insn = d->insn;
    uint8_t reg = modrm_reg(insn);

    if (insn->map != X64_MAP_0F || (insn->flags & X64_FLAG_VEX))
        return FVM_OK;
    switch (insn->opcode) {
    case 0x00:
        if (reg >= 6) return refuse_opcode(d, 1, "(reserved group 6 member)");
        break;
    case 0xb8: /* without F3 this is IA-64's jmpe, which #UDs */
        if (!d->rep) return refuse_opcode(d, 1, "(jmpe: popcnt needs an F3 prefix)");
        break;
    case 0xba:
        if (reg < 4) return refuse_opcode(d, 1, "(reserved group 8 member)");
        break;
    default:
        break;
    }
    (void)f;
    return FVM_OK;
}

static fvm_status decode_at(const uint8_t *code, size_t avail, size_t base, x64_insn *out, fvm_error *err)
{
    decoder d;
    opcode_form f = FORM_UNKNOWN;
    fvm_status status;

    memset(out, 0, sizeof *out);
    memset(&d, 0, sizeof d);
    d.code = code;
    d.avail = avail;
    d.base = base;
    d.insn = out;
    d.err = err;
    if (!code && avail)
        return fvm_error_set(err, FVM_E_INVALID, "no code to decode");

    status = decode_prefixes(&d);
    if (status == FVM_OK)
        status = decode_opcode(&d, &f);
    if (status != FVM_OK)
        return status;
    out->prefix_count = out->opcode_offset;
    if (d.opsize16) out->flags |= X64_FLAG_OPSIZE16;
    if (d.addr32) out->flags |= X64_FLAG_ADDR32;
    if (d.lock) out->flags |= X64_FLAG_LOCK;
    if (!f.known)
        return refuse_opcode(&d, f.invalid, NULL);

    out->cls = f.cls;
    if (f.has_modrm) {
        status = decode_modrm(&d);
        if (status == FVM_OK && out->map == X64_MAP_ONE_BYTE)
            status = refine_one_byte_group(&d, &f);
        if (status == FVM_OK)
            status = refine_two_byte_group(&d, &f);
        if (status != FVM_OK)
            return status;
    }
    out->flags |= f.flags;
    if (out->cls == X64_INSN_JCC_REL)
        out->condition = out->opcode & 0x0f;
    status = decode_operand(&d, f.operand);
    if (status != FVM_OK)
        return status;
    out->length = (uint8_t)d.pos;
    return FVM_OK;
}

fvm_status x64_decode(const uint8_t *code, size_t avail, x64_insn *out, fvm_error *err)
{
    x64_insn scratch;
    return decode_at(code, avail, 0, out ? out : &scratch, err);
}

uint64_t x64_insn_target(const x64_insn *insn, uint64_t insn_addr)
{
    return insn_addr + insn->length + (uint64_t)(int64_t)insn->rel;
}

/* ---- encoding ---------------------------------------------------------- */

int x64_rel32_fits(uint64_t next_insn_addr, uint64_t target)
{
    int64_t distance = (int64_t)(target - next_insn_addr);
    return distance >= INT32_MIN && distance <= INT32_MAX;
}

static int32_t rel32_to(uint64_t next_insn_addr, uint64_t target)
{
    return (int32_t)(int64_t)(target - next_insn_addr);
}

fvm_status x64_write_jmp_rel32(uint8_t *dst, size_t dst_cap, uint64_t from_addr, uint64_t to_addr,
                               fvm_error *err)
{
    if (!dst || dst_cap < X64_JMP_REL32_LEN)
        return fvm_error_set(err, FVM_E_RANGE, "jmp rel32 needs %d bytes, have %u", X64_JMP_REL32_LEN,
                             (unsigned)(dst ? dst_cap : 0));
    if (!x64_rel32_fits(from_addr + X64_JMP_REL32_LEN, to_addr))
        return fvm_error_set(err, FVM_E_RANGE, "jmp from %p to %p is beyond +-2 GB", (void *)(uintptr_t)from_addr,
                             (void *)(uintptr_t)to_addr);
    dst[0] = 0xe9;
    put_le32(dst + 1, (uint32_t)rel32_to(from_addr + X64_JMP_REL32_LEN, to_addr));
    return FVM_OK;
}

fvm_status x64_write_jmp_abs(uint8_t *dst, size_t dst_cap, uint64_t to_addr, fvm_error *err)
{
    static const uint8_t jmp_rip0[6] = { 0xff, 0x25, 0, 0, 0, 0 }; /* jmp [rip+0] */
    if (!dst || dst_cap < X64_JMP_ABS_LEN)
        return fvm_error_set(err, FVM_E_RANGE, "absolute jmp needs %d bytes, have %u", X64_JMP_ABS_LEN,
                             (unsigned)(dst ? dst_cap : 0));
    memcpy(dst, jmp_rip0, sizeof jmp_rip0);
    put_le64(dst + 6, to_addr);
    return FVM_OK;
}

/* Appends to the trampoline buffer, tracking the run-time address. */
typedef struct emitter {
    uint8_t *dst;
    uint64_t dst_addr;
    size_t cap;
    size_t len;
    fvm_error *err;
} emitter;

static uint64_t emitter_here(const emitter *e) { return e->dst_addr + e->len; }

static fvm_status emitter_room(emitter *e, size_t count)
{
    if (e->len + count > e->cap)
        return fvm_error_set(e->err, FVM_E_RANGE, "trampoline needs more than the %u bytes available",
                             (unsigned)e->cap);
    return FVM_OK;
}

static fvm_status emit_bytes(emitter *e, const uint8_t *bytes, size_t count)
{
    fvm_status status = emitter_room(e, count);
    if (status != FVM_OK)
        return status;
    memcpy(e->dst + e->len, bytes, count);
    e->len += count;
    return FVM_OK;
}

/* Relative op (E9 jmp / E8 call) with rel32 when in reach. */
static fvm_status emit_rel32_op(emitter *e, uint8_t opcode, uint64_t target)
{
    uint8_t code[5];
    code[0] = opcode;
    put_le32(code + 1, (uint32_t)rel32_to(emitter_here(e) + sizeof code, target));
    return emit_bytes(e, code, sizeof code);
}

static fvm_status emit_jmp(emitter *e, uint64_t target)
{
    fvm_status status;
    if (x64_rel32_fits(emitter_here(e) + X64_JMP_REL32_LEN, target))
        return emit_rel32_op(e, 0xe9, target);
    status = emitter_room(e, X64_JMP_ABS_LEN);
    if (status != FVM_OK)
        return status;
    x64_write_jmp_abs(e->dst + e->len, X64_JMP_ABS_LEN, target, e->err);
    e->len += X64_JMP_ABS_LEN;
    return FVM_OK;
}

/* Out of reach: `call [rip+2]; jmp +8; dq target` - the return address is
 * the short jmp, which skips the inline address. */
static fvm_status emit_call(emitter *e, uint64_t target)
{
    uint8_t code[16] = { 0xff, 0x15, 0x02, 0, 0, 0, 0xeb, 0x08 };
    if (x64_rel32_fits(emitter_here(e) + 5, target))
        return emit_rel32_op(e, 0xe8, target);
    put_le64(code + 8, target);
    return emit_bytes(e, code, sizeof code);
}

/* jcc rel32 (0F 80+cc), or out of reach: the inverted condition skips
 * over an absolute jmp (`j!cc +14; jmp [rip+0]; dq target`). */
static fvm_status emit_jcc(emitter *e, uint8_t condition, uint64_t target)
{
    uint8_t code[16];
    fvm_status status;
    if (x64_rel32_fits(emitter_here(e) + 6, target)) {
        code[0] = 0x0f;
        code[1] = (uint8_t)(0x80 | condition);
        put_le32(code + 2, (uint32_t)rel32_to(emitter_here(e) + 6, target));
        return emit_bytes(e, code, 6);
    }
    status = emitter_room(e, 2 + X64_JMP_ABS_LEN);
    if (status != FVM_OK)
        return status;
    code[0] = (uint8_t)(0x70 | (condition ^ 1)); /* x86 conditions come in complementary pairs */
    code[1] = X64_JMP_ABS_LEN;
    x64_write_jmp_abs(code + 2, X64_JMP_ABS_LEN, target, e->err);
    return emit_bytes(e, code, 2 + X64_JMP_ABS_LEN);
}

/* Copies the instruction verbatim but re-aims its [rip+disp32] operand. */
static fvm_status emit_rip_relative(emitter *e, const uint8_t *code, const x64_insn *insn, uint64_t target,
                                    size_t src_offset)
{
    uint64_t next = emitter_here(e) + insn->length;
    fvm_status status;
    if (insn->flags & X64_FLAG_ADDR32)
        return fvm_error_set(e->err, FVM_E_UNSUPPORTED,
                             "[eip+disp32] operand (67 prefix) at byte %u cannot be relocated",
                             (unsigned)src_offset);
    if (!x64_rel32_fits(next, target))
        return fvm_error_set(e->err, FVM_E_RANGE,
                             "RIP-relative operand at byte %u: target %p is beyond +-2 GB of the trampoline at %p",
                             (unsigned)src_offset, (void *)(uintptr_t)target, (void *)(uintptr_t)emitter_here(e));
    status = emit_bytes(e, code, insn->length);
    if (status != FVM_OK)
        return status;
    put_le32(e->dst + e->len - insn->length + insn->rel_offset, (uint32_t)rel32_to(next, target));
    return FVM_OK;
}

static const char *flow_end_name(const x64_insn *insn)
{
    if (insn->flags & X64_FLAG_RET) return "ret";
    if (insn->flags & X64_FLAG_INT3) return "int3";
    if (insn->cls == X64_INSN_JMP_REL || (insn->flags & X64_FLAG_INDIRECT_JMP)) return "jmp";
    return "an instruction that does not fall through";
}

/* Relocates one stolen instruction into the trampoline. */
static fvm_status relocate(emitter *e, const uint8_t *code, const x64_insn *insn, uint64_t insn_addr,
                           size_t src_offset)
{
    uint64_t target = x64_insn_target(insn, insn_addr);
    switch (insn->cls) {
    case X64_INSN_PLAIN:
        return emit_bytes(e, code, insn->length);
    case X64_INSN_RIP_RELATIVE:
        return emit_rip_relative(e, code, insn, target, src_offset);
    case X64_INSN_JMP_REL:
        return emit_jmp(e, target);   /* prefixes (bnd, hints) are dropped */
    case X64_INSN_CALL_REL:
        return emit_call(e, target);
    case X64_INSN_JCC_REL:
        return emit_jcc(e, insn->condition, target);
    case X64_INSN_LOOP_REL:
    default:
        return fvm_error_set(e->err, FVM_E_UNSUPPORTED,
                             "loop/jrcxz (opcode %02x) at byte %u has only a rel8 form and cannot be relocated",
                             insn->opcode, (unsigned)src_offset);
    }
}

fvm_status x64_build_trampoline(const uint8_t *src, size_t src_avail, uint64_t src_addr, size_t min_len,
                                uint8_t *dst, uint64_t dst_addr, size_t dst_cap,
                                size_t *stolen_len, size_t *tramp_len,
                                x64_trampoline_map *map, fvm_error *err)
{
    emitter e = { dst, dst_addr, dst_cap, 0, err };
    uint64_t branch_target[X64_MAX_PATCH_LEN];
    size_t branch_offset[X64_MAX_PATCH_LEN];
    size_t branch_count = 0;
    size_t offset = 0;
    fvm_status status;

    if (stolen_len) *stolen_len = 0;
    if (tramp_len) *tramp_len = 0;
    if (map) map->count = 0;
    if (!src || !dst || !stolen_len || !tramp_len)
        return fvm_error_set(err, FVM_E_INVALID, "x64_build_trampoline: missing buffer or result pointer");
    if (min_len == 0 || min_len > X64_MAX_PATCH_LEN)
        return fvm_error_set(err, FVM_E_INVALID, "patch length %u is outside 1..%d", (unsigned)min_len,
                             X64_MAX_PATCH_LEN);

    while (offset < min_len) {
        x64_insn insn;
        size_t end;
        if (offset >= src_avail)
            return fvm_error_set(err, FVM_E_INVALID, "truncated code: %u bytes available, patch needs %u",
                                 (unsigned)src_avail, (unsigned)min_len);
        status = decode_at(src + offset, src_avail - offset, offset, &insn, err);
        if (status != FVM_OK)
            return status;
        end = offset + insn.length;
        if ((insn.flags & X64_FLAG_ENDS_FLOW) && end < min_len)
            return fvm_error_set(err, FVM_E_UNSUPPORTED,
                                 "function ends at byte %u (%s) before the %u-byte patch", (unsigned)offset,
                                 flow_end_name(&insn), (unsigned)min_len);
        if ((insn.flags & X64_FLAG_CALL) && end < min_len)
            return fvm_error_set(err, FVM_E_UNSUPPORTED,
                                 "call at byte %u would return into the %u patched bytes", (unsigned)offset,
                                 (unsigned)min_len);
        if (insn.cls == X64_INSN_JMP_REL || insn.cls == X64_INSN_JCC_REL || insn.cls == X64_INSN_CALL_REL) {
            branch_target[branch_count] = x64_insn_target(&insn, src_addr + offset);
            branch_offset[branch_count++] = offset;
        }
        if (map) {
            map->src_offset[map->count] = (uint8_t)offset;
            map->dst_offset[map->count] = (uint16_t)e.len;
            map->count++;
        }
        status = relocate(&e, src + offset, &insn, src_addr + offset, offset);
        if (status != FVM_OK)
            return status;
        offset = end;
    }

    /* Only now is the stolen range final: a branch into it would land on
     * bytes that the patch replaced. */
    for (size_t i = 0; i < branch_count; i++) {
        if (branch_target[i] >= src_addr && branch_target[i] < src_addr + offset)
            return fvm_error_set(err, FVM_E_UNSUPPORTED,
                                 "branch at byte %u targets byte %u inside the %u stolen bytes",
                                 (unsigned)branch_offset[i], (unsigned)(branch_target[i] - src_addr),
                                 (unsigned)offset);
    }

    status = emit_jmp(&e, src_addr + offset);
    if (status != FVM_OK)
        return status;
    *stolen_len = offset;
    *tramp_len = e.len;
    return FVM_OK;
}

int x64_trampoline_map_offset(const x64_trampoline_map *map, size_t src_offset, size_t *dst_offset)
{
    for (size_t i = 0; map && i < map->count; i++) {
        if (map->src_offset[i] == src_offset) {
            if (dst_offset)
                *dst_offset = map->dst_offset[i];
            return 1;
        }
    }
    return 0;
}
