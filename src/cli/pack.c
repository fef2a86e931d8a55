/* pack.c - fvm export and fvm import: a box's delta as one package file
 * (core/pack.h, docs/pack-format.md).
 *
 * export writes the box's policy, index (zero runs squeezed out), registry
 * delta and every file and folder of the box folder. A box copy of a host
 * file whose host file is still the base version the index recorded (size
 * and last-write time as recorded) travels as a delta against that base:
 * fixed 4 KiB blocks at the same offsets, equal runs as COPY ops, changed
 * blocks as DATA. Fixed blocks rather than a rolling hash because both
 * sides are local at export time: the base is right there to compare with
 * (no signatures to exchange), and the changes a box makes to a copy are
 * overwhelmingly in place; an insertion shifts the rest of the file, which
 * then travels as data (correct, only larger). The comparison uses the
 * base's block fingerprints (common/blockprint.h) the broker kept when it
 * hashed the base, so a 1-byte change in a large file costs about one read
 * of the box copy and a package of KBs; without them both files are read
 * once and compared (and the fingerprints kept).
 * The package is written to FILE.tmp and renamed: a reader never sees half.
 *
 * import checks the whole package first (checksum, structure: pack_parse),
 * then every base it needs (each delta's host file must be the recorded
 * version: size, and time or SHA-256), then the index (boxindex_validate),
 * and only then creates the box and writes. A write that fails after that
 * (a full disk) removes the new box folder again: nothing half-applied.
 *
 * --since PACKAGE (export) makes an incremental package: only the box files
 * written after PACKAGE was made, plus the whole index, policy and registry
 * (small). import of an incremental package updates an existing box, all
 * or nothing: staged in <box>\sync\import, then swapped in by journalled
 * renames a failure or a kill undoes (importswap.c): files it carries are
 * replaced, box files the new index no longer knows are removed. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/blockprint.h"
#include "core/boxindex.h"
#include "core/ntpath.h"
#include "core/pack.h"
#include "core/sha256.h"

#define WPATH (FVM_PATH_MAX * 2)
#define DELTA_BLOCK FVM_DELTA_BLOCK
#define DELTA_MIN_SIZE FVM_DELTA_MIN_SIZE

/* ---- a mapped file ------------------------------------------------------- */

typedef struct mapped {
    const uint8_t *data;
    uint64_t size;
} mapped;

static BOOL map_file(const wchar_t *path, mapped *m)
{
    memset(m, 0, sizeof *m);
    HANDLE f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, 0, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return FALSE;
    LARGE_INTEGER size;
    BOOL ok = GetFileSizeEx(f, &size);
    m->size = ok ? (uint64_t)size.QuadPart : 0;
    if (ok && m->size) {
        HANDLE map = CreateFileMappingW(f, NULL, PAGE_READONLY, 0, 0, NULL);
        m->data = map ? MapViewOfFile(map, FILE_MAP_READ, 0, 0, 0) : NULL;
        if (map)
            CloseHandle(map);
        ok = m->data != NULL;
    }
    CloseHandle(f);
    return ok;
}

static void unmap_file(mapped *m)
{
    if (m->data)
        UnmapViewOfFile(m->data);
    memset(m, 0, sizeof *m);
}

/* ---- the writer ---------------------------------------------------------- */

typedef struct writer {
    HANDLE file;
    sha256_ctx hash;
    uint8_t *buf;
    size_t used;
    uint64_t total;
    BOOL failed;
} writer;

#define WRITER_BUF (1u << 20)

static void w_flush(writer *w)
{
    DWORD wrote;
    if (w->used && !w->failed && !(WriteFile(w->file, w->buf, (DWORD)w->used, &wrote, NULL) && wrote == w->used))
        w->failed = TRUE;
    w->used = 0;
}

static void w_put(writer *w, const void *p, size_t n)
{
    sha256_update(&w->hash, p, n);
    w->total += n;
    const uint8_t *s = p;
    while (n) {
        size_t take = WRITER_BUF - w->used < n ? WRITER_BUF - w->used : n;
        memcpy(w->buf + w->used, s, take);
        w->used += take;
        s += take;
        n -= take;
        if (w->used == WRITER_BUF)
            w_flush(w);
    }
}

static void w_record(writer *w, pack_record_type type, uint64_t len)
{
    uint8_t h[PACK_RECORD_HEADER];
    pack_put_record_header(h, type, len);
    w_put(w, h, sizeof h);
}

/* ---- export -------------------------------------------------------------- */

typedef struct exporter {
    const box *b;
    writer w;
    boxindex idx;
    BOOL have_index;
    int64_t since;               /* FILETIME; 0: everything */
    unsigned files, deltas, dirs;
    uint64_t file_bytes;
    BOOL terminal;
    ULONGLONG last_line;         /* when the last plain progress line was printed */
} exporter;

