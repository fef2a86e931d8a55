/* inject.c - import-table injection of fvm.dll (see inject.h for the idea).
 *
 * Everything is done with cross-process memory calls on the suspended child;
 * nothing runs in the child until the loader starts, and by then the loader
 * sees fvm.dll as the image's first import. */
#include "common/inject.h"

#include <winternl.h>

NTSTATUS NTAPI NtReadFile(HANDLE file, HANDLE event, PIO_APC_ROUTINE apc, void *apc_context, PIO_STATUS_BLOCK io,
                           void *buffer, ULONG length, PLARGE_INTEGER offset, PULONG key);

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

/* Writes into read-only image memory (the PE headers) of the child. Some
 * platforms (Wine) write through page protection; Windows needs the pages
 * made writable first. */
static BOOL write_child_protected(HANDLE process, uint64_t addr, const void *buf, size_t size)
{
    if (write_child(process, addr, buf, size))
        return TRUE;
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
    /* Usually the space right after the image is free: one call. */
    void *first = VirtualAllocEx(process, (void *)(UINT_PTR)addr, size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    if (first)
        return (uint64_t)(UINT_PTR)first;
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

/* Lays the block out in buf (zeroed, cap bytes) for an image at base whose
 * block will live at block_rva. Returns the block size, or 0 if it does not
 * fit in cap. */
static size_t build_block(uint8_t *buf, size_t cap, const fvm_box_config *config, const char *dll_ansi,
                          const IMAGE_IMPORT_DESCRIPTOR *originals, size_t original_count,
                          const IMAGE_DATA_DIRECTORY *imports, const IMAGE_DATA_DIRECTORY *bound,
                          uint64_t base, uint32_t block_rva)
{
    fvm_inject_block *block = (fvm_inject_block *)buf;
    size_t at = offsetof(fvm_inject_block, data);
    size_t dll_len = strlen(dll_ansi) + 1;
    if (at + dll_len > cap)
        return 0;
    memcpy(buf + at, dll_ansi, dll_len);
    at += dll_len;

    const wchar_t *strings[4] = {config->box_name, config->box_path, config->dll_path, config->provider};
    uint16_t *offsets[4] = {&block->box_name_offset, &block->box_path_offset, &block->dll_path_offset,
                            &block->provider_offset};
    uint16_t *lengths[4] = {&block->box_name_len, &block->box_path_len, &block->dll_path_len, &block->provider_len};
    for (int i = 0; i < 4; i++) {
        size_t len = fvm_wcslen(strings[i]);
        at = (at + 1) & ~(size_t)1;
        if (at + (len + 1) * 2 > cap || at > 0xffff)
            return 0;
        *offsets[i] = (uint16_t)at;
        *lengths[i] = (uint16_t)len;
        memcpy(buf + at, strings[i], len * 2);
        at += (len + 1) * 2;
    }

    at = (at + 3) & ~(size_t)3;
    size_t n = 0;
    while (n < original_count && originals[n].Name)
        n++;
    if (at + (n + 2) * sizeof(IMAGE_IMPORT_DESCRIPTOR) > cap)
        return 0;
    block->descriptors_offset = (uint32_t)at;
    IMAGE_IMPORT_DESCRIPTOR *descriptors = (IMAGE_IMPORT_DESCRIPTOR *)(buf + at);
    descriptors[0].OriginalFirstThunk = block_rva + (uint32_t)offsetof(fvm_inject_block, lookup);
    descriptors[0].FirstThunk = block_rva + (uint32_t)offsetof(fvm_inject_block, iat);
    descriptors[0].Name = block_rva + (uint32_t)offsetof(fvm_inject_block, data);
    memcpy(&descriptors[1], originals, n * sizeof *originals);
    at += (n + 2) * sizeof(IMAGE_IMPORT_DESCRIPTOR);   /* the last one stays zero */

    memcpy(block->magic, FVM_INJECT_MAGIC, 8);
    block->block_size = (uint32_t)at;
    block->import_rva = imports->VirtualAddress;
    block->import_size = imports->Size;
    block->bound_rva = bound->VirtualAddress;
    block->bound_size = bound->Size;
    block->image_base = base;
    block->config_version = config->version;
    block->config_flags = config->flags;
    block->quota_bytes = config->quota_bytes;
    block->given_index = config->given_index;
    block->given_index_size = config->given_index_size;
    block->given_index_number = config->given_index_number;
    block->given_tally = config->given_tally;
    block->lookup[0].u1.Ordinal = IMAGE_ORDINAL_FLAG64 | 1;
    block->iat[0].u1.Ordinal = IMAGE_ORDINAL_FLAG64 | 1;
    return at;
}

/* The new import and bound-import directory entries for a block at rva. */
static void point_directories(IMAGE_DATA_DIRECTORY *dirs, uint32_t block_rva, const uint8_t *block_bytes)
{
    const fvm_inject_block *block = (const fvm_inject_block *)block_bytes;
    size_t descriptors_bytes = block->block_size - block->descriptors_offset;
    dirs[IMAGE_DIRECTORY_ENTRY_IMPORT].VirtualAddress = block_rva + block->descriptors_offset;
    dirs[IMAGE_DIRECTORY_ENTRY_IMPORT].Size = (uint32_t)descriptors_bytes;
    /* Bound imports' precomputed addresses would not match the shifted
     * descriptors. */
    dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT].VirtualAddress = 0;
    dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT].Size = 0;
}

