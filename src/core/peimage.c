/* peimage.c - the kind of a program file from its head (see peimage.h).
 * Reads only: the DOS header's e_lfanew, the "PE\0\0" signature, the COFF
 * machine and the optional header's magic. Everything is bounds-checked
 * against the bytes given; nothing is trusted. */
#include "core/peimage.h"

#define DOS_LFANEW_AT 0x3c
#define PE_MACHINE_X64 0x8664u
#define OPT_MAGIC_PE32 0x10bu
#define OPT_MAGIC_PE32_PLUS 0x20bu

static uint16_t u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

peimage_kind peimage_classify(const uint8_t *head, size_t len, size_t *need, uint16_t *machine, int *is_pe32)
{
    if (need)
        *need = 0;
    if (machine)
        *machine = 0;
    if (is_pe32)
        *is_pe32 = 0;
    if (!head)
        len = 0;
    if (len >= 4 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F')
        return PEIMAGE_ELF;
    if (len >= 2 && head[0] == '#' && head[1] == '!')
        return PEIMAGE_SCRIPT;
    if (len < 2 || head[0] != 'M' || head[1] != 'Z')
        return PEIMAGE_NOT_MZ;
    if (len < DOS_LFANEW_AT + 4)
        return PEIMAGE_MZ_ONLY;   /* too short for a DOS header: no PE header either */
    uint32_t lfanew = u32(head + DOS_LFANEW_AT);
    /* Signature (4), COFF header (20), optional header magic (2). */
    uint64_t end = (uint64_t)lfanew + 4 + 20 + 2;
    if (lfanew < DOS_LFANEW_AT + 4 || end > PEIMAGE_MAX_HEAD)
        return PEIMAGE_MZ_ONLY;
    if (end > len) {
        if (need)
            *need = (size_t)end;
        return PEIMAGE_NEED_MORE;
    }
    const uint8_t *pe = head + lfanew;
    if (pe[0] != 'P' || pe[1] != 'E' || pe[2] || pe[3])
        return PEIMAGE_MZ_ONLY;
    uint16_t m = u16(pe + 4);
    uint16_t magic = u16(pe + 24);
    if (machine)
        *machine = m;
    if (is_pe32)
        *is_pe32 = magic == OPT_MAGIC_PE32;
    if (m == PE_MACHINE_X64 && magic == OPT_MAGIC_PE32_PLUS)
        return PEIMAGE_X64;
    return PEIMAGE_PE_OTHER;
}

int peimage_runs_on_linux(peimage_kind kind)
{
    return kind == PEIMAGE_ELF || kind == PEIMAGE_SCRIPT;
}