static int64_t ft64(FILETIME ft)
{
    return (int64_t)(((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime);
}

/* The file part of a record for a box file: its host path and its facts. */
static size_t file_part(uint8_t *out, const wchar_t *host_nt, const WIN32_FILE_ATTRIBUTE_DATA *d)
{
    pack_file f = {(const uint16_t *)host_nt, wcslen(host_nt), d->dwFileAttributes, ft64(d->ftCreationTime),
                   ft64(d->ftLastAccessTime), ft64(d->ftLastWriteTime),
                   ((uint64_t)d->nFileSizeHigh << 32) | d->nFileSizeLow};
    return pack_put_file(out, &f);
}

static void w_blob_file(exporter *x, pack_record_type type, const wchar_t *leaf)
{
    wchar_t path[FVM_PATH_MAX];
    _snwprintf(path, FVM_PATH_MAX, L"%ls\\%ls", x->b->path, leaf);
    mapped m;
    if (!map_file(path, &m))
        return;
    w_record(&x->w, type, m.size);
    if (m.size)
        w_put(&x->w, m.data, (size_t)m.size);
    unmap_file(&m);
}

/* The base a box copy may travel against: the index's record of it, when
 * the host file still is that version. */
static BOOL usable_base(exporter *x, const wchar_t *host_nt, boxindex_base *base)
{
    if (!x->have_index)
        return FALSE;
    static ntpath path;
    static uint16_t key[BOXINDEX_MAX_KEY_UNITS + 1];
    static const ntpath_context ctx = {.input = NTPATH_INPUT_NT};
    size_t len;
    fvm_error err;
    boxindex_entry e;
    if (ntpath_normalize((const uint16_t *)host_nt, wcslen(host_nt), &ctx, &path, &err) != FVM_OK ||
        ntpath_key(&path, key, BOXINDEX_MAX_KEY_UNITS + 1, &len, &err) != FVM_OK ||
        boxindex_lookup(&x->idx, ntpath_hash(&path), key, len, &e) != BOXINDEX_COPIED ||
        !(e.flags & BOXINDEX_FLAG_HAS_BASE))
        return FALSE;
    wchar_t host[WPATH];
    sync_nt_to_win32(host_nt, host, WPATH);
    WIN32_FILE_ATTRIBUTE_DATA d;
    if (!GetFileAttributesExW(host, GetFileExInfoStandard, &d) ||
        (((uint64_t)d.nFileSizeHigh << 32) | d.nFileSizeLow) != e.base.size || ft64(d.ftLastWriteTime) != e.base.mtime)
        return FALSE;
    *base = e.base;
    static const uint8_t zero[32];
    /* The broker fills the hash in the background; not yet: hash it now
     * (the host file is the base: same size and time). */
    return memcmp(base->content_hash, zero, 32) || sync_hash_file(host, base->content_hash);
}

static HANDLE open_read(const wchar_t *path)
{
    return CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                       FILE_FLAG_SEQUENTIAL_SCAN, NULL);
}

/* FVM_EXPORT_TIMING=1: each phase's time on stderr (for profiling). */
static BOOL g_timing;
static LARGE_INTEGER g_t0;

static void phase(const char *what)
{
    if (!g_timing)
        return;
    LARGE_INTEGER now, f;
    QueryPerformanceCounter(&now);
    QueryPerformanceFrequency(&f);
    fprintf(stderr, "timing: %-28s %8.1f ms\n", what, (now.QuadPart - g_t0.QuadPart) * 1000.0 / f.QuadPart);
}

/* A delta's plan: runs of equal blocks (COPY) and changed ones (DATA). */
typedef struct run {
    int copy;
    uint64_t offset, length;
} run;

typedef struct run_list {
    run *items;
    size_t count, cap;
} run_list;

static BOOL add_run(run_list *l, int copy, uint64_t offset, uint64_t length)
{
    if (l->count && l->items[l->count - 1].copy == copy) {
        l->items[l->count - 1].length += length;
        return TRUE;
    }
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        run *grown = realloc(l->items, cap * sizeof *grown);
        if (!grown)
            return FALSE;
        l->items = grown;
        l->cap = cap;
    }
    l->items[l->count++] = (run){copy, offset, length};
    return TRUE;
}

/* A block of n bytes at offset at can be the base's only within the base,
 * and a short block only as the base's last. */
static BOOL block_within_base(uint64_t at, DWORD n, uint64_t base_size)
{
    return at + n <= base_size && (at + n == base_size || n == DELTA_BLOCK);
}

/* Finds the box copy's blocks that equal the base's at the same offsets
 * when the base's fingerprints are not stored: both files are read once,
 * sequentially (ReadFile into two buffers: cheaper under Wine than faulting
 * in mapped views), and the base's fingerprints are filled in (computed)
 * for the next export. */
static BOOL plan_against_base(HANDLE mine, uint64_t mine_size, HANDLE base, uint64_t base_size, uint64_t *computed,
                              run_list *out)
{
    static uint8_t a[1 << 20], b[1 << 20];
    uint64_t off = 0, base_end = 0;
    while (off < mine_size || base_end < base_size) {
        DWORD want = off < mine_size ? (mine_size - off < sizeof a ? (DWORD)(mine_size - off) : (DWORD)sizeof a) : 0;
        DWORD got_a = 0, got_b = 0;
        if (want && (!ReadFile(mine, a, want, &got_a, NULL) || got_a != want))
            return FALSE;
        if (base_end < base_size) {
            DWORD want_b = base_size - base_end < sizeof b ? (DWORD)(base_size - base_end) : (DWORD)sizeof b;
            if (!ReadFile(base, b, want_b, &got_b, NULL) || got_b != want_b)
                return FALSE;
            for (DWORD at = 0; at < want_b; at += DELTA_BLOCK)
                fvm_block_fingerprint(b + at, want_b - at < DELTA_BLOCK ? want_b - at : DELTA_BLOCK,
                                      computed + 2 * ((base_end + at) / DELTA_BLOCK));
            base_end += want_b;
        }
        for (DWORD at = 0; at < want; at += DELTA_BLOCK) {
            DWORD n = want - at < DELTA_BLOCK ? want - at : DELTA_BLOCK;
            int same = block_within_base(off + at, n, base_size) && at + n <= got_b && !memcmp(a + at, b + at, n);
            if (!add_run(out, same, off + at, n))
                return FALSE;
        }
        off += want;
    }
    return TRUE;
}

/* With the base's fingerprints stored, only the box copy is read, and
 * planning costs what reading and hashing it costs on one core. So a large
 * copy is cut into slices (whole MiB) planned side by side, one thread
 * each with its own handle, buffer and window on the stored fingerprints,
 * and their runs are joined in order; no thread waits for another before
 * the join. (Reading ahead on a second thread for a hashing one, a
 * producer and a consumer handing buffers over, was measured slower under
 * Wine: docs/design.md.) FVM_EXPORT_SLICES=N sets the number of slices
 * (tests; 1 to SLICES_MAX). */