/* Reads size bytes at offset of the image file (FALSE on a short read). */
static BOOL read_file_at(HANDLE file, uint64_t offset, void *buf, size_t size)
{
    /* NtReadFile with an offset: ReadFile with an OVERLAPPED costs Wine a
     * completion request per read. */
    IO_STATUS_BLOCK io;
    LARGE_INTEGER at;
    at.QuadPart = (LONGLONG)offset;
    return size <= 0xffffffffu &&
           NtReadFile(file, NULL, NULL, NULL, &io, buf, (ULONG)size, &at, NULL) >= 0 && io.Information == size;
}

/* The file offset of the RVA range [rva, rva + size) of an image, from its
 * section table; FALSE when the range is not backed by file data. */
static BOOL rva_to_offset(const IMAGE_NT_HEADERS64 *nt, uint32_t rva, size_t size, uint64_t *offset)
{
    if ((uint64_t)rva + size <= nt->OptionalHeader.SizeOfHeaders) {
        *offset = rva;
        return TRUE;
    }
    const IMAGE_SECTION_HEADER *sections = IMAGE_FIRST_SECTION(nt);
    for (unsigned i = 0; i < nt->FileHeader.NumberOfSections; i++) {
        const IMAGE_SECTION_HEADER *sh = &sections[i];
        if (rva >= sh->VirtualAddress && (uint64_t)rva - sh->VirtualAddress + size <= sh->SizeOfRawData) {
            *offset = (uint64_t)sh->PointerToRawData + (rva - sh->VirtualAddress);
            return TRUE;
        }
    }
    return FALSE;
}

/* Wine records a process's PEB when its first thread reports the process
 * initialised, after the new process has handed the server its first
 * descriptors, with thread id 0. Wine 8's server takes "the first thread of
 * the process" for those, and a process terminated before it got there has
 * none: the server dereferences NULL and every Wine process of the session
 * dies with it (seen: 2 crashes in 60 stops of a box right after a start).
 * On Windows the PEB exists from creation: never "not started". */
BOOL fvm_process_not_started(HANDLE process)
{
    PROCESS_BASIC_INFORMATION pbi;
    ULONG got = 0;
    return NtQueryInformationProcess(process, ProcessBasicInformation, &pbi, sizeof pbi, &got) >= 0 &&
           !pbi.PebBaseAddress;
}

