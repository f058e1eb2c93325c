/* The routing proxy, request side: which sandbox port a request is for,
   the connection to it, the request head and body sent there, and the 502
   answers E2B's own proxy gives.  The response side is proxy-upstream.c.  */
#define _GNU_SOURCE
#include "proxy.h"
#include "common/http.h"
#include "common/netns.h"
#include "libhutch/util.h"
#include "proxy-internal.h"

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define MAX_ID_LEN 64

/* ---- Routing ---- */

static bool
parse_port (const char *s, size_t len, int *ret)
{
  int port = 0;

  if (len == 0 || len > 5)
    return false;
  for (size_t i = 0; i < len; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return false;
      port = port * 10 + (s[i] - '0');
    }
  if (port < 1 || port > 65535)
    return false;
  *ret = port;
  return true;
}

static bool
parse_id (const char *s, size_t len, char *id, size_t id_size)
{
  if (len == 0 || len > MAX_ID_LEN || len >= id_size)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
      return false;
  memcpy (id, s, len);
  id[len] = '\0';
  return true;
}

/* HOST without its ":port" suffix and a trailing dot; false for IPv6
   literals, which are never sandbox names.  */
static bool
host_name (const char *host, char *name, size_t size)
{
  size_t len = strcspn (host, ":");

  if (host[0] == '[' || len == 0 || len >= size)
    return false;
  for (size_t i = 0; i < len; i++)
    name[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] - 'A' + 'a' : host[i]);
  if (name[len - 1] == '.')
    len--;
  name[len] = '\0';
  return len > 0;
}

/* {port}-{id}.{domain}: cut at the first '.', split on the first '-'.  */
static bool
target_from_host (const char *host, const char *domain, char *id, size_t id_size, int *port)
{
  char name[256];
  const char *dot, *dash;

  if (!host_name (host, name, sizeof name))
    return false;
  dot = strchr (name, '.');
  if (dot == NULL)
    return false;
  if (domain && *domain && strcasecmp (dot + 1, domain) != 0)
    return false;
  dash = memchr (name, '-', (size_t)(dot - name));
  if (dash == NULL)
    return false;
  return parse_port (name, (size_t)(dash - name), port)
         && parse_id (dash + 1, (size_t)(dot - dash - 1), id, id_size);
}

bool
proxy_target (struct MHD_Connection *conn, const char *domain, char *id, size_t id_size, int *port)
{
  const char *hid = http_header (conn, "E2b-Sandbox-Id");
  const char *hport = http_header (conn, "E2b-Sandbox-Port");
  const char *host;

  /* E2B honours these only for some Host names; any Host will do here.  */
  if (hid && hport)
    return parse_port (hport, strlen (hport), port) && parse_id (hid, strlen (hid), id, id_size);
  host = http_header (conn, MHD_HTTP_HEADER_HOST);
  return host && target_from_host (host, domain, id, id_size, port);
}

/* ---- The raw request target ---- */

/* libmicrohttpd decodes the path and splits off the query before the
   handler sees them; the URI log callback gets the target as sent.  It
   runs on the connection's thread just before that request's handler, so
   a thread-local slot carries it over.  */
static pthread_key_t raw_uri_key;
static pthread_once_t raw_uri_once = PTHREAD_ONCE_INIT;

static void
make_raw_uri_key (void)
{
  if (pthread_key_create (&raw_uri_key, free) != 0)
    abort ();
}

void *
proxy_uri_log (void *cls, const char *uri, struct MHD_Connection *conn)
{
  pthread_once (&raw_uri_once, make_raw_uri_key);
  free (pthread_getspecific (raw_uri_key));
  pthread_setspecific (raw_uri_key, uri && *uri ? xstrdup (uri) : NULL);
  return NULL;
}

static const char *
raw_uri (void)
{
  pthread_once (&raw_uri_once, make_raw_uri_key);
  return pthread_getspecific (raw_uri_key);
}

static bool
is_unreserved (unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
         || (c && strchr ("-._~", c));
}