#define SLICE_MIN ((uint64_t)16 << 20)   /* smaller slices are not worth a thread */
#define SLICES_MAX 8

typedef struct slice_job {
    const wchar_t *box_file, *box_path;
    const uint8_t *base_hash;
    size_t blocks;
    uint64_t from, to, base_size;
    run_list runs;
    BOOL ok;
} slice_job;

static BOOL plan_slice(slice_job *j)
{
    enum { BUF = 1 << 20 };
    fvm_blocks_reader *known = malloc(sizeof *known);
    uint8_t *buf = malloc(BUF);
    HANDLE mine = open_read(j->box_file);
    LARGE_INTEGER at = {.QuadPart = (LONGLONG)j->from};
    BOOL opened = known && buf && mine != INVALID_HANDLE_VALUE &&
                  fvm_blocks_open(known, j->box_path, j->base_hash, j->blocks);
    BOOL ok = opened && SetFilePointerEx(mine, at, NULL, FILE_BEGIN);
    for (uint64_t off = j->from; ok && off < j->to;) {
        DWORD want = j->to - off < BUF ? (DWORD)(j->to - off) : (DWORD)BUF, got = 0;
        if (!ReadFile(mine, buf, want, &got, NULL) || got != want) {
            ok = FALSE;
            break;
        }
        for (DWORD in = 0; ok && in < want; in += DELTA_BLOCK) {
            DWORD n = want - in < DELTA_BLOCK ? want - in : DELTA_BLOCK;
            int same = 0;
            if (block_within_base(off + in, n, j->base_size)) {
                uint64_t fp[2];
                const uint64_t *stored = fvm_blocks_get(known, (size_t)((off + in) / DELTA_BLOCK));
                if (!stored) {
                    ok = FALSE;   /* the store was shortened meanwhile: the caller compares with the base */
                    break;
                }
                fvm_block_fingerprint(buf + in, n, fp);
                same = fp[0] == stored[0] && fp[1] == stored[1];
            }
            ok = add_run(&j->runs, same, off + in, n);
        }
        off += want;
    }
    if (opened)
        fvm_blocks_close(known);
    if (mine != INVALID_HANDLE_VALUE)
        CloseHandle(mine);
    free(buf);
    free(known);
    return ok;
}

static DWORD WINAPI slice_thread(void *arg)
{
    slice_job *j = arg;
    j->ok = plan_slice(j);
    return 0;
}

static unsigned slice_count(uint64_t size)
{
    const char *forced = getenv("FVM_EXPORT_SLICES");
    if (forced && atoi(forced) >= 1)
        return atoi(forced) < SLICES_MAX ? (unsigned)atoi(forced) : SLICES_MAX;
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    uint64_t n = size / SLICE_MIN;
    if (n > si.dwNumberOfProcessors)
        n = si.dwNumberOfProcessors;
    return n < 1 ? 1 : n > SLICES_MAX ? SLICES_MAX : (unsigned)n;
}

static BOOL plan_with_fingerprints(const wchar_t *box_file, uint64_t size, const wchar_t *box_path,
                                   const boxindex_base *base, size_t blocks, run_list *out)
{
    slice_job jobs[SLICES_MAX];
    HANDLE threads[SLICES_MAX] = {0};
    unsigned n = slice_count(size);
    uint64_t step = ((size + n - 1) / n + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
    fvm_block_fingerprint((const uint8_t *)"", 0, (uint64_t[2]){0});   /* picks the function before threads share it */
    for (unsigned i = 0; i < n; i++) {
        uint64_t from = step * i < size ? step * i : size;
        jobs[i] = (slice_job){box_file, box_path, base->content_hash, blocks, from,
                              from + step < size ? from + step : size, base->size, {0}, FALSE};
        if (i)   /* slice 0 is this thread's; a slice no thread could be made for too, after it */
            threads[i] = CreateThread(NULL, 0, slice_thread, &jobs[i], 0, NULL);
    }
    jobs[0].ok = plan_slice(&jobs[0]);
    BOOL ok = TRUE;
    for (unsigned i = 0; i < n; i++) {
        if (i && threads[i]) {
            WaitForSingleObject(threads[i], INFINITE);
            CloseHandle(threads[i]);
        } else if (i) {
            jobs[i].ok = plan_slice(&jobs[i]);
        }
        for (size_t r = 0; ok && jobs[i].ok && r < jobs[i].runs.count; r++)
            ok = add_run(out, jobs[i].runs.items[r].copy, jobs[i].runs.items[r].offset, jobs[i].runs.items[r].length);
        ok = ok && jobs[i].ok;
        free(jobs[i].runs.items);
    }
    if (g_timing)
        fprintf(stderr, "timing: delta: planned in %u slices\n", n);
    return ok;
}

static uint64_t runs_bytes(const run_list *l)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < l->count; i++)
        bytes += l->items[i].copy ? 17 : 9 + l->items[i].length;
    return bytes;
}

/* Writes the ops; DATA bytes read again from the box copy at their offset. */
static BOOL write_runs(writer *w, HANDLE mine, const run_list *l)
{
    static uint8_t buf[1 << 20];
    for (size_t i = 0; i < l->count; i++) {
        const run *r = &l->items[i];
        uint8_t h[17];
        w_put(w, h, pack_put_op(h, r->copy, r->offset, r->length));
        if (r->copy)
            continue;
        LARGE_INTEGER at;
        at.QuadPart = (LONGLONG)r->offset;
        if (!SetFilePointerEx(mine, at, NULL, FILE_BEGIN))
            return FALSE;
        for (uint64_t left = r->length; left;) {
            DWORD n = left < sizeof buf ? (DWORD)left : (DWORD)sizeof buf, got;
            if (!ReadFile(mine, buf, n, &got, NULL) || got != n)
                return FALSE;
            w_put(w, buf, n);
            left -= n;
        }
    }
    return TRUE;
}

