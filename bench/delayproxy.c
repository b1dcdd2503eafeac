/*
 * delayproxy: a UDP DNS proxy on 127.0.0.1 that adds a constant delay, for the blmonitor bench.
 *
 *   delayproxy [-d SUFFIX]... [-q] LISTEN_PORT UPSTREAM_PORT DELAY_MS
 *
 * Every query received on 127.0.0.1:LISTEN_PORT is sent to 127.0.0.1:UPSTREAM_PORT after
 * DELAY_MS/2, and every reply goes back to its client after the other half, so a round trip
 * through the proxy costs DELAY_MS more than a direct one (DELAY_MS stands for the internet
 * RTT between a mail server and a DNSBL's name servers).
 *
 * -d SUFFIX (repeatable): drop every query whose QNAME is SUFFIX or ends with ".SUFFIX"
 *    (case-insensitive): the zone "times out".
 * -q: do not print the "listening" line.
 *
 * Design: one thread, epoll, non-blocking sockets. The delay is constant, so each direction is
 * a FIFO (arrival order = departure order) and one timerfd armed at the head's due time is
 * enough. Client <-> upstream mapping: the DNS ID of each forwarded query is rewritten to a
 * proxy-owned ID (a 65536-slot table holding the client address and its original ID), so any
 * number of clients, and thousands of queries in flight from one client socket (even with
 * duplicate IDs), are routed back correctly. IDs are handed out round-robin, so a slot is only
 * reused after 65535 newer queries; a reply for a slot that was reused is dropped and counted
 * as "unmatched".
 *
 * Counters go to stderr as one key=value line on SIGTERM/SIGINT (then exit 0) and on SIGUSR1
 * (and the proxy keeps running).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXPKT 4096          /* EDNS answers from rbldnsd stay far below this */
#define BUFBYTES (32 << 20)  /* socket buffers: 32 MiB */
#define MAXSUFFIX 32

struct pkt {
    struct pkt *next;
    uint64_t due_ns;
    struct sockaddr_in addr;  /* client (reply queue) or client being served (query queue) */
    uint16_t len;
    unsigned char data[];
};

struct fifo {
    struct pkt *head, *tail;
    size_t n;
};

struct slot {
    struct sockaddr_in client;
    uint16_t orig_id;
    uint8_t used;
};

static struct slot table[65536];
static uint16_t next_id;
static char *suffixes[MAXSUFFIX];
static size_t suffix_len[MAXSUFFIX];
static int nsuffix;

static struct {
    unsigned long long received, forwarded, dropped, replies_in, replied, unmatched, overwritten,
        malformed, send_errors, max_queued;
} ctr;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fifo_push(struct fifo *q, struct pkt *p) {
    p->next = NULL;
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    q->n++;
}

static struct pkt *fifo_pop(struct fifo *q) {
    struct pkt *p = q->head;
    if (!p) return NULL;
    q->head = p->next;
    if (!q->head) q->tail = NULL;
    q->n--;
    return p;
}

static void bigbuf(int fd) {
    int size = BUFBYTES;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    size = BUFBYTES;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

static int udp_socket(uint16_t bind_port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(2);
    }
    bigbuf(fd);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(bind_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("bind");
        exit(2);
    }
    return fd;
}

/* QNAME of a DNS message as a lowercase dotted name without the final dot; -1 if malformed. */
static int qname(const unsigned char *m, size_t len, char *out, size_t outsz) {
    size_t i = 12, o = 0;
    if (len < 12 || m[4] != 0 || m[5] == 0) return -1; /* need QDCOUNT >= 1 */
    for (;;) {
        if (i >= len) return -1;
        unsigned l = m[i++];
        if (l == 0) break;
        if (l > 63 || i + l > len || o + l + 2 > outsz) return -1;
        if (o) out[o++] = '.';
        for (unsigned k = 0; k < l; k++) {
            unsigned char c = m[i++];
            out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
        }
    }
    out[o] = 0;
    return (int)o;
}

