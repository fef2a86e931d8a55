/* inject.c - import-table injection of fvm.dll (see inject.h for the idea).
 *
 * Everything is done with cross-process memory calls on the suspended child;
 * nothing runs in the child until the loader starts, and by then the loader
 * sees fvm.dll as the image's first import. */
#include "common/inject.h"

#include <winternl.h>

#define IMPORT_RVA_LIMIT 0x7ff00000ull  /* the block must be reachable by a 32-bit RVA */

static void set_why(char *why, size_t why_size, const char *msg, DWORD code)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    if (!why || !why_size)
        return;
    for (; msg[i] && i + 1 < why_size; i++)
        why[i] = msg[i];
    if (code && i + 12 < why_size) {
        why[i++] = ' ';
        why[i++] = '0';
        why[i++] = 'x';
        for (int s = 28; s >= 0; s -= 4)
            why[i++] = hex[(code >> s) & 15];
    }
    why[i] = 0;
}

static BOOL read_child(HANDLE process, uint64_t addr, void *buf, size_t size)
{
    SIZE_T done = 0;
    return ReadProcessMemory(process, (void *)(UINT_PTR)addr, buf, size, &done) && done == size;
}

static BOOL write_child(HANDLE process, uint64_t addr, const void *buf, size_t size)
{
    SIZE_T done = 0;
    return WriteProcessMemory(process, (void *)(UINT_PTR)addr, buf, size, &done) && done == size;
}

/* Writes into read-only image memory (the PE headers) of the child. */
static BOOL write_child_protected(HANDLE process, uint64_t addr, const void *buf, size_t size)
{
    DWORD old, ignored;
    if (!VirtualProtectEx(process, (void *)(UINT_PTR)addr, size, PAGE_READWRITE, &old))
        return FALSE;
    BOOL ok = write_child(process, addr, buf, size);
    VirtualProtectEx(process, (void *)(UINT_PTR)addr, size, old, &ignored);
    return ok;
}

/* Finds and commits `size` bytes of free memory above the image, within
 * reach of a 32-bit RVA from its base. */
