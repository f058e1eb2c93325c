#define _GNU_SOURCE
#include "server.h"
#include "api.h"
#include "common/http.h"
#include "libhutch/log.h"
#include "libhutch/util.h"
#include "proxy.h"
#include "watchdog.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* Silence allowed on a connection, and the time a control-plane request
   has to arrive whole.  */
#define CONNECTION_TIMEOUT_S 120
#define REQUEST_TIMEOUT_S 60

enum conn_kind
{
  KIND_API,
  KIND_PROXY,
  KIND_REFUSED, /* answered at once; the rest is read and dropped */
};

/* Per request: which side serves it and that side's own state.  */
struct conn_state
{
  enum conn_kind kind;
  void *inner;
  char id[65];
  int port;
  char method[16];
  char *url;
  unsigned long long start_ns;
};

static struct MHD_Daemon *daemon_handle;

/* Set by uri_log for the request this thread is about to handle.  */
static __thread bool target_has_nul;
static const struct hutchd_config *cfg;

/* libmicrohttpd ends the request target at a raw NUL byte without
   telling, so "/sandboxes/ID\0junk" would name sandbox ID.  It splits the
   request line at its last space first, so the version ("HTTP/1.1")
   follows the target's terminating NUL unless an earlier NUL cut it.  */
static void *
uri_log (void *cls, const char *uri, struct MHD_Connection *conn)
{
  target_has_nul = strncmp (uri + strlen (uri) + 1, "HTTP/", 5) != 0;
  return proxy_uri_log (cls, uri, conn);
}

static enum MHD_Result
handler (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
         const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
  struct conn_state *st = *con_cls;

  if (st == NULL)
    {
      st = xzalloc (sizeof *st);
      st->start_ns = now_ns ();
      snprintf (st->method, sizeof st->method, "%s", method);
      st->url = xstrdup (url);
      if (proxy_target (conn, cfg->domain, st->id, sizeof st->id, &st->port))
        {
          st->kind = KIND_PROXY;
          watchdog_disarm (conn);
        }
      *con_cls = st;
      http_last_status = 0;
      if (target_has_nul)
        {
          st->kind = KIND_REFUSED;
          return http_send_error (conn, MHD_HTTP_BAD_REQUEST,
                                  "the request target contains a NUL byte");
        }
    }
  if (st->kind == KIND_REFUSED)
    {
      *upload_data_size = 0;
      return MHD_YES;
    }
  if (st->kind == KIND_PROXY)
    return proxy_handle (conn, st->id, st->port, url, method, version, upload_data,
                         upload_data_size, &st->inner);
  return http_dispatch (&api_server, conn, url, method, upload_data, upload_data_size, &st->inner);
}

static void
completed (void *cls, struct MHD_Connection *conn, void **con_cls,
           enum MHD_RequestTerminationCode toe)
{
  struct conn_state *st = *con_cls;

  if (st == NULL)
    return;
  if (st->kind == KIND_REFUSED)
    log_info ("%s (a target with a NUL byte) 400", st->method);
  else if (st->kind == KIND_PROXY)
    {
      proxy_completed (&st->inner);
      log_info ("%s %s -> sandbox %s:%d %u %.1f ms", st->method, st->url, st->id, st->port,
                http_last_status, (double)(now_ns () - st->start_ns) / 1e6);
    }
  else
    {
      http_request_completed (NULL, conn, &st->inner, toe);
      log_info ("%s %s %u %.1f ms", st->method, st->url, http_last_status,
                (double)(now_ns () - st->start_ns) / 1e6);
    }
  free (st->url);
  free (st);
  *con_cls = NULL;
  watchdog_rearm (conn);
}

static int
resolve (const char *host, int port, struct sockaddr_storage *addr, socklen_t *len,
         hutch_error_t *err)
{
  struct addrinfo hints = { .ai_flags = AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
  struct addrinfo *res;
  char service[16];
  int r;

  snprintf (service, sizeof service, "%d", port);
  r = getaddrinfo (*host ? host : NULL, service, &hints, &res);
  if (r != 0)
    return hutch_make_error (err, EINVAL, "listen address `%s`: %s", host, gai_strerror (r));
  memcpy (addr, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo (res);
  return 0;
}

int
server_start (const struct hutchd_config *config, hutch_error_t *err)
{
  struct sockaddr_storage addr;
  socklen_t len;
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL
                   | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
  int r;

  cfg = config;
  api_init (config);
  if ((r = resolve (config->listen_host, config->listen_port, &addr, &len, err)) < 0)
    return r;
  if (watchdog_start (REQUEST_TIMEOUT_S) < 0)
    return hutch_make_error (err, EAGAIN, "start the request watchdog");
  if (addr.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  daemon_handle = MHD_start_daemon (
      flags, (uint16_t)config->listen_port, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
      MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
      completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, watchdog_notify, NULL,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
      8192U, MHD_OPTION_URI_LOG_CALLBACK, uri_log, NULL, MHD_OPTION_END);
  if (daemon_handle == NULL)
    return hutch_make_error (err, EADDRINUSE, "cannot listen on %s:%d", config->listen_host,
                             config->listen_port);
  return 0;
}

void
server_stop (void)
{
  if (daemon_handle)
    MHD_stop_daemon (daemon_handle);
  daemon_handle = NULL;
  watchdog_stop ();
}