/* A changed box copy as a DELTA record, when its base is usable; FALSE: send it whole. */
static BOOL export_delta(exporter *x, const wchar_t *box_file, const wchar_t *host_nt, const uint8_t *part,
                         size_t plen, uint64_t size)
{
    boxindex_base base;
    wchar_t host[WPATH];
    sync_nt_to_win32(host_nt, host, WPATH);
    if (size < DELTA_MIN_SIZE || !usable_base(x, host_nt, &base))
        return FALSE;
    size_t blocks = (size_t)((base.size + DELTA_BLOCK - 1) / DELTA_BLOCK);
    phase("delta: base checked");
    uint64_t *computed = NULL;
    HANDLE mine = open_read(box_file), hb = INVALID_HANDLE_VALUE;
    run_list runs = {0};
    BOOL ok = mine != INVALID_HANDLE_VALUE && plan_with_fingerprints(box_file, size, x->b->path, &base, blocks, &runs);
    if (!ok && mine != INVALID_HANDLE_VALUE) {
        /* None stored, or they could not be read to their end (shortened
         * meanwhile): compared with the base itself, from the start. */
        LARGE_INTEGER start = {0};
        runs.count = 0;
        hb = open_read(host);
        ok = hb != INVALID_HANDLE_VALUE && SetFilePointerEx(mine, start, NULL, FILE_BEGIN) &&
             (computed = malloc(blocks * 16 + 1)) != NULL &&
             plan_against_base(mine, size, hb, base.size, computed, &runs);
    }
    phase("delta: planned");
    if (ok && computed)
        fvm_blocks_save(x->b->path, base.content_hash, computed, blocks);
    free(computed);
    if (ok && runs_bytes(&runs) < size) {
        w_record(&x->w, PACK_REC_DELTA, plen + PACK_BASE_LEN + runs_bytes(&runs));
        w_put(&x->w, part, plen);
        uint8_t b[PACK_BASE_LEN];
        pack_put_base(b, base.size, base.mtime, base.content_hash);
        w_put(&x->w, b, sizeof b);
        if (!write_runs(&x->w, mine, &runs))
            x->w.failed = TRUE;
        x->deltas++;
        phase("delta: written");
    } else {
        ok = FALSE;
    }
    free(runs.items);
    if (mine != INVALID_HANDLE_VALUE)
        CloseHandle(mine);
    if (hb != INVALID_HANDLE_VALUE)
        CloseHandle(hb);
    return ok;
}

static void export_file(exporter *x, const wchar_t *box_file, const wchar_t *host_nt)
{
    WIN32_FILE_ATTRIBUTE_DATA d;
    if (!GetFileAttributesExW(box_file, GetFileExInfoStandard, &d))
        return;
    if (x->since && ft64(d.ftLastWriteTime) <= x->since)
        return;
    static uint8_t part[PACK_FILE_FIXED + 2 * 32768];
    size_t plen = file_part(part, host_nt, &d);
    uint64_t size = ((uint64_t)d.nFileSizeHigh << 32) | d.nFileSizeLow;
    if (!export_delta(x, box_file, host_nt, part, plen, size)) {
        mapped mine;
        if (!map_file(box_file, &mine) || mine.size != size) {
            x->w.failed = TRUE;
            unmap_file(&mine);
            return;
        }
        w_record(&x->w, PACK_REC_FILE, plen + mine.size);
        w_put(&x->w, part, plen);
        if (mine.size)
            w_put(&x->w, mine.data, (size_t)mine.size);
        unmap_file(&mine);
        x->files++;
    }
    x->file_bytes += size;
    /* Progress: a line rewritten on a terminal, a plain line every 2 s otherwise. */
    if (x->terminal) {
        printf("\r  %u files, %llu MB", x->files + x->deltas, (unsigned long long)(x->file_bytes >> 20));
        fflush(stdout);
    } else if (GetTickCount64() - x->last_line >= sync_progress_interval(2000)) {
        x->last_line = GetTickCount64();
        printf("progress: %u files, %llu MB\n", x->files + x->deltas, (unsigned long long)(x->file_bytes >> 20));
    }
}

static void export_tree(exporter *x, const wchar_t *box_dir, const wchar_t *host_nt)
{
    wchar_t pattern[WPATH];
    _snwprintf(pattern, WPATH, L"%ls\\*", box_dir);
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return;
    do {
        if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L"..") || wcsstr(fd.cFileName, L".fvm-copy-"))
            continue;
        wchar_t child_box[WPATH], child_host[WPATH];
        _snwprintf(child_box, WPATH, L"%ls\\%ls", box_dir, fd.cFileName);
        _snwprintf(child_host, WPATH, L"%ls\\%ls", host_nt, fd.cFileName);
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
            WIN32_FILE_ATTRIBUTE_DATA d;
            if (GetFileAttributesExW(child_box, GetFileExInfoStandard, &d)) {
                static uint8_t part[PACK_FILE_FIXED + 2 * 32768];
                d.nFileSizeHigh = d.nFileSizeLow = 0;
                size_t plen = file_part(part, child_host, &d);
                w_record(&x->w, PACK_REC_DIR, plen);
                w_put(&x->w, part, plen);
                x->dirs++;
            }
            export_tree(x, child_box, child_host);
        } else {
            export_file(x, child_box, child_host);
        }
    } while (FindNextFileW(h, &fd));
    FindClose(h);
}

/* The newest index file (not retired), read into memory; NULL if none.
 * The generations that exist are listed first (opening 64 names that are
 * not there costs Wine tens of ms). */
