// C shim for Gnet: the Linux APIs that Swift cannot reach comfortably (packed epoll_event,
// errno, CMSG macros, relaxed atomics on shared counters). Everything here is a thin,
// allocation-free wrapper; policy lives in Swift.
#ifndef CGNET_LINUX_H
#define CGNET_LINUX_H

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/openat2.h>
#include <sys/stat.h>
#ifndef O_PATH
#define O_PATH 010000000
#endif

// Declared here because the system module may have been built without _GNU_SOURCE.
extern int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
extern int sched_setaffinity(__pid_t pid, size_t size, const cpu_set_t *set);

/// One readiness event, unpacked from the (packed on x86_64) struct epoll_event.
typedef struct {
    uint32_t events;
    uint64_t token;
} gnet_event_t;

static inline int gnet_errno(void) { return errno; }

// Raw system calls for the hot path. glibc's read/write/writev/epoll_wait wrappers are
// pthread cancellation points: in a multi-threaded process each call pays two extra calls
// (~60 instructions) to enable and disable asynchronous cancellation, which Gnet never uses.
extern long syscall(long number, ...);
#include <sys/syscall.h>
static inline ssize_t gnet_read(int fd, void *buf, size_t n) { return (ssize_t)syscall(SYS_read, fd, buf, n); }
static inline ssize_t gnet_write(int fd, const void *buf, size_t n) { return (ssize_t)syscall(SYS_write, fd, buf, n); }
static inline ssize_t gnet_writev(int fd, const struct iovec *iov, int n) { return (ssize_t)syscall(SYS_writev, fd, iov, n); }
static inline void gnet_set_errno(int e) { errno = e; }

static inline int gnet_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

/// epoll_wait into an unpacked array; at most 512 events per call.
static inline int gnet_epoll_wait(int epfd, gnet_event_t *out, int max, int timeout_ms) {
    struct epoll_event ev[512];
    if (max > 512) max = 512;
    int n = (int)syscall(SYS_epoll_wait, epfd, ev, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        out[i].events = ev[i].events;
        out[i].token = ev[i].data.u64;
    }
    return n;
}

static inline uint32_t gnet_EPOLLIN(void) { return EPOLLIN; }
static inline uint32_t gnet_EPOLLOUT(void) { return EPOLLOUT; }
static inline uint32_t gnet_EPOLLERR(void) { return EPOLLERR; }
static inline uint32_t gnet_EPOLLHUP(void) { return EPOLLHUP; }
static inline uint32_t gnet_EPOLLRDHUP(void) { return EPOLLRDHUP; }
static inline uint32_t gnet_EPOLLET(void) { return EPOLLET; }
static inline uint32_t gnet_EPOLLEXCLUSIVE(void) { return EPOLLEXCLUSIVE; }

static inline int gnet_socket(int domain, int type, int protocol) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}
static inline int gnet_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
static inline int gnet_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
static inline int gnet_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static inline int gnet_SOCK_STREAM(void) { return SOCK_STREAM; }
static inline int gnet_SOCK_DGRAM(void) { return SOCK_DGRAM; }

static inline int gnet_set_int_option(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value);
}
static inline int gnet_get_int_option(int fd, int level, int name, int *value) {
    socklen_t len = sizeof *value;
    return getsockopt(fd, level, name, value, &len);
}
static inline int gnet_set_linger(int fd, int on, int seconds) {
    struct linger l = { .l_onoff = on, .l_linger = seconds };
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}
static inline int gnet_bind_to_device(int fd, const char *name) {
    return setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name));
}
static inline int gnet_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
    return err;
}
static inline int gnet_sendmsg_flags(void) { return MSG_NOSIGNAL; }

static inline int64_t gnet_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/// Pins the calling thread to one CPU (benchmarks).
static inline int gnet_pin_to_cpu(int cpu) {
    cpu_set_t set;
    memset(&set, 0, sizeof set);
    ((unsigned long *)&set)[cpu / (8 * sizeof(unsigned long))] |= 1UL << (cpu % (8 * sizeof(unsigned long)));
    return sched_setaffinity(0, sizeof set, &set);
}

/// Blocks `sigs` for the calling thread (and threads it starts later) and returns a
/// non-blocking signalfd that reads them; -1 with errno on failure.
static inline int gnet_signalfd(const int *sigs, int n) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < n; i++) sigaddset(&set, sigs[i]);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0) { errno = rc; return -1; }
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/// The number of the next pending signal on a signalfd, 0 when none, -1 on error.
static inline int gnet_read_signal(int fd) {
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    if (n == (ssize_t)sizeof si) return (int)si.ssi_signo;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -1;
}