NTSTATUS fvm_inject_process(HANDLE process, HANDLE image_file, const fvm_box_config *config,
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

    /* The whole first page: headers, section table and the unused tail. */
    enum { PAGE = 4096 };
    uint8_t *page = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, 2 * PAGE);
    uint8_t *block_buf = page + PAGE;
    if (!page) {
        set_why(why, why_size, "out of memory", 0);
        return STATUS_NO_MEMORY;
    }
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)page;
    const IMAGE_NT_HEADERS64 *nt = NULL;
    /* The header page as the child maps it: from the image file when the
     * caller holds it open against writers (a cross-process read stops the
     * child under Wine), else from the child. */
    BOOL from_file = image_file && read_file_at(image_file, 0, page, PAGE);
    if ((from_file || read_child(process, base, page, PAGE)) && dos->e_magic == IMAGE_DOS_SIGNATURE &&
        dos->e_lfanew > 0 && (size_t)dos->e_lfanew + sizeof(IMAGE_NT_HEADERS64) <= PAGE)
        nt = (const IMAGE_NT_HEADERS64 *)(page + dos->e_lfanew);
    if (nt && from_file) {
        /* Past SizeOfHeaders the mapped page is zeros, the file holds
         * section data. */
        uint32_t headers = nt->OptionalHeader.SizeOfHeaders;
        if (nt->Signature == IMAGE_NT_SIGNATURE && headers < PAGE && headers >= (size_t)dos->e_lfanew + sizeof *nt)
            memset(page + headers, 0, PAGE - headers);
    }
    if (!nt || nt->Signature != IMAGE_NT_SIGNATURE) {
        HeapFree(GetProcessHeap(), 0, page);
        set_why(why, why_size, "the new process has no readable PE image", 0);
        return STATUS_INVALID_IMAGE_FORMAT;
    }
    if (nt->OptionalHeader.Magic != IMAGE_NT_OPTIONAL_HDR64_MAGIC) {
        HeapFree(GetProcessHeap(), 0, page);
        set_why(why, why_size, "the new process is not a 64-bit image (32-bit is not supported)", 0);
        return STATUS_INVALID_IMAGE_FORMAT;
    }

    IMAGE_DATA_DIRECTORY dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT + 1];
    memcpy(dirs, nt->OptionalHeader.DataDirectory, sizeof dirs);
    IMAGE_DATA_DIRECTORY imports = dirs[IMAGE_DIRECTORY_ENTRY_IMPORT];
    IMAGE_DATA_DIRECTORY bound = dirs[IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT];
    size_t original_count = imports.Size / sizeof(IMAGE_IMPORT_DESCRIPTOR);
    if (original_count > 4096) {
        HeapFree(GetProcessHeap(), 0, page);
        set_why(why, why_size, "implausible import directory in the new process", 0);
        return STATUS_INVALID_IMAGE_FORMAT;
    }
    IMAGE_IMPORT_DESCRIPTOR *originals = NULL;
    if (original_count) {
        size_t bytes = original_count * sizeof *originals;
        uint64_t offset = 0;
        originals = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, bytes);
        BOOL read = originals && from_file && rva_to_offset(nt, imports.VirtualAddress, bytes, &offset) &&
                    read_file_at(image_file, offset, originals, bytes);
        if (!originals || !(read || read_child(process, base + imports.VirtualAddress, originals, bytes))) {
            HeapFree(GetProcessHeap(), 0, originals);
            HeapFree(GetProcessHeap(), 0, page);
            set_why(why, why_size, "cannot read the import directory of the new process", GetLastError());
            return STATUS_INVALID_IMAGE_FORMAT;
        }
    }
    char dll_ansi[FVM_PATH_MAX * 3];
    if (!WideCharToMultiByte(CP_ACP, WC_NO_BEST_FIT_CHARS, config->dll_path, -1, dll_ansi, sizeof dll_ansi,
                             NULL, NULL)) {
        HeapFree(GetProcessHeap(), 0, originals);
        HeapFree(GetProcessHeap(), 0, page);
        set_why(why, why_size, "the path of fvm.dll cannot be written in the ANSI code page", 0);
        return STATUS_OBJECT_NAME_INVALID;
    }

    /* First choice: the unused tail of the header page, 8-aligned after the
     * section table and within the mapped headers' page. */
    size_t sections_end = (size_t)dos->e_lfanew + offsetof(IMAGE_NT_HEADERS64, OptionalHeader) +
                          nt->FileHeader.SizeOfOptionalHeader +
                          (size_t)nt->FileHeader.NumberOfSections * sizeof(IMAGE_SECTION_HEADER);
    size_t tail = (sections_end + 7) & ~(size_t)7;
    size_t block_size = 0;
    BOOL in_headers = FALSE;
    if (tail < PAGE && nt->OptionalHeader.SectionAlignment >= PAGE) {
        block_size = build_block(page + tail, PAGE - tail, config, dll_ansi, originals, original_count, &imports,
                                 &bound, base, (uint32_t)tail);
        in_headers = block_size != 0;
    }
    if (in_headers) {
        /* Rewrite the page from the data directories to the block's end:
         * one write for directories and block together. */
        size_t dir_at = (size_t)dos->e_lfanew + offsetof(IMAGE_NT_HEADERS64, OptionalHeader.DataDirectory);
        point_directories((IMAGE_DATA_DIRECTORY *)(page + dir_at), (uint32_t)tail, page + tail);
        BOOL ok = write_child_protected(process, base + dir_at, page + dir_at, tail + block_size - dir_at);
        HeapFree(GetProcessHeap(), 0, originals);
        HeapFree(GetProcessHeap(), 0, page);
        if (!ok) {
            set_why(why, why_size, "cannot write the injection block into the new process", GetLastError());
            return STATUS_ACCESS_DENIED;
        }
        return STATUS_SUCCESS;
    }

    /* Otherwise: memory just above the image. */
    size_t cap = PAGE;
    block_size = build_block(block_buf, cap, config, dll_ansi, originals, original_count, &imports, &bound, base, 0);
    uint8_t *big = NULL;
    if (!block_size) {
        cap = offsetof(fvm_inject_block, data) + strlen(dll_ansi) + 1 + 4 * FVM_PATH_MAX * 2 + 16 +
              (original_count + 2) * sizeof(IMAGE_IMPORT_DESCRIPTOR);
        big = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, cap);
        block_buf = big;
        block_size = big ? build_block(big, cap, config, dll_ansi, originals, original_count, &imports, &bound,
                                       base, 0) : 0;
    }
    uint64_t remote = block_size ? alloc_above_image(process, base, nt->OptionalHeader.SizeOfImage, block_size) : 0;
    BOOL ok = FALSE;
    if (remote) {
        uint32_t rva = (uint32_t)(remote - base);
        memset(block_buf, 0, cap);
        build_block(block_buf, cap, config, dll_ansi, originals, original_count, &imports, &bound, base, rva);
        point_directories(dirs, rva, block_buf);
        uint64_t dir_addr = base + (uint32_t)dos->e_lfanew +
                            offsetof(IMAGE_NT_HEADERS64, OptionalHeader.DataDirectory);
        ok = write_child(process, remote, block_buf, block_size) &&
             write_child_protected(process, dir_addr, dirs, sizeof dirs);
    }
    DWORD error = GetLastError();
    HeapFree(GetProcessHeap(), 0, big);
    HeapFree(GetProcessHeap(), 0, originals);
    HeapFree(GetProcessHeap(), 0, page);
    if (!ok) {
        set_why(why, why_size, remote ? "cannot write the injection block" : "no free memory near the image of "
                "the new process", error);
        return remote ? STATUS_ACCESS_DENIED : STATUS_NO_MEMORY;
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
    if (first->Name < offsetof(fvm_inject_block, data))
        return NULL;
    const fvm_inject_block *block = (const fvm_inject_block *)(base + first->Name - offsetof(fvm_inject_block, data));
    MEMORY_BASIC_INFORMATION mbi;
    if (!VirtualQuery(block, &mbi, sizeof mbi) || mbi.State != MEM_COMMIT ||
        (const uint8_t *)mbi.BaseAddress + mbi.RegionSize < (const uint8_t *)block + sizeof *block)
        return NULL;
    if (memcmp(block->magic, FVM_INJECT_MAGIC, 8) != 0 || block->image_base != (uint64_t)(UINT_PTR)base ||
        (const uint8_t *)first != (const uint8_t *)block + block->descriptors_offset)
        return NULL;
    return block;
}