static void
put_encoded (FILE *f, const char *s, const char *keep)
{
  for (; *s; s++)
    {
      unsigned char c = (unsigned char)*s;
      if (is_unreserved (c) || strchr (keep, c))
        fputc (c, f);
      else
        fprintf (f, "%%%02X", c);
    }
}

/* The raw target as sent, except that bytes a request line cannot carry
   (libmicrohttpd tolerates spaces in it) are percent-encoded.  */
static void
put_raw_target (FILE *f, const char *uri)
{
  for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
    if (*p > 0x20 && *p < 0x7f)
      fputc (*p, f);
    else
      fprintf (f, "%%%02X", *p);
}

struct args_ctx
{
  FILE *f;
  bool first;
};

static enum MHD_Result
put_arg (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
  struct args_ctx *ctx = cls;

  fputc (ctx->first ? '?' : '&', ctx->f);
  ctx->first = false;
  put_encoded (ctx->f, key, "!$'()*,;:@/");
  if (value)
    {
      fputc ('=', ctx->f);
      put_encoded (ctx->f, value, "!$'()*,;:@/");
    }
  return MHD_YES;
}

/* Without the raw target (no URI log callback registered), encode the
   decoded path and arguments again: equivalent, if not byte for byte.  */
static void
put_target (FILE *f, struct MHD_Connection *conn, const char *url)
{
  struct args_ctx ctx = { f, true };
  const char *raw = raw_uri ();

  if (raw)
    {
      put_raw_target (f, raw);
      return;
    }
  put_encoded (f, url, "!$&'()*+,;=:@/");
  MHD_get_connection_values (conn, MHD_GET_ARGUMENT_KIND, put_arg, &ctx);
}

/* ---- Hop-by-hop headers ---- */

bool
proxy_has_token (const char *list, const char *token)
{
  size_t tlen = strlen (token);

  while (list && *list)
    {
      size_t len;
      list += strspn (list, " \t,");
      len = strcspn (list, ",");
      while (len > 0 && (list[len - 1] == ' ' || list[len - 1] == '\t'))
        len--;
      if (len == tlen && strncasecmp (list, token, len) == 0)
        return true;
      list += strcspn (list, ",");
    }
  return false;
}

bool
proxy_is_hop_by_hop (const char *name, const char *connection, bool upgrading)
{
  static const char *const hop[]
      = { "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding" };

  for (size_t i = 0; i < ARRAY_SIZE (hop); i++)
    if (strcasecmp (name, hop[i]) == 0)
      return true;
  if (strncasecmp (name, "Proxy-", 6) == 0)
    return true;
  if (strcasecmp (name, "Upgrade") == 0)
    return !upgrading;
  return proxy_has_token (connection, name);
}

/* ---- The request head ---- */

struct head_ctx
{
  FILE *f;
  const char *connection; /* the client's Connection header */
  bool upgrade;
  char *forwarded_for; /* the client's X-Forwarded-For values, joined */
  bool forwarded_host;
};

/* Framing is the proxy's own, and libmicrohttpd answered any Expect.  */
static bool
is_dropped (const struct head_ctx *ctx, const char *name)
{
  return strcasecmp (name, "Content-Length") == 0 || strcasecmp (name, "Expect") == 0
         || proxy_is_hop_by_hop (name, ctx->connection, ctx->upgrade);
}

static void
add_forwarded_for (struct head_ctx *ctx, const char *value)
{
  char *joined;

  if (ctx->forwarded_for == NULL)
    {
      ctx->forwarded_for = xstrdup (value);
      return;
    }
  xasprintf (&joined, "%s, %s", ctx->forwarded_for, value);
  free (ctx->forwarded_for);
  ctx->forwarded_for = joined;
}

static enum MHD_Result
put_header (void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
  struct head_ctx *ctx = cls;

  if (value == NULL || is_dropped (ctx, name))
    return MHD_YES;
  if (strcasecmp (name, "X-Forwarded-For") == 0)
    {
      add_forwarded_for (ctx, value);
      return MHD_YES;
    }
  if (strcasecmp (name, "X-Forwarded-Host") == 0)
    ctx->forwarded_host = true;
  fprintf (ctx->f, "%s: %s\r\n", name, value);
  return MHD_YES;
}

