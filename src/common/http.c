#define _GNU_SOURCE
#include "http.h"
#include "libhutch/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_MAX_BODY (1u << 20)

/* Match URL (already percent-decoded by libmicrohttpd) against PATTERN,
   filling PARAMS.  */
static bool
match (const char *pattern, const char *url, char **params)
{
  size_t np = 0;
  const char *p = pattern, *u = url;

  while (*p && *u)
    {
      if (p[0] == '{' && p[1] == '}')
        {
          size_t n = strcspn (u, "/?");
          if (n == 0 || np >= HTTP_MAX_PARAMS)
            return false;
          params[np++] = xstrndup (u, n);
          p += 2;
          u += n;
          continue;
        }
      if (*p != *u)
        return false;
      p++;
      u++;
    }
  return *p == '\0' && (*u == '\0' || *u == '?');
}

static void
free_params (char **params)
{
  for (int i = 0; i < HTTP_MAX_PARAMS; i++)
    {
      free (params[i]);
      params[i] = NULL;
    }
}

static const struct http_route *
find_route (const struct http_route *routes, const char *method, const char *url, char **params,
            bool *path_known)
{
  *path_known = false;
  for (const struct http_route *r = routes; r->pattern; r++)
    {
      if (!match (r->pattern, url, params))
        {
          free_params (params);
          continue;
        }
      *path_known = true;
      if (strcmp (r->method, method) == 0)
        return r;
      free_params (params);
    }
  return NULL;
}

static bool
append_body (struct http_req *req, const char *data, size_t size)
{
  size_t limit = req->route->max_body ? req->route->max_body : DEFAULT_MAX_BODY;
  if (req->body_too_large || req->body_len + size > limit)
    {
      req->body_too_large = true;
      return false;
    }
  req->body = xrealloc (req->body, req->body_len + size + 1);
  memcpy (req->body + req->body_len, data, size);
  req->body_len += size;
  req->body[req->body_len] = '\0';
  return true;
}

static enum MHD_Result
start_request (const struct http_server *server, struct MHD_Connection *conn, const char *url,
               const char *method, void **con_cls)
{
  struct http_req *req = xzalloc (sizeof *req);
  bool known;

  req->conn = conn;
  req->method = method;
  req->url = url;
  req->route = find_route (server->routes, method, url, req->params, &known);
  *con_cls = req;
  if (req->route && !req->route->open && server->authorize && !server->authorize (conn, req->route))
    {
      req->responded = true;
      return MHD_YES;
    }
  if (req->route)
    return MHD_YES;
  req->responded = true;
  if (known)
    return http_send_error (conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method %s not allowed on %s",
                            method, url);
  return server->not_found (conn, method, url);
}

enum MHD_Result
http_dispatch (const struct http_server *server, struct MHD_Connection *conn, const char *url,
               const char *method, const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
  struct http_req *req = *con_cls;

  if (req == NULL)
    return start_request (server, conn, url, method, con_cls);
  if (req->responded)
    {
      *upload_data_size = 0; /* discard the rest of the body */
      return MHD_YES;
    }
  if (*upload_data_size > 0)
    {
      bool ok = req->route->upload ? req->route->upload (req, upload_data, *upload_data_size)
                                   : append_body (req, upload_data, *upload_data_size);
      *upload_data_size = 0;
      if (!ok && !req->responded)
        {
          req->responded = true;
          if (req->body_too_large)
            return http_send_error (conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
          return MHD_NO;
        }
      return MHD_YES;
    }
  if (req->route->upload && !req->route->upload (req, NULL, 0))
    {
      bool sent = req->responded;
      req->responded = true;
      return sent ? MHD_YES : MHD_NO;
    }
  req->responded = true;
  return req->route->handle (req);
}

void
http_request_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
  struct http_req *req = *con_cls;

  if (req == NULL)
    return;
  if (req->free_state && req->state)
    req->free_state (req->state);
  free_params (req->params);
  free (req->body);
  free (req);
  *con_cls = NULL;
}

void
http_add_cors (struct MHD_Response *response)
{
  MHD_add_response_header (response, "Access-Control-Allow-Origin", "*");
}

__thread unsigned http_last_status;

enum MHD_Result
http_queue (struct MHD_Connection *conn, unsigned status, struct MHD_Response *response)
{
  enum MHD_Result r;
  http_last_status = status;
  http_add_cors (response);
  r = MHD_queue_response (conn, status, response);
  MHD_destroy_response (response);
  return r;
}

enum MHD_Result
http_send_text (struct MHD_Connection *conn, unsigned status, const char *content_type,
                const char *text)
{
  struct MHD_Response *response
      = MHD_create_response_from_buffer (strlen (text), (void *)text, MHD_RESPMEM_MUST_COPY);
  if (content_type)
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  return http_queue (conn, status, response);
}

enum MHD_Result
http_send_json (struct MHD_Connection *conn, unsigned status, json_t *body)
{
  char *text = json_dumps (body, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
  struct MHD_Response *response;

  json_decref (body);
  if (text == NULL)
    text = xstrdup ("null");
  response = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  return http_queue (conn, status, response);
}

enum MHD_Result
http_send_empty (struct MHD_Connection *conn, unsigned status)
{
  struct MHD_Response *response = MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
  return http_queue (conn, status, response);
}

enum MHD_Result
http_send_error (struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
  char message[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (message, sizeof message, fmt, ap);
  va_end (ap);
  return http_send_json (conn, status,
                         json_pack ("{s:i, s:s}", "code", (int)status, "message", message));
}

const char *
http_header (struct MHD_Connection *conn, const char *name)
{
  return MHD_lookup_connection_value (conn, MHD_HEADER_KIND, name);
}

const char *
http_query (struct MHD_Connection *conn, const char *name)
{
  return MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *
http_body_json (struct http_req *req)
{
  json_error_t jerr;
  json_t *v;

  if (req->body_len == 0)
    return json_object ();
  v = json_loadb (req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
  if (v == NULL)
    {
      http_send_error (req->conn, MHD_HTTP_BAD_REQUEST, "invalid JSON body: %s", jerr.text);
      return NULL;
    }
  if (!json_is_object (v))
    {
      json_decref (v);
      http_send_error (req->conn, MHD_HTTP_BAD_REQUEST, "the JSON body must be an object");
      return NULL;
    }
  return v;
}