BOOL fvm_inject_read_config(const fvm_inject_block *block, fvm_box_config *config)
{
    const uint8_t *bytes = (const uint8_t *)block;
    const uint16_t offsets[4] = {block->box_name_offset, block->box_path_offset, block->dll_path_offset,
                                 block->provider_offset};
    const uint16_t lengths[4] = {block->box_name_len, block->box_path_len, block->dll_path_len, block->provider_len};
    wchar_t *targets[4] = {config->box_name, config->box_path, config->dll_path, config->provider};
    const size_t caps[4] = {FVM_BOX_NAME_MAX, FVM_PATH_MAX, FVM_PATH_MAX, FVM_BOX_NAME_MAX * 2};
    memset(config, 0, sizeof *config);
    config->version = block->config_version;
    config->flags = block->config_flags;
    config->quota_bytes = block->quota_bytes;
    config->given_index = block->given_index;
    config->given_index_size = block->given_index_size;
    config->given_index_number = block->given_index_number;
    config->given_tally = block->given_tally;
    for (int i = 0; i < 4; i++) {
        if (lengths[i] >= caps[i] || offsets[i] + (lengths[i] + 1u) * 2 > block->block_size)
            return FALSE;
        memcpy(targets[i], bytes + offsets[i], lengths[i] * 2u);
        targets[i][lengths[i]] = 0;
    }
    return TRUE;
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