static uint64_t alloc_above_image(HANDLE process, uint64_t base, uint64_t image_size, size_t size)
{
    uint64_t addr = (base + image_size + 0xffff) & ~0xffffull;
    while (addr + size < base + IMPORT_RVA_LIMIT) {
        MEMORY_BASIC_INFORMATION mbi;
        if (!VirtualQueryEx(process, (void *)(UINT_PTR)addr, &mbi, sizeof mbi))
            return 0;
        uint64_t region = (uint64_t)(UINT_PTR)mbi.BaseAddress;
        uint64_t region_end = region + mbi.RegionSize;
        if (mbi.State == MEM_FREE) {
            uint64_t start = (addr + 0xffff) & ~0xffffull;
            if (start + size <= region_end) {
                void *p = VirtualAllocEx(process, (void *)(UINT_PTR)start, size,
                                         MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
                if (p)
                    return (uint64_t)(UINT_PTR)p;
            }
        }
        addr = region_end;
    }
    return 0;
}

NTSTATUS fvm_inject_process(HANDLE process, const fvm_box_config *config,
                            char *why, size_t why_size)
{
    PROCESS_BASIC_INFORMATION pbi;
    ULONG got = 0;
    NTSTATUS status = NtQueryInformationProcess(process, ProcessBasicInformation, &pbi, sizeof pbi, &got);
    if (status < 0) {
        set_why(why, why_size, "cannot query the new process", (DWORD)status);
        return status;
    }

    /* PEB.ImageBaseAddress is at offset 0x10 on x64. */
    uint64_t base = 0;
    if (!read_child(process, (uint64_t)(UINT_PTR)pbi.PebBaseAddress + 0x10, &base, sizeof base) || !base) {
        set_why(why, why_size, "cannot read the image base of the new process", GetLastError());
        return STATUS_ACCESS_DENIED;
    }

    IMAGE_DOS_HEADER dos;
    IMAGE_NT_HEADERS64 nt;
    if (!read_child(process, base, &dos, sizeof dos) || dos.e_magic != IMAGE_DOS_SIGNATURE ||
        !read_child(process, base + (uint32_t)dos.e_lfanew, &nt, sizeof nt) ||
        nt.Signature != IMAGE_NT_SIGNATURE) {
        set_why(why, why_size, "the new process has no readable PE image", 0);
        return STATUS_INVALID_IMAGE_FORMAT;
    }
    if (nt.OptionalHeader.Magic != IMAGE_NT_OPTIONAL_HDR64_MAGIC) {
        set_why(why, why_size, "the new process is not a 64-bit image (32-bit is not supported)", 0);
        return STATUS_INVALID_IMAGE_FORMAT;
    }

    IMAGE_DATA_DIRECTORY *dirs = nt.OptionalHeader.DataDirectory;
    IMAGE_DATA_DIRECTORY imports = dirs[IMAGE_DIRECTORY_ENTRY_IMPORT];
    IMAGE_DATA_DIRECTORY bound = dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT];
    size_t original_count = imports.Size / sizeof(IMAGE_IMPORT_DESCRIPTOR);
    if (original_count > 4096) {
        set_why(why, why_size, "implausible import directory in the new process", 0);
        return STATUS_INVALID_IMAGE_FORMAT;
    }

    size_t block_size = sizeof(fvm_inject_block) + (original_count + 2) * sizeof(IMAGE_IMPORT_DESCRIPTOR);
    fvm_inject_block *block = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, block_size);
    if (!block) {
        set_why(why, why_size, "out of memory", 0);
        return STATUS_NO_MEMORY;
    }
    memcpy(block->magic, FVM_INJECT_MAGIC, 8);
    block->block_size = (uint32_t)block_size;
    block->import_rva = imports.VirtualAddress;
    block->import_size = imports.Size;
    block->bound_rva = bound.VirtualAddress;
    block->bound_size = bound.Size;
    block->image_base = base;
    block->config = *config;
    if (!WideCharToMultiByte(CP_ACP, WC_NO_BEST_FIT_CHARS, config->dll_path, -1, block->dll_name,
                             sizeof block->dll_name, NULL, NULL)) {
        HeapFree(GetProcessHeap(), 0, block);
        set_why(why, why_size, "the path of fvm.dll cannot be written in the ANSI code page", 0);
        return STATUS_OBJECT_NAME_INVALID;
    }

    /* The original descriptors go after ours; a zero one ends the list
     * (HEAP_ZERO_MEMORY). The original table may have no terminator
     * counted in Size, so read only whole descriptors of it. */
    size_t n = 1;
    for (size_t i = 0; i < original_count; i++) {
        IMAGE_IMPORT_DESCRIPTOR d;
        if (!read_child(process, base + imports.VirtualAddress + i * sizeof d, &d, sizeof d)) {
            HeapFree(GetProcessHeap(), 0, block);
            set_why(why, why_size, "cannot read the import directory of the new process", GetLastError());
            return STATUS_INVALID_IMAGE_FORMAT;
        }
        if (!d.Name)
            break;
        block->descriptors[n++] = d;
    }

    uint64_t remote = alloc_above_image(process, base, nt.OptionalHeader.SizeOfImage, block_size);
    if (!remote) {
        HeapFree(GetProcessHeap(), 0, block);
        set_why(why, why_size, "no free memory near the image of the new process", 0);
        return STATUS_NO_MEMORY;
    }
    uint32_t rva = (uint32_t)(remote - base);
    block->lookup[0].u1.Ordinal = IMAGE_ORDINAL_FLAG64 | 1;
    block->iat[0].u1.Ordinal = IMAGE_ORDINAL_FLAG64 | 1;
    block->descriptors[0].OriginalFirstThunk = rva + (uint32_t)offsetof(fvm_inject_block, lookup);
    block->descriptors[0].FirstThunk = rva + (uint32_t)offsetof(fvm_inject_block, iat);
    block->descriptors[0].Name = rva + (uint32_t)offsetof(fvm_inject_block, dll_name);

    BOOL ok = write_child(process, remote, block, block_size);
    HeapFree(GetProcessHeap(), 0, block);
    if (!ok) {
        set_why(why, why_size, "cannot write the injection block", GetLastError());
        return STATUS_ACCESS_DENIED;
    }

    /* Point the image at the new table and drop bound imports, whose
     * precomputed addresses would not match the shifted descriptors. */
    uint64_t dir_addr = base + (uint32_t)dos.e_lfanew +
                        offsetof(IMAGE_NT_HEADERS64, OptionalHeader.DataDirectory);
    IMAGE_DATA_DIRECTORY new_dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT + 1];
    memcpy(new_dirs, dirs, sizeof new_dirs);
    new_dirs[IMAGE_DIRECTORY_ENTRY_IMPORT].VirtualAddress = rva + (uint32_t)offsetof(fvm_inject_block, descriptors);
    new_dirs[IMAGE_DIRECTORY_ENTRY_IMPORT].Size = (uint32_t)((n + 1) * sizeof(IMAGE_IMPORT_DESCRIPTOR));
    new_dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT].VirtualAddress = 0;
    new_dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT].Size = 0;
    if (!write_child_protected(process, dir_addr, new_dirs, sizeof new_dirs)) {
        set_why(why, why_size, "cannot patch the import directory of the new process", GetLastError());
        return STATUS_ACCESS_DENIED;
    }
    return STATUS_SUCCESS;
}

