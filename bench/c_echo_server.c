/* c_echo_server: a plain C, single-threaded epoll echo server on 127.0.0.1, written the way a
 * hand-written C server usually is. It is the L4 backend "that is not ours" for
 * bench/proxy_compare.sh: no lbd code, no runtime, no coroutines.
 *
 *   c_echo_server --port N
 *
 * Level-triggered epoll, as most hand-written servers are: every readable socket gets one read
 * of up to 16 KiB per wake-up and is echoed at once; level triggering means no read loop to
 * EAGAIN is needed for fairness or correctness. What a slow peer does not take is kept in a
 * per-connection buffer and sent on EPOLLOUT, so no byte is dropped; while more than
 * kHighWater bytes wait, the connection stops reading (back-pressure instead of unbounded
 * memory). The peer's FIN is answered with our own once everything pending is sent.
 * TCP_NODELAY on every connection: a partial write followed by the rest must not wait for an
 * ACK (Nagle), which a latency benchmark would otherwise measure.
 */
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

enum { kReadChunk = 16 * 1024, kHighWater = 256 * 1024, kMaxEvents = 256 };

/* One accepted connection: its fd and the bytes read but not yet written back. */
struct conn {
  int fd;
  char *pending;     /* heap, pending_cap bytes; owned */
  size_t pending_off; /* first unsent byte */
  size_t pending_len; /* end of the unsent bytes */
  size_t pending_cap;
  int peer_closed; /* read EOF: close once pending is empty */
  int reading;     /* EPOLLIN is in the interest set */
  int writing;     /* EPOLLOUT is in the interest set */
};

static int epfd = -1;

static void usage(const char *why) {
  fprintf(stderr, "c_echo_server: %s\nusage: c_echo_server --port N\n", why);
  exit(2);
}

static void conn_close(struct conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->pending);
  free(c);
}

/* Keeps the interest set in step with the connection's state: write interest while bytes
 * wait, read interest while fewer than kHighWater wait and the peer has not closed. It calls
 * epoll_ctl only when that changes: a syscall per event is what a hand-written server avoids. */
static int conn_update(struct conn *c) {
  size_t waiting = c->pending_len - c->pending_off;
  int want_read = !c->peer_closed && waiting < kHighWater;
  int want_write = waiting != 0;
  if (want_read == c->reading && want_write == c->writing) return 0;
  struct epoll_event ev;
  ev.events = (want_read ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0);
  ev.data.ptr = c;
  c->reading = want_read;
  c->writing = want_write;
  return epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Keeps bytes[0..n) to send later, after what already waits. */
static int conn_keep(struct conn *c, const char *bytes, size_t n) {
  if (c->pending_off == c->pending_len) c->pending_off = c->pending_len = 0;
  if (c->pending_len + n > c->pending_cap) {
    /* Compact first; grow only when that is not enough. */
    size_t waiting = c->pending_len - c->pending_off;
    memmove(c->pending, c->pending + c->pending_off, waiting);
    c->pending_off = 0;
    c->pending_len = waiting;
    if (waiting + n > c->pending_cap) {
      size_t cap = c->pending_cap ? c->pending_cap : kReadChunk;
      while (cap < waiting + n) cap *= 2;
      char *p = realloc(c->pending, cap);
      if (!p) return -1;
      c->pending = p;
      c->pending_cap = cap;
    }
  }
  memcpy(c->pending + c->pending_len, bytes, n);
  c->pending_len += n;
  return 0;
}

/* Sends what waits; returns -1 when the connection failed. */
static int conn_flush(struct conn *c) {
  while (c->pending_off < c->pending_len) {
    ssize_t w = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    c->pending_off += (size_t)w;
  }
  return 0;
}

/* One readable event: read a chunk and echo it, keeping what the socket does not take. */
static int conn_on_readable(struct conn *c) {
  char buf[kReadChunk];
  ssize_t r = recv(c->fd, buf, sizeof buf, 0);
  if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
  if (r == 0) {
    c->peer_closed = 1;
    return 0;
  }
  size_t off = 0;
  if (c->pending_off == c->pending_len) { /* nothing queued: order allows a direct send */
    while (off < (size_t)r) {
      ssize_t w = send(c->fd, buf + off, (size_t)r - off, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return -1;
      }
      off += (size_t)w;
    }
  }
  if (off < (size_t)r && conn_keep(c, buf + off, (size_t)r - off) != 0) return -1;
  return 0;
}

static void on_listener(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno == EMFILE || errno == ENFILE) perror("c_echo_server: accept4");
      return; /* EAGAIN: the backlog is empty */
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->reading = 1;
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      perror("c_echo_server: epoll_ctl(ADD)");
      conn_close(c);
    }
  }
}

int main(int argc, char **argv) {
  long port = -1;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      char *end = NULL;
      port = strtol(argv[++i], &end, 10);
      if (*end != '\0' || port < 0 || port > 65535) usage("--port takes 0 .. 65535");
    } else {
      usage("unknown option");
    }
  }
  if (port < 0) usage("--port is required");
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) {
    perror("c_echo_server: socket");
    return 1;
  }
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 4096) != 0) {
    fprintf(stderr, "c_echo_server: bind/listen 127.0.0.1:%ld: %s\n", port, strerror(errno));
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(lfd, (struct sockaddr *)&addr, &len);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    perror("c_echo_server: epoll_create1");
    return 1;
  }
  struct epoll_event lev;
  lev.events = EPOLLIN;
  lev.data.ptr = NULL; /* NULL marks the listener */
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
  printf("c_echo_server: listening on 127.0.0.1:%u (epoll, level-triggered)\n", ntohs(addr.sin_port));
  fflush(stdout);

  struct epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(epfd, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("c_echo_server: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      struct conn *c = events[i].data.ptr;
      if (!c) {
        on_listener(lfd);
        continue;
      }
      int failed = 0;
      uint32_t ev = events[i].events;
      if (ev & EPOLLOUT) failed = conn_flush(c) != 0;
      if (!failed && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->reading) failed = conn_on_readable(c) != 0;
      if (!failed && (ev & (EPOLLHUP | EPOLLERR)) && !(ev & EPOLLIN) && c->pending_off == c->pending_len) failed = 1;
      size_t waiting = c->pending_len - c->pending_off;
      if (failed || (c->peer_closed && waiting == 0)) {
        conn_close(c);
        continue;
      }
      if (conn_update(c) != 0) conn_close(c);
    }
  }
}
