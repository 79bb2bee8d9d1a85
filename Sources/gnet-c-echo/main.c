// The physical reference for echo benchmarks: the least a server can do per message on Linux.
// One thread, level-triggered epoll, one read buffer, write straight back; a short write is
// kept and finished on EPOLLOUT (the only bookkeeping a correct echo server cannot avoid).
//
// usage: gnet-c-echo [port]   (port 0 = kernel's choice; prints "listening on PORT" when ready)
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
#include <unistd.h>

#define BUF (64 * 1024)

typedef struct { char *data; size_t len, cap; } pending_t;

static pending_t *pend;      // per fd: bytes the kernel did not take yet
static int pend_cap;
static volatile sig_atomic_t stop;

static void on_term(int s) { (void)s; stop = 1; }

static pending_t *pending_for(int fd) {
    if (fd >= pend_cap) {
        int n = pend_cap ? pend_cap : 1024;
        while (n <= fd) n *= 2;
        pend = realloc(pend, sizeof *pend * n);
        memset(pend + pend_cap, 0, sizeof *pend * (n - pend_cap));
        pend_cap = n;
    }
    return &pend[fd];
}

static void drop(int ep, int fd) {
    pending_t *p = pending_for(fd);
    free(p->data);
    memset(p, 0, sizeof *p);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

static void keep(pending_t *p, const char *b, size_t n) {
    if (p->len + n > p->cap) {
        p->cap = (p->len + n) * 2;
        p->data = realloc(p->data, p->cap);
    }
    memcpy(p->data + p->len, b, n);
    p->len += n;
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
    static char buf[BUF];
    struct epoll_event evs[512];
    while (!stop) {
        int n = epoll_wait(ep, evs, 512, -1);
        if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            pending_t *p = pending_for(fd);
            if (evs[i].events & EPOLLOUT) {
                ssize_t w = write(fd, p->data, p->len);
                if (w < 0 && errno != EAGAIN) { drop(ep, fd); continue; }
                if (w > 0) { memmove(p->data, p->data + w, p->len - w); p->len -= w; }
                if (p->len == 0) {
                    struct epoll_event ce = { .events = EPOLLIN, .data.fd = fd };
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, buf, BUF);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { drop(ep, fd); continue; }
            if (r < 0) continue;
            if (p->len > 0) { keep(p, buf, r); continue; }
            ssize_t w = write(fd, buf, r);
            if (w < 0 && errno != EAGAIN) { drop(ep, fd); continue; }
            if (w < 0) w = 0;
            if (w < r) {
                keep(p, buf + w, r - w);
                struct epoll_event ce = { .events = EPOLLIN | EPOLLOUT, .data.fd = fd };
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
            }
        }
    }
    return 0;
}