static uint8_t *read_index(const box *b, size_t *len)
{
    uint64_t present = 0;
    wchar_t pattern[FVM_PATH_MAX];
    _snwprintf(pattern, FVM_PATH_MAX, L"%ls\\index-*.fvm", b->path);
    WIN32_FIND_DATAW fd;
    HANDLE find = FindFirstFileW(pattern, &fd);
    if (find != INVALID_HANDLE_VALUE) {
        do {
            unsigned n = (unsigned)wcstoul(fd.cFileName + 6, NULL, 10);
            if (n >= 1 && n <= 64)
                present |= 1ull << (n - 1);
        } while (FindNextFileW(find, &fd));
        FindClose(find);
    }
    for (unsigned n = 64; n >= 1; n--) {
        if (!(present & (1ull << (n - 1))))
            continue;
        wchar_t path[FVM_PATH_MAX];
        _snwprintf(path, FVM_PATH_MAX, L"%ls\\index-%u.fvm", b->path, n);
        mapped m;
        if (!map_file(path, &m))
            continue;
        size_t size = (size_t)m.size;
        uint8_t *copy = size ? malloc(size) : NULL;
        if (copy)
            memcpy(copy, m.data, size);
        unmap_file(&m);
        boxindex idx;
        fvm_error err;
        if (copy && boxindex_open(&idx, copy, size, NULL, &err) == FVM_OK && !boxindex_is_retired(&idx)) {
            *len = size;
            return copy;
        }
        free(copy);
    }
    return NULL;
}

/* NAME FILE [--since PACKAGE]; also the box lock and the running check. */
static int refuse_running(const box *b, HANDLE *lock)
{
    DWORD procs = box_process_count(b);
    if (procs)
        return cli_error("box '%s' is running (%lu processes); stop it first (fvm stop %s)", b->name,
                         (unsigned long)procs, b->name);
    int rc = box_stop_unless_running(b, FALSE);
    if (rc)
        return rc;
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_LOCK, name, FVM_OBJ_NAME_MAX);
    *lock = CreateMutexW(NULL, FALSE, name);
    if (!*lock)
        return cli_win_error(GetLastError(), "cannot create the lock of box '%s'", b->name);
    WaitForSingleObject(*lock, INFINITE);
    return 0;
}

static void release_lock(HANDLE lock)
{
    if (lock) {
        ReleaseMutex(lock);
        CloseHandle(lock);
    }
}

/* The creation time in a package's header (for --since). */
static int package_time(const char *file, int64_t *created)
{
    wchar_t w[WPATH];
    cli_wide(file, w, WPATH);
    mapped m;
    if (!map_file(w, &m))
        return cli_win_error(GetLastError(), "cannot read package '%s'", file);
    fvm_error err;
    fvm_status st = pack_parse(m.data, (size_t)m.size, NULL, &err);
    if (st == FVM_OK)
        memcpy(created, m.data + 16, 8);
    unmap_file(&m);
    return st == FVM_OK ? 0 : cli_error("'%s' is not a usable package: %s", file, err.message);
}

int cmd_export(int argc, char **argv)
{
    const char *name = NULL, *file = NULL, *since = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--since") && i + 1 < argc)
            since = argv[++i];
        else if (argv[i][0] == '-')
            return cli_error("export: unknown option '%s'", argv[i]), EXIT_USAGE;
        else if (!name)
            name = argv[i];
        else if (!file)
            file = argv[i];
        else
            return cli_error("usage: fvm export NAME FILE [--since PACKAGE]"), EXIT_USAGE;
    }
    if (!file)
        return cli_error("usage: fvm export NAME FILE [--since PACKAGE]"), EXIT_USAGE;
    box b;
    if (!box_init(&b, name))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box named '%s'", name);
    exporter x;
    memset(&x, 0, sizeof x);
    x.b = &b;
    int rc = since ? package_time(since, &x.since) : 0;
    if (rc)
        return rc;
    ULONGLONG started = GetTickCount64();
    g_timing = getenv("FVM_EXPORT_TIMING") != NULL;
    QueryPerformanceCounter(&g_t0);
    x.last_line = started;
    HANDLE lock = NULL;
    if ((rc = refuse_running(&b, &lock)) != 0)
        return rc;
    DWORD mode;
    x.terminal = GetConsoleMode(GetStdHandle(STD_OUTPUT_HANDLE), &mode);
    phase("locked");

    wchar_t out[WPATH], tmp[WPATH];
    cli_wide(file, out, WPATH);
    _snwprintf(tmp, WPATH, L"%ls.tmp", out);
    x.w.file = CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_FLAG_SEQUENTIAL_SCAN, NULL);
    if (x.w.file == INVALID_HANDLE_VALUE) {
        release_lock(lock);
        return cli_win_error(GetLastError(), "cannot create '%s'", file);
    }
    x.w.buf = malloc(WRITER_BUF);
    sha256_init(&x.w.hash);
    FILETIME now;
    GetSystemTimeAsFileTime(&now);
    uint8_t header[PACK_HEADER_FIXED + PACK_MAX_NAME];
    w_put(&x.w, header, pack_put_header(header, since ? PACK_FLAG_INCREMENTAL : 0, ft64(now), b.name,
                                        strlen(b.name)));

    wchar_t policy[FVM_PATH_MAX];
    _snwprintf(policy, FVM_PATH_MAX, L"%ls\\policy.ini", b.path);
    if (GetFileAttributesW(policy) != INVALID_FILE_ATTRIBUTES)
        w_blob_file(&x, PACK_REC_POLICY, L"policy.ini");
    size_t index_len = 0;
    uint8_t *index = read_index(&b, &index_len);
    if (index) {
        fvm_error err;
        x.have_index = boxindex_open(&x.idx, index, index_len, NULL, &err) == FVM_OK;
        uint8_t *sq = malloc(pack_squeeze_bound(index_len));
        if (sq) {
            size_t n = pack_squeeze(index, index_len, sq);
            w_record(&x.w, PACK_REC_INDEX, n);
            w_put(&x.w, sq, n);
            free(sq);
        } else {
            x.w.failed = TRUE;
        }
    }
    w_blob_file(&x, PACK_REC_REGISTRY, L"registry.dat");
    phase("index, policy, registry");

    /* <box>\drive\X -> \??\X: ; <box>\unc\server\share -> \??\UNC\server\share */
    wchar_t dir[WPATH], pattern[WPATH];
    _snwprintf(dir, WPATH, L"%ls\\drive", b.path);
    _snwprintf(pattern, WPATH, L"%ls\\*", dir);
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (fd.cFileName[0] == L'.' || fd.cFileName[1])
                continue;
            wchar_t box_dir[WPATH], host_nt[16];
            _snwprintf(box_dir, WPATH, L"%ls\\%ls", dir, fd.cFileName);
            _snwprintf(host_nt, 16, L"\\??\\%lc:", fd.cFileName[0]);
            export_tree(&x, box_dir, host_nt);
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    _snwprintf(dir, WPATH, L"%ls\\unc", b.path);
    _snwprintf(pattern, WPATH, L"%ls\\*", dir);
    h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (fd.cFileName[0] == L'.')
                continue;
            wchar_t server_dir[WPATH], share_pattern[WPATH];
            _snwprintf(server_dir, WPATH, L"%ls\\%ls", dir, fd.cFileName);
            _snwprintf(share_pattern, WPATH, L"%ls\\*", server_dir);
            WIN32_FIND_DATAW sd;
            HANDLE sh = FindFirstFileW(share_pattern, &sd);
            if (sh == INVALID_HANDLE_VALUE)
                continue;
            do {
                if (sd.cFileName[0] == L'.')
                    continue;
                wchar_t box_dir[WPATH], host_nt[WPATH];
                _snwprintf(box_dir, WPATH, L"%ls\\%ls", server_dir, sd.cFileName);
                _snwprintf(host_nt, WPATH, L"\\??\\UNC\\%ls\\%ls", fd.cFileName, sd.cFileName);
                export_tree(&x, box_dir, host_nt);
            } while (FindNextFileW(sh, &sd));
            FindClose(sh);
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    free(index);
    release_lock(lock);

    phase("files");
    uint8_t digest[32];
    sha256_ctx copy = x.w.hash;
    sha256_final(&copy, digest);
    w_record(&x.w, PACK_REC_END, 32);
    w_put(&x.w, digest, 32);
    w_flush(&x.w);
    BOOL ok = !x.w.failed && FlushFileBuffers(x.w.file);
    CloseHandle(x.w.file);
    free(x.w.buf);
    phase("flushed");
    if (x.terminal)
        printf("\n");
    if (!ok || !MoveFileExW(tmp, out, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
        DWORD e = GetLastError();
        DeleteFileW(tmp);
        return cli_win_error(e, "cannot write the package '%s'", file);
    }
    phase("renamed");
    printf("exported box '%s' to %s: %u files whole, %u as deltas, %u folders; %llu bytes of files in a package "
           "of %llu bytes%s, in %llu ms\n", b.name, file, x.files, x.deltas, x.dirs, (unsigned long long)x.file_bytes,
           (unsigned long long)x.w.total, since ? " (incremental)" : "", (unsigned long long)(GetTickCount64() - started));
    return 0;
}