static int must_drop(const unsigned char *m, size_t len) {
    char name[300];
    int n;
    if (!nsuffix) return 0;
    n = qname(m, len, name, sizeof name);
    if (n < 0) return 0;
    for (int s = 0; s < nsuffix; s++) {
        size_t sl = suffix_len[s];
        if ((size_t)n == sl && memcmp(name, suffixes[s], sl) == 0) return 1;
        if ((size_t)n > sl && name[n - sl - 1] == '.' && memcmp(name + n - sl, suffixes[s], sl) == 0)
            return 1;
    }
    return 0;
}

static void print_counters(const char *why) {
    fprintf(stderr,
            "delayproxy: %s received=%llu forwarded=%llu dropped=%llu replies_in=%llu replied=%llu "
            "unmatched=%llu overwritten=%llu malformed=%llu send_errors=%llu max_queued=%llu\n",
            why, ctr.received, ctr.forwarded, ctr.dropped, ctr.replies_in, ctr.replied, ctr.unmatched,
            ctr.overwritten, ctr.malformed, ctr.send_errors, ctr.max_queued);
    fflush(stderr);
}

static void usage(void) {
    fprintf(stderr, "usage: delayproxy [-d SUFFIX]... [-q] LISTEN_PORT UPSTREAM_PORT DELAY_MS\n");
    exit(2);
}

