/* The routing proxy, response side: the upstream response is parsed with
   http_parser and streamed to the client as it arrives; a 101 hands the
   connection to a relay thread that copies bytes both ways.  */
#define _GNU_SOURCE
#include "common/http.h"
#include "libhutch/util.h"
#include "proxy-internal.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/param.h>
#include <sys/socket.h>

/* ---- Parsing ---- */

static void
append (char **s, const char *at, size_t len)
{
  size_t old = *s ? strlen (*s) : 0;

  *s = xrealloc (*s, old + len + 1);
  memcpy (*s + old, at, len);
  (*s)[old + len] = '\0';
}

static void
clear_headers (struct proxy_req *r)
{
  for (size_t i = 0; i < r->n_headers; i++)
    {
      free (r->headers[i].name);
      free (r->headers[i].value);
    }
  r->n_headers = 0;
  r->in_value = false;
}

/* A name or value may come in pieces, split where a read ended.  */
static int
on_header_field (http_parser *p, const char *at, size_t len)
{
  struct proxy_req *r = p->data;

  if (r->n_headers == 0 || r->in_value)
    {
      r->headers = xrealloc (r->headers, (r->n_headers + 1) * sizeof *r->headers);
      r->headers[r->n_headers++] = (struct proxy_header){ NULL, NULL };
      r->in_value = false;
    }
  append (&r->headers[r->n_headers - 1].name, at, len);
  return 0;
}

static int
on_header_value (http_parser *p, const char *at, size_t len)
{
  struct proxy_req *r = p->data;

  r->in_value = true;
  append (&r->headers[r->n_headers - 1].value, at, len);
  return 0;
}

/* Pauses the parser, so that the head can be answered before any of the
   body is parsed.  1xx heads other than 101 are interim: dropped.  */
static int
on_headers_complete (http_parser *p)
{
  struct proxy_req *r = p->data;

  if (p->status_code / 100 == 1 && p->status_code != MHD_HTTP_SWITCHING_PROTOCOLS)
    {
      r->interim = true;
      clear_headers (r);
      return 0;
    }
  r->headers_done = true;
  r->body_size = MHD_SIZE_UNKNOWN;
  if ((p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED))
    r->body_size = p->content_length;
  http_parser_pause (p, 1);
  return r->head ? 1 : 0; /* 1: no body follows */
}

/* The body goes straight into libmicrohttpd's buffer; the parser is never
   fed more bytes than that buffer has room for.  */
static int
on_body (http_parser *p, const char *at, size_t len)
{
  struct proxy_req *r = p->data;

  if (len > r->out_cap - r->out_len)
    return -1;
  memcpy (r->out + r->out_len, at, len);
  r->out_len += len;
  return 0;
}

static int
on_message_complete (http_parser *p)
{
  struct proxy_req *r = p->data;

  if (r->interim)
    {
      r->interim = false;
      return 0;
    }
  r->message_done = true;
  http_parser_pause (p, 1);
  return 0;
}

static const http_parser_settings settings = {
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
};

/* ---- Reading upstream ---- */

/* Returns the count read (0 at the end of the stream) or -1 with errno.  */
static ssize_t
read_upstream (struct proxy_req *r, char *buf, size_t size)
{
  for (;;)
    {
      ssize_t n = recv (r->upstream, buf, size, MSG_DONTWAIT);
      if (n >= 0)
        return n;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        {
          if (proxy_wait (r, r->upstream, POLLIN) < 0)
            return -1;
        }
      else if (errno != EINTR)
        return -1;
    }
}

/* After a 101 the rest is another protocol: parse up to the end of the
   head and leave the bytes after it in the buffer, for the relay.  */
static int
split_switched (struct proxy_req *r)
{
  size_t used;

  if (!r->upgrade || r->buf_off == r->buf_len)
    {
      errno = EPROTO;
      return -1;
    }
  used = http_parser_execute (&r->parser, &settings, r->buf + r->buf_off, r->buf_len - r->buf_off);
  if (!r->message_done)
    {
      errno = EPROTO;
      return -1;
    }
  r->buf_off += used;
  return 0;
}