/* ---- import -------------------------------------------------------------- */

typedef struct importer {
    box b;
    box dest;                    /* where pass 2 writes: the box itself (full) or its staging folder (incremental) */
    BOOL check;                  /* pass 1: check bases and paths; pass 2: write */
    BOOL incremental;
    uint8_t *index;              /* unsqueezed */
    size_t index_len;
    char problem[600];
    int failed;
} importer;

/* A path from the package (unaligned UTF-16LE) as a wide string. */
static BOOL path_of(const pack_file *f, wchar_t *out, size_t cap)
{
    if (f->path_len >= cap)
        return FALSE;
    memcpy(out, f->path, f->path_len * sizeof(wchar_t));
    out[f->path_len] = 0;
    return TRUE;
}

static fvm_status fail(importer *im, fvm_error *err, const char *fmt, const wchar_t *path)
{
    char p[WPATH * 3];
    cli_utf8(path, p, sizeof p);
    snprintf(im->problem, sizeof im->problem, fmt, p);
    return fvm_error_set(err, FVM_E_INVALID, "%s", im->problem);
}

BOOL pack_make_dirs(const wchar_t *path)
{
    if (GetFileAttributesW(path) != INVALID_FILE_ATTRIBUTES)
        return TRUE;
    wchar_t parent[WPATH];
    _snwprintf(parent, WPATH, L"%ls", path);
    parent[WPATH - 1] = 0;
    wchar_t *slash = wcsrchr(parent, L'\\');
    if (slash && slash - parent > 2) {
        *slash = 0;
        if (!pack_make_dirs(parent))
            return FALSE;
    }
    return CreateDirectoryW(path, NULL) || GetLastError() == ERROR_ALREADY_EXISTS;
}

/* FVM_IMPORT_FAIL_AT=K: the K-th write or move of an import fails as a full
 * disk would (the tests check that nothing is half-applied then). */
static long g_fail_at = -1, g_op_no;

BOOL pack_injected_failure(void)
{
    if (g_fail_at >= 0 && ++g_op_no == g_fail_at) {
        SetLastError(ERROR_DISK_FULL);
        return TRUE;
    }
    return FALSE;
}

static BOOL write_whole(const wchar_t *path, const void *data, size_t len)
{
    if (pack_injected_failure())
        return FALSE;
    HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return FALSE;
    DWORD wrote;
    BOOL ok = TRUE;
    const uint8_t *p = data;
    while (ok && len) {
        DWORD n = len > (1u << 30) ? (1u << 30) : (DWORD)len;
        ok = WriteFile(h, p, n, &wrote, NULL) && wrote == n;
        p += n;
        len -= n;
    }
    CloseHandle(h);
    return ok;
}