/// openat2(2) of `path` relative to the directory `dirfd`, refusing to resolve outside it: no
/// `..` above it, no absolute path, no symbolic link that leads out (EXDEV), no /proc magic link
/// (ELOOP). Close-on-exec is added to `flags`. -1 with errno on failure (ENOSYS before Linux 5.6).
static inline int gnet_open_beneath(int dirfd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}
static inline int gnet_O_PATH(void) { return O_PATH; }

/// One step of a busy loop the optimizer cannot remove (the daemon's watchdog test hook).
static inline uint64_t gnet_spin_step(uint64_t n) { __asm__ volatile("" : "+r"(n)); return n + 1; }

/// Ignores SIGPIPE for the whole process: a write to a reset peer must come back as EPIPE.
static inline void gnet_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

/// Counters a loop keeps about itself. One writer (the loop thread); readers anywhere, even in
/// another process when the block lives in shared memory. Allocate blocks 64-byte aligned so two
/// loops' counters never share a cache line.
typedef struct gnet_loop_counters {
    uint64_t connections_open;
    uint64_t connections_accepted;
    uint64_t connections_closed;
    uint64_t connections_rejected;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t read_calls;
    uint64_t write_calls;
    uint64_t loop_iterations;
    uint64_t errors;
    uint64_t datagrams_in;
    uint64_t datagrams_out;
} gnet_loop_counters_t;

/// Room for what a worker's services publish, all services together: per service its traffic
/// (a gnet_loop_counters_t), its kind's counters and its histograms (SlotLayout in GnetDaemon).
#define GNET_SERVICE_COUNTERS (2048 - 8 - 12)

/// One worker's slot in the daemon's shared stats page. The supervisor writes the identity
/// fields; the worker writes `state`, its loop counters and its services' figures. 16 KiB (pages
/// of a slot nobody writes are never touched), so slots never share a cache line.
typedef struct gnet_worker_slot {
    uint64_t in_use;
    uint64_t pid;
    uint64_t generation;
    uint64_t index;
    uint64_t state;            /* 0 starting, 1 serving, 2 draining, 3 exited, 4 stalled */
    uint64_t started_unix_ms;
    uint64_t reserved[2];
    gnet_loop_counters_t counters;
    uint64_t service_counters[GNET_SERVICE_COUNTERS];
} gnet_worker_slot_t;

_Static_assert(sizeof(gnet_worker_slot_t) == 16384, "a stats slot is 16 KiB");

/// The first of slot's service counters.
static inline uint64_t *gnet_service_counters(gnet_worker_slot_t *slot) { return slot->service_counters; }
static inline int gnet_service_counter_capacity(void) { return GNET_SERVICE_COUNTERS; }

extern int memfd_create(const char *name, unsigned int flags);
/// An anonymous shared-memory file that survives exec (passed to workers by descriptor).
static inline int gnet_memfd(const char *name) { return memfd_create(name, 0x0001U /* MFD_CLOEXEC */); }

static inline uint64_t gnet_realtime_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/// Credentials of the process at the other end of a Unix socket.
static inline int gnet_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid) {
    struct { int pid; unsigned uid; unsigned gid; } cred;   /* struct ucred, which needs _GNU_SOURCE */
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -1;
    *pid = cred.pid; *uid = cred.uid; *gid = cred.gid;
    return 0;
}

static inline void gnet_counter_store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

static inline void gnet_counter_add(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline void gnet_counter_sub(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) - v, __ATOMIC_RELAXED);
}
static inline uint64_t gnet_counter_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
/// Orders the stores before it ahead of the stores after it (a writer publishing data).
static inline void gnet_release_fence(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
/// Orders the loads after it behind the loads before it (a reader of published data).
static inline void gnet_acquire_fence(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }

// RFC 9110 token characters as a 256-bit map: branch-free, one load per byte (the HTTP
// head scanner runs it over every method and field-name byte).
static inline int gnet_http_is_token(unsigned char b) {
    static const uint64_t map[4] = { 0x03ff6cfa00000000ULL, 0x57ffffffc7fffffeULL, 0, 0 };
    return (int)((map[b >> 6] >> (b & 63)) & 1);
}

#endif

/// The source revision the binary was built from: the packaging passes
/// -Xcc -DGNET_GIT_REVISION='"…"'; a plain `swift build` says "unknown".
#ifndef GNET_GIT_REVISION
#define GNET_GIT_REVISION "unknown"
#endif
static inline const char *gnet_git_revision(void) { return GNET_GIT_REVISION; }

/// The running program's GNU build ID (the linker's hash of the binary) as lowercase hex in
/// `out` (at least 41 bytes for SHA-1 IDs, NUL-terminated); 0 on success, -1 if it has none.
int gnet_build_id(char *out, size_t size);

/// Sets the calling thread's name (`comm`, at most 15 bytes shown): prctl(PR_SET_NAME).
int gnet_set_thread_name(const char *name);