int
proxy_read_head (struct proxy_req *r)
{
  http_parser_init (&r->parser, HTTP_RESPONSE);
  r->parser.data = r;
  r->buf = xmalloc (PROXY_BUF_SIZE);
  for (;;)
    {
      ssize_t n = read_upstream (r, r->buf, PROXY_BUF_SIZE);
      size_t used;

      if (n <= 0)
        {
          if (n == 0)
            errno = EPROTO;
          return -1;
        }
      used = http_parser_execute (&r->parser, &settings, r->buf, (size_t)n);
      if (HTTP_PARSER_ERRNO (&r->parser) == HPE_PAUSED)
        {
          r->buf_off = used;
          r->buf_len = (size_t)n;
          http_parser_pause (&r->parser, 0);
          return r->parser.status_code == MHD_HTTP_SWITCHING_PROTOCOLS ? split_switched (r) : 0;
        }
      if (HTTP_PARSER_ERRNO (&r->parser) != HPE_OK)
        {
          errno = EPROTO;
          return -1;
        }
    }
}

/* ---- The response ---- */

/* Read more from upstream into the (empty) buffer.  At the end of the
   stream, a body delimited by the close is complete; any other is cut.  */
static int
fill_buffer (struct proxy_req *r, size_t max)
{
  ssize_t n = read_upstream (r, r->buf, MIN (max, (size_t)PROXY_BUF_SIZE));

  if (n < 0)
    return -1;
  r->buf_off = 0;
  r->buf_len = (size_t)n;
  if (n > 0)
    return 0;
  http_parser_execute (&r->parser, &settings, NULL, 0);
  return r->message_done ? 0 : -1;
}

/* Feed the parser what is buffered, reading first when nothing is, but no
   more than the room left in the output.  Returns 0 or -1.  */
static int
parse_more (struct proxy_req *r)
{
  size_t len, used;

  if (r->buf_off == r->buf_len && fill_buffer (r, r->out_cap - r->out_len) < 0)
    return -1;
  if (r->message_done)
    return 0;
  len = MIN (r->buf_len - r->buf_off, r->out_cap - r->out_len);
  used = http_parser_execute (&r->parser, &settings, r->buf + r->buf_off, len);
  r->buf_off += used;
  return HTTP_PARSER_ERRNO (&r->parser) == HPE_OK || r->message_done ? 0 : -1;
}

/* Returns body bytes as soon as upstream sends some, so that every message
   of a stream reaches the client when it is written.  */
static ssize_t
read_body (void *cls, uint64_t pos, char *buf, size_t max)
{
  struct proxy_req *r = cls;

  if (r->head)
    return MHD_CONTENT_READER_END_OF_STREAM;
  if (max == 0)
    return 0; /* parsing zero bytes would mean the end of the stream */
  r->out = buf;
  r->out_len = 0;
  r->out_cap = max;
  while (r->out_len == 0 && !r->message_done)
    if (parse_more (r) < 0)
      {
        r->out = NULL;
        return MHD_CONTENT_READER_END_WITH_ERROR;
      }
  r->out = NULL;
  return r->out_len > 0 ? (ssize_t)r->out_len : MHD_CONTENT_READER_END_OF_STREAM;
}

static void
release_body (void *cls)
{
  proxy_req_unref (cls);
}

static const char *
upstream_header (const struct proxy_req *r, const char *name)
{
  for (size_t i = 0; i < r->n_headers; i++)
    if (r->headers[i].name && strcasecmp (r->headers[i].name, name) == 0)
      return r->headers[i].value ? r->headers[i].value : "";
  return NULL;
}

/* libmicrohttpd frames the response itself (and adds Connection: Upgrade
   to a 101).  */
static void
copy_headers (const struct proxy_req *r, struct MHD_Response *response, bool switching)
{
  const char *connection = upstream_header (r, "Connection");

  for (size_t i = 0; i < r->n_headers; i++)
    {
      const char *name = r->headers[i].name;
      if (name == NULL || strcasecmp (name, "Content-Length") == 0
          || proxy_is_hop_by_hop (name, connection, switching))
        continue;
      MHD_add_response_header (response, name, r->headers[i].value ? r->headers[i].value : "");
    }
}

static void on_upgrade (void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh);

static struct MHD_Response *
create_response (struct proxy_req *r, unsigned status)
{
  struct MHD_Response *response;

  if (status == MHD_HTTP_SWITCHING_PROTOCOLS)
    return MHD_create_response_for_upgrade (on_upgrade, r);
  response = MHD_create_response_from_callback (r->body_size, PROXY_BUF_SIZE, read_body, r,
                                                release_body);
  if (response)
    r->refs++;
  return response;
}