static void set_facts(const wchar_t *path, const pack_file *f)
{
    HANDLE h = CreateFileW(path, FILE_WRITE_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
                           FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (h != INVALID_HANDLE_VALUE) {
        FILETIME c = {(DWORD)f->ctime, (DWORD)((uint64_t)f->ctime >> 32)};
        FILETIME a = {(DWORD)f->atime, (DWORD)((uint64_t)f->atime >> 32)};
        FILETIME m = {(DWORD)f->mtime, (DWORD)((uint64_t)f->mtime >> 32)};
        SetFileTime(h, &c, &a, &m);
        CloseHandle(h);
    }
    SetFileAttributesW(path, f->attributes & (FILE_ATTRIBUTE_READONLY | FILE_ATTRIBUTE_HIDDEN |
                                              FILE_ATTRIBUTE_SYSTEM | FILE_ATTRIBUTE_ARCHIVE));
}

static fvm_status on_header(void *ctx, const pack_header *h, fvm_error *err)
{
    ((importer *)ctx)->incremental = (h->flags & PACK_FLAG_INCREMENTAL) != 0;
    return FVM_OK;
}

static fvm_status on_blob(void *ctx, pack_record_type type, const uint8_t *data, size_t len, fvm_error *err)
{
    importer *im = ctx;
    if (type == PACK_REC_INDEX) {
        if (im->check) {
            uint64_t size;
            if (pack_unsqueezed_size(data, len, &size, err) != FVM_OK || size > (1ull << 32))
                return fvm_error_set(err, FVM_E_INVALID, "the package's box index is damaged");
            im->index = malloc((size_t)size ? (size_t)size : 1);
            im->index_len = (size_t)size;
            if (!im->index || pack_unsqueeze(data, len, im->index, im->index_len, err) != FVM_OK)
                return fvm_error_set(err, FVM_E_INVALID, "the package's box index is damaged");
            fvm_error e;
            if (boxindex_validate(im->index, im->index_len, &e) != FVM_OK)
                return fvm_error_set(err, FVM_E_INVALID, "the package's box index is damaged: %s", e.message);
            return FVM_OK;
        }
        /* A full import writes into the new box; an incremental one stages
         * it (the box's own index files are swapped for it at the end). */
        wchar_t path[FVM_PATH_MAX];
        _snwprintf(path, FVM_PATH_MAX, L"%ls\\index-1.fvm", im->dest.path);
        if (!write_whole(path, im->index, im->index_len))
            return fvm_error_set(err, FVM_E_IO, "cannot write the box index");
        return FVM_OK;
    }
    if (im->check)
        return FVM_OK;
    wchar_t path[FVM_PATH_MAX];
    _snwprintf(path, FVM_PATH_MAX, L"%ls\\%ls", im->dest.path, type == PACK_REC_POLICY ? L"policy.ini"
                                                                                        : L"registry.dat");
    if (!write_whole(path, data, len))
        return fvm_error_set(err, FVM_E_IO, "cannot write %s", type == PACK_REC_POLICY ? "policy.ini" : "registry.dat");
    return FVM_OK;
}

static fvm_status box_target(importer *im, const pack_file *f, wchar_t *nt, wchar_t *target, fvm_error *err)
{
    if (!path_of(f, nt, WPATH) || !sync_box_copy_path(&im->dest, nt, target, WPATH))
        return fail(im, err, "a path in the package is not a drive or UNC path: %s", nt);
    return FVM_OK;
}

static fvm_status on_file(void *ctx, const pack_file *f, const uint8_t *data, fvm_error *err)
{
    importer *im = ctx;
    wchar_t nt[WPATH], target[WPATH];
    fvm_status st = box_target(im, f, nt, target, err);
    if (st != FVM_OK || im->check)
        return st;
    wchar_t parent[WPATH];
    _snwprintf(parent, WPATH, L"%ls", target);
    *wcsrchr(parent, L'\\') = 0;
    SetFileAttributesW(target, FILE_ATTRIBUTE_NORMAL);
    if (!pack_make_dirs(parent) || !write_whole(target, data, (size_t)f->size))
        return fail(im, err, "cannot write the box copy of %s", nt);
    set_facts(target, f);
    return FVM_OK;
}

static fvm_status on_delta(void *ctx, const pack_file *f, const pack_delta *d, fvm_error *err)
{
    importer *im = ctx;
    wchar_t nt[WPATH], target[WPATH], host[WPATH];
    fvm_status st = box_target(im, f, nt, target, err);
    if (st != FVM_OK)
        return st;
    sync_nt_to_win32(nt, host, WPATH);
    if (im->check) {
        /* The base must be here, as the exporting host had it. */
        boxindex_base base = {d->base_size, d->base_mtime, {0}};
        memcpy(base.content_hash, d->base_hash, 32);
        WIN32_FILE_ATTRIBUTE_DATA a;
        if (!GetFileAttributesExW(host, GetFileExInfoStandard, &a))
            return fail(im, err, "the base of a changed file is missing on this host: %s", host);
        if (sync_host_changed(host, &base))
            return fail(im, err, "the base of a changed file differs on this host (not the version the box "
                                 "started from): %s", host);
        return FVM_OK;
    }
    mapped base;
    if (!map_file(host, &base) && d->base_size)
        return fail(im, err, "cannot read the base %s", host);
    wchar_t parent[WPATH];
    _snwprintf(parent, WPATH, L"%ls", target);
    *wcsrchr(parent, L'\\') = 0;
    SetFileAttributesW(target, FILE_ATTRIBUTE_NORMAL);
    HANDLE h = pack_make_dirs(parent) && !pack_injected_failure()
                   ? CreateFileW(target, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL) : INVALID_HANDLE_VALUE;
    if (h == INVALID_HANDLE_VALUE) {
        unmap_file(&base);
        return fail(im, err, "cannot write the box copy of %s", nt);
    }
    size_t pos = 0;
    pack_op op;
    BOOL ok = TRUE;
    while (ok && pack_delta_next(d, &pos, &op)) {
        const uint8_t *src = op.copy ? base.data + op.offset : op.data;
        uint64_t left = op.length;
        while (ok && left) {
            DWORD n = left > (1u << 30) ? (1u << 30) : (DWORD)left, wrote;
            ok = op.copy && op.offset + op.length > base.size ? FALSE
                                                              : WriteFile(h, src, n, &wrote, NULL) && wrote == n;
            src += n;
            left -= n;
        }
    }
    CloseHandle(h);
    unmap_file(&base);
    if (!ok)
        return fail(im, err, "cannot write the box copy of %s", nt);
    set_facts(target, f);
    return FVM_OK;
}

static fvm_status on_dir(void *ctx, const pack_file *f, fvm_error *err)
{
    importer *im = ctx;
    wchar_t nt[WPATH], target[WPATH];
    fvm_status st = box_target(im, f, nt, target, err);
    if (st != FVM_OK || im->check)
        return st;
    if (!pack_make_dirs(target))
        return fail(im, err, "cannot create the box folder of %s", nt);
    return FVM_OK;
}

BOOL pack_remove_tree(const wchar_t *dir)
{
    wchar_t pattern[WPATH], child[WPATH];
    _snwprintf(pattern, WPATH, L"%ls\\*", dir);
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L".."))
                continue;
            _snwprintf(child, WPATH, L"%ls\\%ls", dir, fd.cFileName);
            if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
                pack_remove_tree(child);
            else {
                SetFileAttributesW(child, FILE_ATTRIBUTE_NORMAL);
                DeleteFileW(child);
            }
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    return RemoveDirectoryW(dir);
}

