/* The code-interpreter server on port 49999 inside the sandbox, as E2B's
   (FastAPI in front of Jupyter): /execute, /contexts, /health, and our
   /validate.  No authentication, as E2B's: its proxy checks tokens.  */
#define _GNU_SOURCE
#include "contexts.h"
#include "interp-internal.h"
#include "interp.h"
#include "libhutch/log.h"
#include "libhutch/util.h"
#include "server-internal.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY (64u << 20)

static enum MHD_Result
health (struct http_req *req)
{
  return http_send_json (req->conn, 200, json_string ("OK"));
}

static const struct field_check create_fields[] = {
  { "language", false, false },
  { "cwd", false, false },
  { NULL, false, false },
};

static enum MHD_Result
create_context (struct http_req *req)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_json_t json_t *body = request_object (req);
  cleanup_free char *language = NULL;
  struct interp_ctx *c;
  json_t *answer;

  if (body == NULL || !request_check (req, body, create_fields))
    return MHD_YES;
  language = interp_normalize_language (request_str (body, "language"));
  c = contexts_create (language, request_str (body, "cwd"), &err);
  if (c == NULL)
    return reply_text (req, 500, "Failed to create context: %s", err->msg);
  answer = json_pack ("{s:s, s:s, s:s}", "id", c->id, "language", c->language, "cwd", c->cwd);
  ctx_unref (c);
  return http_send_json (req->conn, 200, answer);
}

static enum MHD_Result
list_contexts (struct http_req *req)
{
  return http_send_json (req->conn, 200, contexts_list ());
}

static enum MHD_Result
delete_context (struct http_req *req)
{
  if (contexts_delete (req->params[0]) < 0)
    return reply_text (req, 404, "Context %s not found", req->params[0]);
  return http_send_json (req->conn, 200, json_null ());
}

static enum MHD_Result
restart_context (struct http_req *req)
{
  cleanup_error hutch_error_t err = NULL;

  if (contexts_restart (req->params[0], &err) == 0)
    return http_send_json (req->conn, 200, json_null ());
  if (err->status == ENOENT)
    return reply_text (req, 404, "Context %s not found", req->params[0]);
  return reply_text (req, 500, "Failed to restart context %s: %s", req->params[0], err->msg);
}

/* CORS preflights, for the JS SDK in browsers: everything is allowed.  */
static enum MHD_Result
preflight (struct http_req *req)
{
  struct MHD_Response *r = MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
  const char *asked = http_header (req->conn, "Access-Control-Request-Headers");

  MHD_add_response_header (r, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
  MHD_add_response_header (r, "Access-Control-Allow-Headers", asked ? asked : "*");
  MHD_add_response_header (r, "Access-Control-Max-Age", "600");
  return http_queue (req->conn, 200, r);
}

#define ROUTE(method, pattern, fn)                                                                 \
  {                                                                                                \
    method, pattern, fn, NULL, MAX_BODY, true                                                      \
  }

static const struct http_route routes[] = {
  ROUTE ("GET", "/health", health),
  ROUTE ("POST", "/execute", execute_handle),
  ROUTE ("POST", "/validate", validate_handle),
  ROUTE ("GET", "/contexts", list_contexts),
  ROUTE ("POST", "/contexts", create_context),
  ROUTE ("DELETE", "/contexts/{}", delete_context),
  ROUTE ("POST", "/contexts/{}/restart", restart_context),
  ROUTE ("OPTIONS", "/health", preflight),
  ROUTE ("OPTIONS", "/execute", preflight),
  ROUTE ("OPTIONS", "/validate", preflight),
  ROUTE ("OPTIONS", "/contexts", preflight),
  ROUTE ("OPTIONS", "/contexts/{}", preflight),
  ROUTE ("OPTIONS", "/contexts/{}/restart", preflight),
  { NULL, NULL, NULL, NULL, 0, false },
};

static enum MHD_Result
not_found (struct MHD_Connection *conn, const char *method, const char *url)
{
  return http_send_json (conn, MHD_HTTP_NOT_FOUND, json_pack ("{s:s}", "detail", "Not Found"));
}

static const struct http_server server = { routes, not_found, NULL };

static enum MHD_Result
handler (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
         const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
  return http_dispatch (&server, conn, url, method, upload_data, upload_data_size, con_cls);
}

static int
port (void)
{
  const char *s = getenv ("HUTCH_INTERP_PORT");
  unsigned long n;

  if (s && parse_ulong (s, 65535, &n) == 0 && n > 0)
    return (int)n;
  return INTERP_PORT;
}

/* The default Python context starts in the background: the sandbox is
   ready before its kernel is, and the first /execute waits for it.  */
static void *
default_python (void *arg)
{
  cleanup_error hutch_error_t err = NULL;
  struct interp_ctx *c = contexts_default ("python", &err);

  if (c == NULL)
    log_warn ("interp: the default python context: %s", err->msg);
  ctx_unref (c);
  return NULL;
}

static void
start_default_python (void)
{
  pthread_attr_t attr;
  pthread_t t;

  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create (&t, &attr, default_python, NULL) != 0)
    log_warn ("interp: cannot start the default python context");
  pthread_attr_destroy (&attr);
}

int
interp_start (bool warm)
{
  cleanup_error hutch_error_t err = NULL;
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port ()) };
  struct MHD_Daemon *d;

  if (contexts_init (&err) < 0)
    {
      log_error ("interp: %s", err->msg);
      return -1;
    }
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  d = MHD_start_daemon (
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
      NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED,
      http_request_completed, NULL, MHD_OPTION_CONNECTION_LIMIT, 1024, MHD_OPTION_END);
  if (d == NULL)
    {
      log_error ("interp: cannot listen on port %d", port ());
      return -1;
    }
  if (warm)
    start_default_python ();
  return 0;
}
