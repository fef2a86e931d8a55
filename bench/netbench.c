/* netbench.c - loopback socket costs, for bench/net.sh (boxed/unboxed).
 *
 *   netbench connect N   N times: connect to a loopback server of this
 *                        process and close; prints "connect <us per op>"
 *   netbench bulk MB     sends MB megabytes over one loopback connection;
 *                        prints "bulk <MB per second>"
 *   netbench resolve N [NAME]  N times getaddrinfo(NAME), by default
 *                        "localhost", a name of the hosts file; prints
 *                        "resolve <us per op>" (in a box a name the hosts
 *                        file does not have goes to the broker: the box's
 *                        network namespace has no resolver of its own)
 *   ... [PORT]           the server binds 127.0.0.1:PORT (default: any free
 *                        port); in an isolated box a fixed port is one of
 *                        the box's own, so every connect is looked up in
 *                        the box's port map
 * The server is a thread of the same process: in a box both sides go
 * through the runtime's socket hook. */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static SOCKET g_listener;
static volatile LONG g_bulk;

static DWORD WINAPI server(void *arg)
{
    static char buf[65536];
    for (;;) {
        SOCKET c = accept(g_listener, NULL, NULL);
        if (c == INVALID_SOCKET)
            return 0;
        if (g_bulk)
            while (recv(c, buf, sizeof buf, 0) > 0) {
            }
        closesocket(c);
    }
}

static int resolve(long n, const char *name)
{
    LARGE_INTEGER f, t0, t1;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t0);
    for (long i = 0; i < n; i++) {
        ADDRINFOA hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(name, "80", &hints, &res) || !res)
            return 1;
        freeaddrinfo(res);
    }
    QueryPerformanceCounter(&t1);
    printf("resolve %.1f\n", (double)(t1.QuadPart - t0.QuadPart) * 1e6 / f.QuadPart / n);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    WSADATA wsa;
    WSAStartup(MAKEWORD(2, 2), &wsa);
    if (argc != 3 && argc != 4)
        return 2;
    long n = wcstol(argv[2], NULL, 10);
    g_bulk = !wcscmp(argv[1], L"bulk");
    if (!wcscmp(argv[1], L"resolve")) {
        static char name[256] = "localhost";
        if (argc == 4)
            WideCharToMultiByte(CP_UTF8, 0, argv[3], -1, name, sizeof name, NULL, NULL);
        return resolve(n, name);
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (argc == 4)
        sa.sin_port = htons((u_short)wcstol(argv[3], NULL, 10));
    g_listener = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    int len = sizeof sa;
    if (bind(g_listener, (struct sockaddr *)&sa, sizeof sa) || listen(g_listener, 128) ||
        getsockname(g_listener, (struct sockaddr *)&sa, &len))
        return 1;
    CreateThread(NULL, 0, server, NULL, 0, NULL);
    LARGE_INTEGER f, t0, t1;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t0);
    if (!g_bulk) {
        for (long i = 0; i < n; i++) {
            SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
            if (connect(s, (struct sockaddr *)&sa, sizeof sa))
                return 1;
            closesocket(s);
        }
        QueryPerformanceCounter(&t1);
        printf("connect %.1f\n", (double)(t1.QuadPart - t0.QuadPart) * 1e6 / f.QuadPart / n);
    } else {
        static char buf[65536];
        SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
        if (connect(s, (struct sockaddr *)&sa, sizeof sa))
            return 1;
        long long total = (long long)n << 20, sent = 0;
        while (sent < total) {
            int k = send(s, buf, sizeof buf, 0);
            if (k <= 0)
                return 1;
            sent += k;
        }
        closesocket(s);
        QueryPerformanceCounter(&t1);
        printf("bulk %.1f\n", (double)n / ((double)(t1.QuadPart - t0.QuadPart) / f.QuadPart));
    }
    return 0;
}
