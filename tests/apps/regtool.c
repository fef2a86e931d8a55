/* regtool.c - registry helper of the e2e tests, run unboxed: it does what
 * reg.exe cannot (a value of any type, such as FVM's tombstone type, under
 * an absolute NT key path) and shows a box's live tree as common/regstore
 * sees it.
 *
 *   regtool tree BOXPATH                 prints FVM.<h>, the box's tree name
 *   regtool set NTKEY NAME TYPE [HEX]    creates NTKEY and sets a value
 *                                        (TYPE in hex, data as hex bytes)
 *   regtool dump NTKEY                   prints the tree below NTKEY as text
 *   regtool load NTKEY FILE              creates NTKEY and loads registry text
 *                                        (core/regfile.h) into it
 *   regtool exists NTKEY                 exit 0 if the key exists, 1 if not */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "common/regstore.h"

int wmain(int argc, wchar_t **argv)
{
    if (argc == 3 && !wcscmp(argv[1], L"tree")) {
        wchar_t name[REGSTORE_TREE_NAME_CHARS];
        regstore_tree_name(argv[2], name);
        printf("%ls\n", name);
        return 0;
    }
    if (argc == 3 && !wcscmp(argv[1], L"exists")) {
        HANDLE key;
        NTSTATUS st = regstore_open_key(NULL, argv[2], wcslen(argv[2]), KEY_READ, &key);
        if (st >= 0)
            CloseHandle(key);
        return st >= 0 ? 0 : 1;
    }
    if ((argc == 5 || argc == 6) && !wcscmp(argv[1], L"set")) {
        HANDLE key;
        NTSTATUS st = regstore_create_key(NULL, argv[2], wcslen(argv[2]), &key, NULL);
        if (st < 0) {
            fprintf(stderr, "regtool: cannot create %ls: 0x%08lx\n", argv[2], (unsigned long)st);
            return 2;
        }
        uint8_t data[1024];
        size_t size = 0;
        for (const wchar_t *h = argc == 6 ? argv[5] : L""; h[0] && h[1] && size < sizeof data; h += 2) {
            wchar_t pair[3] = {h[0], h[1], 0};
            data[size++] = (uint8_t)wcstoul(pair, NULL, 16);
        }
        /* The text form of the value goes through the same loader the
         * broker uses, so any type and name reach the registry as given. */
        regfile_buf text = {0};
        fvm_error err;
        regfile_put_header(&text, &err);
        regfile_put_key(&text, NULL, 0, &err);
        regfile_put_value(&text, (const uint16_t *)argv[3], wcslen(argv[3]), (uint32_t)wcstoul(argv[4], NULL, 16),
                          data, size, &err);
        regfile_put_end(&text, &err);
        fvm_status fs = regstore_load(key, text.data, text.len, &err);
        CloseHandle(key);
        if (fs != FVM_OK) {
            fprintf(stderr, "regtool: %s\n", err.message);
            return 2;
        }
        return 0;
    }
    if (argc == 4 && !wcscmp(argv[1], L"load")) {
        char *text;
        size_t len;
        fvm_error err;
        HANDLE key;
        if (regstore_read_file(argv[3], &text, &len, &err) != FVM_OK) {
            fprintf(stderr, "regtool: %s\n", err.message);
            return 2;
        }
        NTSTATUS st = regstore_create_key(NULL, argv[2], wcslen(argv[2]), &key, NULL);
        if (st < 0) {
            fprintf(stderr, "regtool: cannot create %ls: 0x%08lx\n", argv[2], (unsigned long)st);
            return 2;
        }
        fvm_status fs = regstore_load(key, text, len, &err);
        CloseHandle(key);
        free(text);
        if (fs != FVM_OK) {
            fprintf(stderr, "regtool: %s\n", err.message);
            return 2;
        }
        return 0;
    }
    if (argc == 3 && !wcscmp(argv[1], L"dump")) {
        HANDLE key;
        NTSTATUS st = regstore_open_key(NULL, argv[2], wcslen(argv[2]), KEY_READ, &key);
        if (st < 0) {
            fprintf(stderr, "regtool: cannot open %ls: 0x%08lx\n", argv[2], (unsigned long)st);
            return 1;
        }
        regfile_buf text = {0};
        fvm_error err;
        BOOL empty;
        if (regstore_dump(key, &text, &empty, &err) != FVM_OK) {
            fprintf(stderr, "regtool: %s\n", err.message);
            return 2;
        }
        fwrite(text.data, 1, text.len, stdout);
        return 0;
    }
    fprintf(stderr, "usage: regtool tree BOXPATH | set NTKEY NAME TYPE [HEX] | dump NTKEY | load NTKEY FILE | exists NTKEY\n");
    return 2;
}