const fvm_inject_block *fvm_inject_find_block(void)
{
    const uint8_t *base = (const uint8_t *)GetModuleHandleW(NULL);   /* PEB.ImageBaseAddress */
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)base;
    const IMAGE_NT_HEADERS64 *nt = (const IMAGE_NT_HEADERS64 *)(base + dos->e_lfanew);
    const IMAGE_DATA_DIRECTORY *imports = &nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
    if (!imports->VirtualAddress || imports->Size < sizeof(IMAGE_IMPORT_DESCRIPTOR))
        return NULL;
    const IMAGE_IMPORT_DESCRIPTOR *first = (const IMAGE_IMPORT_DESCRIPTOR *)(base + imports->VirtualAddress);
    if (imports->VirtualAddress < offsetof(fvm_inject_block, descriptors))
        return NULL;
    const fvm_inject_block *block =
        (const fvm_inject_block *)(base + imports->VirtualAddress - offsetof(fvm_inject_block, descriptors));
    MEMORY_BASIC_INFORMATION mbi;
    if (!VirtualQuery(block, &mbi, sizeof mbi) || mbi.State != MEM_COMMIT)
        return NULL;
    if (memcmp(block->magic, FVM_INJECT_MAGIC, 8) != 0 || block->image_base != (uint64_t)(UINT_PTR)base ||
        first->Name != (uint32_t)((const uint8_t *)block->dll_name - base))
        return NULL;
    return block;
}

NTSTATUS fvm_inject_restore_headers(const fvm_inject_block *block)
{
    uint8_t *base = (uint8_t *)(UINT_PTR)block->image_base;
    IMAGE_DOS_HEADER *dos = (IMAGE_DOS_HEADER *)base;
    IMAGE_NT_HEADERS64 *nt = (IMAGE_NT_HEADERS64 *)(base + dos->e_lfanew);
    IMAGE_DATA_DIRECTORY *dirs = nt->OptionalHeader.DataDirectory;
    DWORD old, ignored;
    if (!VirtualProtect(dirs, sizeof(IMAGE_DATA_DIRECTORY) * (IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT + 1),
                        PAGE_READWRITE, &old))
        return STATUS_ACCESS_DENIED;
    dirs[IMAGE_DIRECTORY_ENTRY_IMPORT].VirtualAddress = block->import_rva;
    dirs[IMAGE_DIRECTORY_ENTRY_IMPORT].Size = block->import_size;
    dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT].VirtualAddress = block->bound_rva;
    dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT].Size = block->bound_size;
    VirtualProtect(dirs, sizeof(IMAGE_DATA_DIRECTORY) * (IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT + 1), old, &ignored);
    return STATUS_SUCCESS;
}