/* An incremental import is swapped into the box by importswap.c
 * (import_swap_in), journalled so that a kill half way is finished or
 * rolled back by the next fvm verb that opens the box. */

int cmd_import(int argc, char **argv)
{
    char *fail_at = getenv("FVM_IMPORT_FAIL_AT");
    g_fail_at = fail_at ? atol(fail_at) : -1;
    if (argc < 2 || argc > 3)
        return cli_error("usage: fvm import FILE [NAME]"), EXIT_USAGE;
    wchar_t file[WPATH];
    cli_wide(argv[1], file, WPATH);
    mapped m;
    if (!map_file(file, &m))
        return cli_win_error(GetLastError(), "cannot read package '%s'", argv[1]);
    fvm_error err;
    if (pack_parse(m.data, (size_t)m.size, NULL, &err) != FVM_OK) {
        unmap_file(&m);
        return cli_error("package '%s' refused: %s; nothing was imported", argv[1], err.message);
    }
    importer *im = calloc(1, sizeof *im);
    if (!im) {
        unmap_file(&m);
        return cli_error("out of memory");
    }
    char name[PACK_MAX_NAME + 1];
    size_t name_len = m.data[24];
    memcpy(name, m.data + PACK_HEADER_FIXED, name_len);
    name[name_len] = 0;
    int rc = 0;
    HANDLE lock = NULL;
    BOOL created = FALSE;
    if (!box_init(&im->b, argc == 3 ? argv[2] : name)) {
        rc = EXIT_FAIL;
        goto out;
    }
    pack_visitor v = {on_header, on_blob, on_file, on_delta, on_dir, im};
    im->check = TRUE;
    if (pack_parse(m.data, (size_t)m.size, &v, &err) != FVM_OK) {
        rc = cli_error("package '%s' refused: %s; nothing was imported", argv[1], err.message);
        goto out;
    }
    if (im->incremental) {
        if (!box_exists(&im->b)) {
            rc = cli_error("'%s' is an incremental package: import it into the box it was made from (its earlier "
                           "package imported first); there is no box named '%s'", argv[1], im->b.name);
            goto out;
        }
        if ((rc = refuse_running(&im->b, &lock)) != 0)
            goto out;
    } else {
        if (box_exists(&im->b)) {
            rc = cli_error("box '%s' already exists: remove it (fvm rm %s) or import under another name (fvm "
                           "import FILE NAME)", im->b.name, im->b.name);
            goto out;
        }
        if ((rc = box_create(&im->b, NULL, 0)) != 0)
            goto out;
        created = TRUE;
    }
    im->check = FALSE;
    im->dest = im->b;
    if (im->incremental) {
        /* Staged first, swapped in at the end (importswap.c). box_exists
         * above has finished or rolled back a swap a kill interrupted; an
         * import-old still here has no journal to say how far it got. */
        _snwprintf(im->dest.path, FVM_PATH_MAX, L"%ls\\sync\\import-old", im->b.path);
        if (GetFileAttributesW(im->dest.path) != INVALID_FILE_ATTRIBUTES) {
            rc = cli_error("an earlier import into box '%s' was interrupted while it swapped files in, and its "
                           "journal is gone: the box's "
                           "old files are in %ls (move them back, or delete that folder), then import again",
                           im->b.name, im->dest.path);
            goto out;
        }
        _snwprintf(im->dest.path, FVM_PATH_MAX, L"%ls\\sync", im->b.path);
        CreateDirectoryW(im->dest.path, NULL);
        _snwprintf(im->dest.path, FVM_PATH_MAX, L"%ls\\sync\\import", im->b.path);
        pack_remove_tree(im->dest.path);   /* a staging a killed import left: never swapped in */
        if (!CreateDirectoryW(im->dest.path, NULL)) {
            rc = cli_win_error(GetLastError(), "cannot create %ls", im->dest.path);
            goto out;
        }
    }
    if (pack_parse(m.data, (size_t)m.size, &v, &err) != FVM_OK) {
        rc = cli_error("import of '%s' failed: %s; %s", argv[1], err.message,
                       created ? "nothing was imported" : "the box is as it was");
        pack_remove_tree(created ? im->b.path : im->dest.path);   /* nothing half-applied */
        goto out;
    }
    if (im->incremental) {
        rc = import_swap_in(&im->b, im->dest.path, im->index, im->index_len, argv[1]);
        pack_remove_tree(im->dest.path);
        if (rc)
            goto out;
    }
    printf("imported %s into box '%s'%s\n", argv[1], im->b.name, im->incremental ? " (incremental)" : "");
out:
    release_lock(lock);
    free(im->index);
    free(im);
    unmap_file(&m);
    return rc;
}
