/*
 * delayproxy: a UDP DNS proxy on 127.0.0.1 that adds a constant delay, for the blmonitor bench.
 *
 *   delayproxy [-d SUFFIX]... [-m MAX_OUTSTANDING] [-q] LISTEN_PORT UPSTREAM_PORT DELAY_MS
 *
 * Every query received on 127.0.0.1:LISTEN_PORT is sent to 127.0.0.1:UPSTREAM_PORT after
 * DELAY_MS/2, and every reply goes back to its client after the other half, so a round trip
 * through the proxy costs DELAY_MS more than a direct one (DELAY_MS stands for the internet
 * RTT between a mail server and a DNSBL's name servers).
 *
 * -d SUFFIX (repeatable): drop every query whose QNAME is SUFFIX or ends with ".SUFFIX"
 *    (case-insensitive): the zone "times out".
 * -m N: at most N queries waiting at the upstream at once (default 100, 0 = no limit). rbldnsd
 *    keeps the kernel's default socket buffer (~200 packets); a burst released by the proxy at
 *    memory speed would overflow it and the lab itself would lose queries. Queries over the
 *    limit wait in the proxy (in order) until replies come back; rbldnsd answers in
 *    microseconds, so this costs nothing until rbldnsd itself is saturated. An upstream query
 *    unanswered after 1 s is counted as lost_upstream and stops counting against the limit.
 * -q: do not print the "listening" line.
 *
 * Design: one thread, epoll, non-blocking sockets, recvmmsg/sendmmsg in batches of 64. The delay is constant, so each direction is
 * a FIFO (arrival order = departure order) and one timerfd armed at the head's due time is
 * enough. Client <-> upstream mapping: the DNS ID of each forwarded query is rewritten to a
 * proxy-owned ID (a 65536-slot table holding the client address and its original ID), so any
 * number of clients, and thousands of queries in flight from one client socket (even with
 * duplicate IDs), are routed back correctly. IDs are handed out round-robin, so a slot is only
 * reused after 65535 newer queries; a reply for a slot that was reused is dropped and counted
 * as "unmatched".
 *
 * Counters go to stderr as one key=value line on SIGTERM/SIGINT (then exit 0) and on SIGUSR1
 * (and the proxy keeps running): received (from clients), forwarded (to the upstream), dropped
 * (-d rules), replies_in (from the upstream), replied (to clients), unmatched (reply with an
 * unknown or reused ID), overwritten, malformed, send_errors, max_queued (peak packets held in
 * the two FIFOs), lost_upstream, throttled (times the -m limit held the query queue).
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
#define BATCH 64             /* packets per recvmmsg/sendmmsg */

struct pkt {
    struct pkt *next;
    uint64_t due_ns;
    struct sockaddr_in addr;  /* the client (it sent the query / gets the reply) */
    uint16_t len;
    uint16_t orig_id;         /* the client's DNS ID while the query carries ours */
    unsigned char data[];
};

struct fifo {
    struct pkt *head, *tail;
    size_t n;
};

struct slot {
    struct sockaddr_in client;
    uint64_t sent_ns;
    uint16_t orig_id;
    uint8_t used;
};

static struct slot table[65536];
static uint16_t next_id, oldest_id; /* slots [oldest_id, next_id) may be waiting upstream */
static unsigned outstanding, max_outstanding = 100;
#define LOST_NS 1000000000ull /* an upstream query unanswered after 1 s is lost */
static char *suffixes[MAXSUFFIX];
static size_t suffix_len[MAXSUFFIX];
static int nsuffix;

static struct {
    unsigned long long received, forwarded, dropped, replies_in, replied, unmatched, overwritten,
        malformed, send_errors, max_queued, lost_upstream, throttled;
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
            "unmatched=%llu overwritten=%llu malformed=%llu send_errors=%llu max_queued=%llu "
            "lost_upstream=%llu throttled=%llu\n",
            why, ctr.received, ctr.forwarded, ctr.dropped, ctr.replies_in, ctr.replied, ctr.unmatched,
            ctr.overwritten, ctr.malformed, ctr.send_errors, ctr.max_queued, ctr.lost_upstream,
            ctr.throttled);
    fflush(stderr);
}