enum MHD_Result
proxy_respond (struct proxy_req *r)
{
  unsigned status = r->parser.status_code;
  struct MHD_Response *response = create_response (r, status);
  enum MHD_Result ret;

  if (response == NULL)
    return MHD_NO;
  copy_headers (r, response, status == MHD_HTTP_SWITCHING_PROTOCOLS);
  http_last_status = status;
  ret = MHD_queue_response (r->conn, status, response);
  MHD_destroy_response (response);
  return ret;
}

/* ---- Upgraded connections ---- */

#define HALF_CLOSED_IDLE_MS 30000

/* Owned by the relay thread: the request that made it is completed (and
   freed) as soon as the 101 is sent.  */
struct relay
{
  struct MHD_UpgradeResponseHandle *urh;
  struct sbx *sbx;
  int client;
  int upstream;
  char *to_client; /* what upstream sent after its 101 head */
  size_t to_client_len;
  char *to_upstream; /* what the client sent after its request */
  size_t to_upstream_len;
};

static char *
memdup (const char *p, size_t len)
{
  char *copy = xmalloc (len ? len : 1);

  if (len)
    memcpy (copy, p, len);
  return copy;
}

static int
send_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      buf += n;
      len -= (size_t)n;
    }
  return 0;
}

static int
set_blocking (int fd)
{
  int flags = fcntl (fd, F_GETFL);

  if (flags < 0)
    return -1;
  return fcntl (fd, F_SETFL, flags & ~O_NONBLOCK);
}

/* Copy what FROM has to TO.  Returns 0, 1 when FROM ended (TO is told by
   a half-close), or -1.  */
static int
move (int from, int to, char *buf)
{
  ssize_t n = TEMP_FAILURE_RETRY (recv (from, buf, PROXY_BUF_SIZE, 0));

  if (n < 0)
    return -1;
  if (n == 0)
    {
      shutdown (to, SHUT_WR);
      return 1;
    }
  return send_all (to, buf, (size_t)n);
}

/* Until both directions have ended, or either fails.  Once one has
   ended, the other may go quiet for HALF_CLOSED_IDLE_MS at most: a peer
   that ignores the half-close must not keep the relay forever.  */
static void
pump (int a, int b)
{
  const int fds[2] = { a, b };
  struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
  char *buf = xmalloc (PROXY_BUF_SIZE);

  while (p[0].fd >= 0 || p[1].fd >= 0)
    {
      int timeout = p[0].fd < 0 || p[1].fd < 0 ? HALF_CLOSED_IDLE_MS : -1;
      if (TEMP_FAILURE_RETRY (poll (p, 2, timeout)) <= 0)
        break;
      for (int i = 0; i < 2; i++)
        {
          int ret = p[i].revents ? move (fds[i], fds[1 - i], buf) : 0;
          if (ret < 0)
            goto out;
          if (ret > 0)
            p[i].fd = -1;
        }
    }
out:
  free (buf);
}

static void
relay_end (struct relay *rl)
{
  close (rl->upstream);
  sbx_unref (rl->sbx);
  MHD_upgrade_action (rl->urh, MHD_UPGRADE_ACTION_CLOSE);
  free (rl->to_client);
  free (rl->to_upstream);
  free (rl);
}

static void *
relay_main (void *arg)
{
  struct relay *rl = arg;

  if (set_blocking (rl->client) == 0 && set_blocking (rl->upstream) == 0
      && send_all (rl->client, rl->to_client, rl->to_client_len) == 0
      && send_all (rl->upstream, rl->to_upstream, rl->to_upstream_len) == 0)
    pump (rl->client, rl->upstream);
  relay_end (rl);
  return NULL;
}

/* Runs on the connection's thread, which libmicrohttpd still needs (it
   relays TLS there): the copying gets a thread of its own.  */
static void
on_upgrade (void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
            size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
  struct proxy_req *r = cls;
  struct relay *rl = xzalloc (sizeof *rl);
  pthread_attr_t attr;
  pthread_t thread;

  rl->urh = urh;
  rl->client = sock;
  rl->upstream = get_and_reset (&r->upstream);
  rl->sbx = steal_pointer (&r->sbx);
  rl->to_client_len = r->buf_len - r->buf_off;
  rl->to_client = memdup (r->buf + r->buf_off, rl->to_client_len);
  rl->to_upstream_len = extra_in_size;
  rl->to_upstream = memdup (extra_in, extra_in_size);
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create (&thread, &attr, relay_main, rl) != 0)
    relay_end (rl);
  pthread_attr_destroy (&attr);
}
