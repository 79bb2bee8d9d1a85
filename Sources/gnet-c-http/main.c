// The physical reference for HTTP benchmarks: the least a server can do per keep-alive or
// pipelined request on Linux. One thread, level-triggered epoll; every request head (ended by
// CRLF CRLF, bodies not supported) gets the same 13-byte answer with the same headers gnetd
// sends; the answers to one read's pipelined requests go out with one write.
//
// usage: gnet-c-http [port]   (0 = kernel's choice; prints "listening on PORT" when ready)
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (64 * 1024)
static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

static unsigned char *match;   // per fd: how much of "\r\n\r\n" the previous read ended with
static int match_cap;
static char response[256];
static size_t response_len;
static time_t response_second;

static void refresh_date(void) {
    time_t now = time(NULL);
    if (now == response_second) return;
    response_second = now;
    struct tm tm;
    gmtime_r(&now, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    response_len = (size_t)snprintf(response, sizeof response,
        "HTTP/1.1 200 OK\r\nServer: gnet\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: %s\r\n\r\nHello, World!", date);
}

static unsigned char *match_for(int fd) {
    if (fd >= match_cap) {
        int n = match_cap ? match_cap : 1024;
        while (n <= fd) n *= 2;
        match = realloc(match, n);
        memset(match + match_cap, 0, n - match_cap);
        match_cap = n;
    }
    return &match[fd];
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) { perror("bind/listen"); return 1; }
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("listening on %d\n", ntohs(a.sin_port));
    fflush(stdout);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls };
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    static char in[BUF], out[BUF * 4];
    struct epoll_event evs[512];
    static const char pattern[4] = { '\r', '\n', '\r', '\n' };
    while (!stop) {
        int n = epoll_wait(ep, evs, 512, -1);
        if (n < 0) { if (errno == EINTR) continue; return 1; }
        refresh_date();
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    *match_for(c) = 0;
                    struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, in, BUF);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                close(fd);
                continue;
            }
            unsigned char *m = match_for(fd);
            size_t o = 0;
            for (ssize_t k = 0; k < r; k++) {
                if (in[k] == pattern[*m]) { if (++*m == 4) { *m = 0; if (o + response_len <= sizeof out) { memcpy(out + o, response, response_len); o += response_len; } } }
                else *m = in[k] == '\r' ? 1 : 0;
            }
            if (o > 0 && write(fd, out, o) != (ssize_t)o) close(fd);  /* a reference keeps no backlog: a short write ends the connection */
        }
    }
    return 0;
}