static void
client_address (struct MHD_Connection *conn, char *buf, size_t size)
{
  const union MHD_ConnectionInfo *info
      = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = info ? info->client_addr : NULL;

  snprintf (buf, size, "unknown");
  if (sa && sa->sa_family == AF_INET)
    inet_ntop (AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)size);
  else if (sa && sa->sa_family == AF_INET6)
    inet_ntop (AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)size);
}

static void
put_forwarding (struct head_ctx *ctx, struct MHD_Connection *conn)
{
  const char *host = http_header (conn, MHD_HTTP_HEADER_HOST);
  char addr[INET6_ADDRSTRLEN];

  client_address (conn, addr, sizeof addr);
  add_forwarded_for (ctx, addr);
  fprintf (ctx->f, "X-Forwarded-For: %s\r\n", ctx->forwarded_for);
  if (host && !ctx->forwarded_host)
    fprintf (ctx->f, "X-Forwarded-Host: %s\r\n", host);
}

/* One upstream connection per request: the response ends where upstream
   closes or frames it, and nothing is left over for another request.  The
   body is framed the way libmicrohttpd decoded it: Transfer-Encoding wins
   over Content-Length.  */
static void
put_framing (struct proxy_req *r, FILE *f)
{
  const char *length = http_header (r->conn, MHD_HTTP_HEADER_CONTENT_LENGTH);

  if (http_header (r->conn, MHD_HTTP_HEADER_TRANSFER_ENCODING))
    {
      fputs ("Transfer-Encoding: chunked\r\n", f);
      r->chunked_body = true;
    }
  else if (length)
    fprintf (f, "Content-Length: %s\r\n", length);
  fputs (r->upgrade ? "Connection: Upgrade\r\n\r\n" : "Connection: close\r\n\r\n", f);
}

static bool
wants_upgrade (struct MHD_Connection *conn)
{
  return http_header (conn, MHD_HTTP_HEADER_UPGRADE)
         && proxy_has_token (http_header (conn, MHD_HTTP_HEADER_CONNECTION), "upgrade");
}

/* The request line and headers for upstream, in a malloc'd buffer.  */
static char *
build_head (struct proxy_req *r, const char *method, const char *url, size_t *ret_len)
{
  struct head_ctx ctx
      = { .connection = http_header (r->conn, MHD_HTTP_HEADER_CONNECTION), .upgrade = r->upgrade };
  char *head = NULL;

  ctx.f = open_memstream (&head, ret_len);
  if (ctx.f == NULL)
    abort ();
  fprintf (ctx.f, "%s ", method);
  put_target (ctx.f, r->conn, url);
  fputs (" HTTP/1.1\r\n", ctx.f);
  MHD_get_connection_values (r->conn, MHD_HEADER_KIND, put_header, &ctx);
  put_forwarding (&ctx, r->conn);
  put_framing (r, ctx.f);
  if (fclose (ctx.f) != 0)
    abort ();
  free (ctx.forwarded_for);
  return head;
}

/* ---- Sending upstream ---- */

static int
client_socket (struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *info
      = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  return info ? info->connect_fd : -1;
}

/* libmicrohttpd times a connection out counting from its last activity,
   even when the time went to a handler blocked on upstream; resetting the
   timeout restarts that count.  */
static void
touch_connection (struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *info
      = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_TIMEOUT);
  unsigned timeout = info ? info->connection_timeout : 0;

  if (timeout == 0)
    return;
  MHD_set_connection_option (conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
  MHD_set_connection_option (conn, MHD_CONNECTION_OPTION_TIMEOUT, timeout);
}