static void usage(void) {
    fprintf(stderr, "usage: delayproxy [-d SUFFIX]... [-m MAX_OUTSTANDING] [-q] LISTEN_PORT UPSTREAM_PORT DELAY_MS\n");
    exit(2);
}

/* forget upstream queries unanswered for LOST_NS (so the throttle cannot leak) */
static void expire_upstream(uint64_t now) {
    while (oldest_id != next_id) {
        struct slot *s = &table[oldest_id];
        if (s->used) {
            if (now - s->sent_ns < LOST_NS) break;
            s->used = 0;
            outstanding--;
            ctr.lost_upstream++;
        }
        oldest_id++;
    }
}

static int throttled(void) { return max_outstanding && outstanding >= max_outstanding; }

static void arm(int tfd, struct fifo *a, struct fifo *b, int blocked_a, int blocked_b) {
    uint64_t due = 0;
    if (a->head && !blocked_a) {
        if (!throttled())
            due = a->head->due_ns;
        else if (oldest_id != next_id) /* replies wake us up; this is for lost ones */
            due = table[oldest_id].sent_ns + LOST_NS;
    }
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
    while ((opt = getopt(argc, argv, "d:m:q")) != -1) {
        if (opt == 'd') {
            if (nsuffix == MAXSUFFIX) usage();
            char *s = strdup(optarg);
            size_t l = strlen(s);
            while (l && s[l - 1] == '.') s[--l] = 0;
            for (size_t k = 0; k < l; k++)
                if (s[k] >= 'A' && s[k] <= 'Z') s[k] += 32;
            suffixes[nsuffix] = s;
            suffix_len[nsuffix++] = l;
        } else if (opt == 'm') {
            max_outstanding = (unsigned)atoi(optarg);
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
    static unsigned char bufs[BATCH][MAXPKT];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iovs[BATCH];
    static struct sockaddr_in froms[BATCH];
    static struct pkt *batch[BATCH];

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
            } else if ((fd == lfd || fd == ufd) && (what & EPOLLIN)) {
                /* drain up to 16 batches, then let the other sockets and the timer have a turn */
                for (int round = 0; round < 16; round++) {
                    for (int i = 0; i < BATCH; i++) {
                        iovs[i].iov_base = bufs[i];
                        iovs[i].iov_len = MAXPKT;
                        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
                        msgs[i].msg_hdr.msg_iov = &iovs[i];
                        msgs[i].msg_hdr.msg_iovlen = 1;
                        msgs[i].msg_hdr.msg_name = &froms[i];
                        msgs[i].msg_hdr.msg_namelen = sizeof froms[i];
                    }
                    int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
                    if (got <= 0) {
                        if (got < 0 && fd == ufd && errno != EAGAIN && errno != EWOULDBLOCK)
                            continue; /* e.g. ECONNREFUSED (ICMP): the upstream is not up */
                        break;
                    }
                    uint64_t t = now_ns();
                    for (int i = 0; i < got; i++) {
                        unsigned char *m = bufs[i];
                        size_t len = msgs[i].msg_len;
                        struct sockaddr_in to;
                        if (fd == lfd) {
                            ctr.received++;
                            if (len < 12) {
                                ctr.malformed++;
                                continue;
                            }
                            if (must_drop(m, len)) {
                                ctr.dropped++;
                                continue;
                            }
                            to = froms[i];
                        } else {
                            ctr.replies_in++;
                            if (len < 12) {
                                ctr.malformed++;
                                continue;
                            }
                            struct slot *sl = &table[(uint16_t)(m[0] << 8 | m[1])];
                            if (!sl->used) {
                                ctr.unmatched++;
                                continue;
                            }
                            sl->used = 0;
                            outstanding--;
                            m[0] = (unsigned char)(sl->orig_id >> 8);
                            m[1] = (unsigned char)(sl->orig_id & 0xff);
                            to = sl->client;
                        }
                        struct pkt *p = malloc(sizeof *p + len);
                        if (!p) {
                            perror("malloc");
                            return 2;
                        }
                        p->due_ns = t + (fd == lfd ? q_delay : r_delay);
                        p->addr = to;
                        p->len = (uint16_t)len;
                        memcpy(p->data, m, len);
                        fifo_push(fd == lfd ? &qq : &rq, p);
                    }
                    if (qq.n + rq.n > ctr.max_queued) ctr.max_queued = qq.n + rq.n;
                    if (got < BATCH) break;
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

        /* send everything that is due, in FIFO order, BATCH packets per sendmmsg */
        uint64_t now = now_ns();
        expire_upstream(now);
        for (int dir = 0; dir < 2; dir++) {
            struct fifo *q = dir == 0 ? &qq : &rq;
            int *blocked = dir == 0 ? &q_blocked : &r_blocked;
            int fd = dir == 0 ? ufd : lfd;
            while (!*blocked && q->head && q->head->due_ns <= now) {
                int count = 0;
                unsigned room = BATCH;
                if (dir == 0 && max_outstanding) {
                    if (outstanding >= max_outstanding) {
                        ctr.throttled++;
                        break;
                    }
                    if (max_outstanding - outstanding < room) room = max_outstanding - outstanding;
                }
                for (struct pkt *p = q->head; p && p->due_ns <= now && (unsigned)count < room; p = p->next) {
                    batch[count] = p;
                    iovs[count].iov_base = p->data;
                    iovs[count].iov_len = p->len;
                    memset(&msgs[count].msg_hdr, 0, sizeof msgs[count].msg_hdr);
                    msgs[count].msg_hdr.msg_iov = &iovs[count];
                    msgs[count].msg_hdr.msg_iovlen = 1;
                    if (dir == 0) { /* connected socket; rewrite the ID */
                        uint16_t id = (uint16_t)(next_id + count);
                        uint16_t orig = (uint16_t)(p->data[0] << 8 | p->data[1]);
                        p->data[0] = (unsigned char)(id >> 8);
                        p->data[1] = (unsigned char)(id & 0xff);
                        p->orig_id = orig;
                    } else {
                        msgs[count].msg_hdr.msg_name = &p->addr;
                        msgs[count].msg_hdr.msg_namelen = sizeof p->addr;
                    }
                    count++;
                }
                int sent = sendmmsg(fd, msgs, (unsigned)count, MSG_DONTWAIT);
                int err = sent < 0 ? errno : 0;
                if (sent < 0) sent = 0;
                for (int i = 0; i < count; i++) {
                    struct pkt *p = batch[i];
                    if (dir == 0 && i >= sent) { /* not sent: give the client's ID back */
                        p->data[0] = (unsigned char)(p->orig_id >> 8);
                        p->data[1] = (unsigned char)(p->orig_id & 0xff);
                        continue;
                    }
                    if (i >= sent) continue;
                    if (dir == 0) {
                        struct slot *sl = &table[next_id];
                        if (sl->used) { /* 65536 queries later and still unanswered: lost */
                            ctr.overwritten++;
                            outstanding--;
                        }
                        sl->used = 1;
                        sl->sent_ns = now;
                        sl->client = p->addr;
                        sl->orig_id = p->orig_id;
                        next_id++;
                        outstanding++;
                        ctr.forwarded++;
                    } else {
                        ctr.replied++;
                    }
                    free(fifo_pop(q));
                }
                if (sent < count || err) {
                    if (sent > 0) continue; /* partial: the next call reports the error */
                    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
                        *blocked = 1;
                        struct epoll_event mod = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
                        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &mod);
                        break;
                    }
                    ctr.send_errors++; /* a hard error for the head packet: drop it */
                    free(fifo_pop(q));
                }
            }
        }
        arm(tfd, &qq, &rq, q_blocked, r_blocked);
    }
}
