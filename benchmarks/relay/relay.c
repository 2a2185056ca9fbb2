/* relay.c: the C reference of `ktnchat bench --compare` (issue 17): the fan-out limit.
 *
 * Job: accept TCP clients on 127.0.0.1:PORT; every complete line ('\n'-terminated) read from
 * one client is written, unchanged, to every other client (not back to its sender). On
 * accept a client gets one greeting line, "hello relay\r\n", so that it knows it is in the
 * room (its "login"); nothing else is ever sent but other clients' lines. No parsing beyond
 * finding the last newline of what was read; no rooms, names, flood control or limits.
 *
 * Design: one thread, level-triggered epoll. One pass = one epoll_wait: every readable
 * client is read once (up to READ_CHUNK bytes); the complete lines of that read are appended
 * to every other client's output buffer. After the pass each client with new output gets
 * one write() (coalesced writes: one per receiver per pass, whatever the number of lines and
 * senders). What the kernel does not take waits in the buffer, with EPOLLOUT, until it does.
 * A client whose unsent output passes MAX_OUT bytes is dropped (a stalled reader cannot
 * take all the memory).
 *
 * Build: gcc -O2 -o relay relay.c      Run: ./relay PORT      Stop: SIGTERM (or SIGINT).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define MAX_OUT (64u * 1024u * 1024u)
#define MAX_EVENTS 1024
static const char GREETING[] = "hello relay\r\n";

struct client {
    int fd;             /* -1: free slot */
    int member;         /* index in members[] */
    int dirty;          /* on the dirty list this pass */
    int want_out;       /* EPOLLOUT registered */
    char *in;           /* an incomplete line carried over to the next read */
    size_t in_len, in_cap;
    char *out;          /* bytes waiting for the kernel: out[out_start .. out_len) */
    size_t out_start, out_len, out_cap;
};

static struct client *clients;  /* indexed by fd */
static size_t clients_cap;
static int *members;            /* fds of connected clients */
static size_t member_count, members_cap;
static int *dirty;              /* fds with new output this pass */
static size_t dirty_count, dirty_cap;
static int epfd;
static volatile sig_atomic_t stopping;

static void on_signal(int sig) { (void)sig; stopping = 1; }

static void *grow(void *ptr, size_t *cap, size_t need, size_t item) {
    size_t next = *cap ? *cap : 16;
    while (next < need) next *= 2;
    if (next == *cap) return ptr;
    void *bigger = realloc(ptr, next * item);
    if (!bigger) { perror("relay: realloc"); exit(1); }
    *cap = next;
    return bigger;
}

static struct client *slot(int fd) {
    if ((size_t)fd >= clients_cap) {
        size_t old = clients_cap;
        clients = grow(clients, &clients_cap, (size_t)fd + 1, sizeof *clients);
        for (size_t i = old; i < clients_cap; i++) clients[i].fd = -1;
    }
    return &clients[fd];
}

static void drop(struct client *c) {
    if (c->fd < 0) return;
    int last = members[--member_count];
    members[c->member] = last;
    clients[last].member = c->member;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;  /* still on the dirty list, maybe: flush() skips it */
}

static void watch(struct client *c, int out) {
    if (c->want_out == out) return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.fd = c->fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

/* One write of everything waiting; the rest waits for EPOLLOUT. */
static void flush(struct client *c) {
    while (c->out_start < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_start, c->out_len - c->out_start, MSG_NOSIGNAL);
        if (n > 0) { c->out_start += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { watch(c, 1); return; }
        drop(c);
        return;
    }
    c->out_start = c->out_len = 0;
    watch(c, 0);
}

static void append(struct client *c, const char *data, size_t len) {
    if (c->out_len - c->out_start + len > MAX_OUT) {
        fprintf(stderr, "relay: dropped a client %zu bytes behind\n", c->out_len - c->out_start);
        drop(c);
        return;
    }
    if (c->out_start && c->out_len + len > c->out_cap) {  /* reuse the flushed front */
        memmove(c->out, c->out + c->out_start, c->out_len - c->out_start);
        c->out_len -= c->out_start;
        c->out_start = 0;
    }
    if (c->out_len + len > c->out_cap) c->out = grow(c->out, &c->out_cap, c->out_len + len, 1);
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    if (!c->dirty) {
        c->dirty = 1;
        dirty = grow(dirty, &dirty_cap, dirty_count + 1, sizeof *dirty);
        dirty[dirty_count++] = c->fd;
    }
}

static void broadcast(int from, const char *data, size_t len) {
    for (size_t i = 0; i < member_count; i++) {
        int fd = members[i];
        if (fd != from) append(&clients[fd], data, len);
        if (member_count <= i || members[i] != fd) i--;  /* append() dropped it: same i again */
    }
}

static void accept_all(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) perror("relay: accept4");
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct client *c = slot(fd);
        memset(c, 0, sizeof *c);
        c->fd = fd;
        members = grow(members, &members_cap, member_count + 1, sizeof *members);
        c->member = (int)member_count;
        members[member_count++] = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) { drop(c); continue; }
        ssize_t n = send(fd, GREETING, sizeof GREETING - 1, MSG_NOSIGNAL);
        if (n < (ssize_t)(sizeof GREETING - 1)) {  /* a fresh socket takes 13 bytes; else */
            size_t sent = n > 0 ? (size_t)n : 0;
            append(c, GREETING + sent, sizeof GREETING - 1 - sent);
        }
    }
}

static void readable(struct client *c) {
    if (c->in_cap - c->in_len < READ_CHUNK)
        c->in = grow(c->in, &c->in_cap, c->in_len + READ_CHUNK, 1);
    ssize_t n = recv(c->fd, c->in + c->in_len, READ_CHUNK, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop(c);
        return;
    }
    if (n < 0) return;
    c->in_len += (size_t)n;
    char *end = memrchr(c->in, '\n', c->in_len);
    if (!end) return;
    size_t whole = (size_t)(end - c->in) + 1;
    broadcast(c->fd, c->in, whole);
    if (c->fd < 0) return;
    memmove(c->in, c->in + whole, c->in_len - whole);
    c->in_len -= whole;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 4096) < 0) {
        perror("relay: bind/listen");
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
    fprintf(stderr, "relay: listening on 127.0.0.1:%s\n", argv[1]);

    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("relay: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) { accept_all(listener); continue; }
            struct client *c = &clients[fd];
            if (c->fd < 0) continue;  /* dropped earlier in this pass */
            if (events[i].events & (EPOLLERR | EPOLLHUP | EPOLLIN)) readable(c);
            if (c->fd >= 0 && (events[i].events & EPOLLOUT) && !c->dirty) flush(c);
        }
        for (size_t i = 0; i < dirty_count; i++) {  /* one write per receiver per pass */
            struct client *c = &clients[dirty[i]];
            if (c->fd < 0) continue;
            c->dirty = 0;
            flush(c);
        }
        dirty_count = 0;
    }
    fprintf(stderr, "relay: stopped with %zu clients\n", member_count);
    return 0;
}