static void arm(int tfd, struct fifo *a, struct fifo *b, int blocked_a, int blocked_b) {
    uint64_t due = 0;
    if (a->head && !blocked_a) due = a->head->due_ns;
    if (b->head && !blocked_b && (!due || b->head->due_ns < due)) due = b->head->due_ns;
    struct itimerspec its = {0};
    if (due) {
        its.it_value.tv_sec = (time_t)(due / 1000000000ull);
        its.it_value.tv_nsec = (long)(due % 1000000000ull);
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec) its.it_value.tv_nsec = 1;
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

int main(int argc, char **argv) {
    int opt, quiet = 0;
    while ((opt = getopt(argc, argv, "d:q")) != -1) {
        if (opt == 'd') {
            if (nsuffix == MAXSUFFIX) usage();
            char *s = strdup(optarg);
            size_t l = strlen(s);
            while (l && s[l - 1] == '.') s[--l] = 0;
            for (size_t k = 0; k < l; k++)
                if (s[k] >= 'A' && s[k] <= 'Z') s[k] += 32;
            suffixes[nsuffix] = s;
            suffix_len[nsuffix++] = l;
        } else if (opt == 'q') {
            quiet = 1;
        } else {
            usage();
        }
    }
    if (argc - optind != 3) usage();
    int lport = atoi(argv[optind]), uport = atoi(argv[optind + 1]);
    double delay_ms = atof(argv[optind + 2]);
    if (lport <= 0 || lport > 65535 || uport <= 0 || uport > 65535 || delay_ms < 0) usage();
    uint64_t delay_ns = (uint64_t)(delay_ms * 1e6);
    uint64_t q_delay = delay_ns / 2, r_delay = delay_ns - q_delay;

    int lfd = udp_socket((uint16_t)lport); /* clients talk to this one */
    int ufd = udp_socket(0);               /* we talk to the upstream from this one */
    struct sockaddr_in up = {.sin_family = AF_INET, .sin_port = htons((uint16_t)uport)};
    up.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(ufd, (struct sockaddr *)&up, sizeof up) < 0) {
        perror("connect");
        return 2;
    }

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (tfd < 0 || sfd < 0 || ep < 0) {
        perror("setup");
        return 2;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    int fds[4] = {lfd, ufd, tfd, sfd};
    for (int i = 0; i < 4; i++) {
        ev.data.fd = fds[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    /* queries waiting to go upstream, replies waiting to go back to their client */
    struct fifo qq = {0}, rq = {0};
    int q_blocked = 0, r_blocked = 0; /* send buffer full: wait for EPOLLOUT */
    unsigned char buf[MAXPKT];

    if (!quiet) {
        fprintf(stderr, "delayproxy: listening on 127.0.0.1:%d -> 127.0.0.1:%d, +%.1f ms RTT, %d drop suffix(es)\n",
                lport, uport, delay_ms, nsuffix);
        fflush(stderr);
    }

    for (;;) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 2;
        }
        for (int e = 0; e < n; e++) {
            int fd = evs[e].data.fd;
            uint32_t what = evs[e].events;
            if (fd == sfd) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGUSR1) {
                        print_counters("counters");
                    } else {
                        print_counters("exit");
                        return 0;
                    }
                }
            } else if (fd == lfd && (what & EPOLLIN)) {
                for (;;) {
                    struct sockaddr_in from;
                    socklen_t fl = sizeof from;
                    ssize_t r = recvfrom(lfd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
                    if (r < 0) break; /* EAGAIN */
                    ctr.received++;
                    if (r < 12) {
                        ctr.malformed++;
                        continue;
                    }
                    if (must_drop(buf, (size_t)r)) {
                        ctr.dropped++;
                        continue;
                    }
                    struct pkt *p = malloc(sizeof *p + (size_t)r);
                    p->due_ns = now_ns() + q_delay;
                    p->addr = from;
                    p->len = (uint16_t)r;
                    memcpy(p->data, buf, (size_t)r);
                    fifo_push(&qq, p);
                    if (qq.n + rq.n > ctr.max_queued) ctr.max_queued = qq.n + rq.n;
                }
            } else if (fd == ufd && (what & EPOLLIN)) {
                for (;;) {
                    ssize_t r = recv(ufd, buf, sizeof buf, 0);
                    if (r < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                        continue; /* e.g. ECONNREFUSED from an ICMP: upstream not up */
                    }
                    ctr.replies_in++;
                    if (r < 12) {
                        ctr.malformed++;
                        continue;
                    }
                    uint16_t id = (uint16_t)(buf[0] << 8 | buf[1]);
                    struct slot *s = &table[id];
                    if (!s->used) {
                        ctr.unmatched++;
                        continue;
                    }
                    s->used = 0;
                    buf[0] = (unsigned char)(s->orig_id >> 8);
                    buf[1] = (unsigned char)(s->orig_id & 0xff);
                    struct pkt *p = malloc(sizeof *p + (size_t)r);
                    p->due_ns = now_ns() + r_delay;
                    p->addr = s->client;
                    p->len = (uint16_t)r;
                    memcpy(p->data, buf, (size_t)r);
                    fifo_push(&rq, p);
                    if (qq.n + rq.n > ctr.max_queued) ctr.max_queued = qq.n + rq.n;
                }
            } else if (fd == tfd) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0) { /* spurious: fine */
                }
            }
            if ((fd == ufd || fd == lfd) && (what & EPOLLOUT)) {
                if (fd == ufd) q_blocked = 0;
                if (fd == lfd) r_blocked = 0;
                struct epoll_event mod = {.events = EPOLLIN, .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &mod);
            }
        }

        /* send everything that is due, in FIFO order */
        uint64_t now = now_ns();
        while (!q_blocked && qq.head && qq.head->due_ns <= now) {
            struct pkt *p = qq.head;
            uint16_t id = next_id++;
            struct slot *s = &table[id];
            if (s->used) ctr.overwritten++;
            uint16_t orig = (uint16_t)(p->data[0] << 8 | p->data[1]);
            p->data[0] = (unsigned char)(id >> 8);
            p->data[1] = (unsigned char)(id & 0xff);
            if (send(ufd, p->data, p->len, 0) < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                    next_id--; /* retry this one with the same ID when writable */
                    p->data[0] = (unsigned char)(orig >> 8);
                    p->data[1] = (unsigned char)(orig & 0xff);
                    q_blocked = 1;
                    struct epoll_event mod = {.events = EPOLLIN | EPOLLOUT, .data.fd = ufd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, ufd, &mod);
                    break;
                }
                ctr.send_errors++;
            } else {
                s->used = 1;
                s->client = p->addr;
                s->orig_id = orig;
                ctr.forwarded++;
            }
            free(fifo_pop(&qq));
        }
        while (!r_blocked && rq.head && rq.head->due_ns <= now) {
            struct pkt *p = rq.head;
            if (sendto(lfd, p->data, p->len, 0, (struct sockaddr *)&p->addr, sizeof p->addr) < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                    r_blocked = 1;
                    struct epoll_event mod = {.events = EPOLLIN | EPOLLOUT, .data.fd = lfd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &mod);
                    break;
                }
                ctr.send_errors++;
            } else {
                ctr.replied++;
            }
            free(fifo_pop(&rq));
        }
        arm(tfd, &qq, &rq, q_blocked, r_blocked);
    }
}