int
proxy_wait (struct proxy_req *r, int fd, short events)
{
  struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = r->client, .events = POLLRDHUP } };
  int n;

  n = (int)TEMP_FAILURE_RETRY (poll (p, r->client >= 0 ? 2 : 1, -1));
  if (n < 0)
    return -1;
  touch_connection (r->conn);
  if (r->client >= 0 && p[1].revents)
    {
      errno = ECONNABORTED;
      return -1;
    }
  return 0;
}

static void
iov_advance (struct msghdr *msg, size_t n)
{
  while (msg->msg_iovlen > 0 && n >= msg->msg_iov[0].iov_len)
    {
      n -= msg->msg_iov[0].iov_len;
      msg->msg_iov++;
      msg->msg_iovlen--;
    }
  if (msg->msg_iovlen > 0)
    {
      msg->msg_iov[0].iov_base = (char *)msg->msg_iov[0].iov_base + n;
      msg->msg_iov[0].iov_len -= n;
    }
}

/* Send all of IOV upstream; waits (watching the client) when upstream is
   slow to take it.  Returns 0 or -1 with errno.  */
static int
send_upstream (struct proxy_req *r, struct iovec *iov, int n)
{
  struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };

  iov_advance (&msg, 0);
  while (msg.msg_iovlen > 0)
    {
      ssize_t w = sendmsg (r->upstream, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w >= 0)
        iov_advance (&msg, (size_t)w);
      else if (errno == EAGAIN || errno == EWOULDBLOCK)
        {
          if (proxy_wait (r, r->upstream, POLLOUT) < 0)
            return -1;
        }
      else if (errno != EINTR)
        return -1;
    }
  return 0;
}

static int
send_head (struct proxy_req *r, const char *method, const char *url)
{
  size_t len;
  cleanup_free char *head = build_head (r, method, url, &len);
  struct iovec iov = { head, len };

  return send_upstream (r, &iov, 1);
}

static int
send_body (struct proxy_req *r, const char *data, size_t size)
{
  char size_line[24];
  struct iovec iov[3] = { { size_line, 0 }, { (void *)data, size }, { (void *)"\r\n", 0 } };

  if (r->chunked_body)
    {
      iov[0].iov_len = (size_t)snprintf (size_line, sizeof size_line, "%zx\r\n", size);
      iov[2].iov_len = 2;
    }
  return send_upstream (r, iov, 3);
}

static int
send_body_end (struct proxy_req *r)
{
  struct iovec iov = { (void *)"0\r\n\r\n", 5 };

  if (!r->chunked_body || r->upload_failed)
    return 0;
  return send_upstream (r, &iov, 1);
}

/* ---- Error answers ---- */

/* An answer queued in the first call makes libmicrohttpd close the
   connection rather than read a body nobody asked for.  Without a body,
   answering at the end of the request keeps the connection alive.  */
static enum MHD_Result
send_502 (struct proxy_req *r, const char *json)
{
  struct MHD_Response *response;

  if (!r->started && !r->has_body)
    {
      r->error = xstrdup (json);
      return MHD_YES;
    }
  r->responded = true;
  response = MHD_create_response_from_buffer (strlen (json), (void *)json, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  return http_queue (r->conn, MHD_HTTP_BAD_GATEWAY, response);
}

static enum MHD_Result
send_not_found (struct proxy_req *r)
{
  char json[256];

  snprintf (json, sizeof json,
            "{\"sandboxId\":\"%s\",\"message\":\"The sandbox was not found\",\"code\":502}", r->id);
  return send_502 (r, json);
}

static enum MHD_Result
send_port_error (struct proxy_req *r, const char *message)
{
  char json[512];

  snprintf (json, sizeof json, "{\"sandboxId\":\"%s\",\"message\":\"%s\",\"port\":%d,\"code\":502}",
            r->id, message, r->port);
  return send_502 (r, json);
}

static enum MHD_Result
send_port_closed (struct proxy_req *r)
{
  return send_port_error (r, "The sandbox is running but port is not open");
}

static enum MHD_Result
send_upstream_failed (struct proxy_req *r)
{
  return send_port_error (r, "The sandbox port closed the connection without a valid response");
}

/* ---- The request ---- */

static bool
has_body (struct MHD_Connection *conn)
{
  const char *length = http_header (conn, MHD_HTTP_HEADER_CONTENT_LENGTH);

  if (http_header (conn, MHD_HTTP_HEADER_TRANSFER_ENCODING))
    return true;
  return length && strcmp (length, "0") != 0;
}

static struct proxy_req *
proxy_req_new (struct MHD_Connection *conn, const char *id, int port, const char *method)
{
  struct proxy_req *r = xzalloc (sizeof *r);

  r->refs = 1;
  r->conn = conn;
  snprintf (r->id, sizeof r->id, "%s", id);
  r->port = port;
  r->upstream = -1;
  r->client = client_socket (conn);
  r->head = strcmp (method, MHD_HTTP_METHOD_HEAD) == 0;
  r->upgrade = wants_upgrade (conn);
  r->has_body = has_body (conn);
  return r;
}

void
proxy_req_unref (struct proxy_req *r)
{
  if (r == NULL || --r->refs > 0)
    return;
  if (r->upstream >= 0)
    close (r->upstream);
  if (r->sbx)
    sbx_unref (r->sbx);
  for (size_t i = 0; i < r->n_headers; i++)
    {
      free (r->headers[i].name);
      free (r->headers[i].value);
    }
  free (r->headers);
  free (r->buf);
  free (r->error);
  free (r);
}

static enum MHD_Result
connect_upstream (struct proxy_req *r)
{
  r->sbx = registry_get (r->id);
  if (r->sbx == NULL || r->sbx->paused)
    return send_not_found (r);
  r->upstream = netns_connect_loopback (r->sbx->netns_fd, r->port, PROXY_CONNECT_TIMEOUT_MS);
  if (r->upstream >= 0)
    return MHD_YES;
  if (errno == ECONNREFUSED || errno == ETIMEDOUT)
    return send_port_closed (r);
  return send_port_error (r, "The sandbox port could not be reached");
}

static enum MHD_Result
start (struct MHD_Connection *conn, const char *id, int port, const char *url, const char *method,
       void **con_cls)
{
  struct proxy_req *r = proxy_req_new (conn, id, port, method);
  enum MHD_Result ret;

  *con_cls = r;
  ret = connect_upstream (r);
  if (!r->responded && !r->error && send_head (r, method, url) < 0)
    ret = errno == ECONNABORTED ? MHD_NO : send_upstream_failed (r);
  r->started = true;
  return ret;
}

static enum MHD_Result
forward_body (struct proxy_req *r, const char *data, size_t size)
{
  if (r->upload_failed)
    return MHD_YES;
  if (send_body (r, data, size) == 0)
    return MHD_YES;
  if (errno == ECONNABORTED)
    return MHD_NO;
  /* Upstream may have answered early (413...): drop the rest of the body
     and relay whatever it said.  */
  r->upload_failed = true;
  return MHD_YES;
}

static enum MHD_Result
finish (struct proxy_req *r)
{
  if (send_body_end (r) < 0 && errno == ECONNABORTED)
    return MHD_NO;
  if (proxy_read_head (r) < 0)
    return errno == ECONNABORTED ? MHD_NO : send_upstream_failed (r);
  r->responded = true;
  return proxy_respond (r);
}

enum MHD_Result
proxy_handle (struct MHD_Connection *conn, const char *id, int port, const char *url,
              const char *method, const char *version, const char *upload_data,
              size_t *upload_data_size, void **con_cls)
{
  struct proxy_req *r = *con_cls;
  size_t size = *upload_data_size;

  if (r == NULL)
    return start (conn, id, port, url, method, con_cls);
  *upload_data_size = 0;
  if (r->responded)
    return MHD_YES;
  if (r->error)
    return size > 0 ? MHD_YES : send_502 (r, r->error);
  if (size > 0)
    return forward_body (r, upload_data, size);
  return finish (r);
}

void
proxy_completed (void **con_cls)
{
  struct proxy_req *r = *con_cls;

  *con_cls = NULL;
  proxy_req_unref (r);
}
