#define _GNU_SOURCE
#include "http.h"
#include "libhutch/util.h"

#include <openssl/crypto.h>
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

/* A body announced larger than the route takes is refused before it is
   read.  */
static bool
declared_too_large (struct http_req *req)
{
  const char *cl = http_header (req->conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
  size_t limit = req->route->max_body ? req->route->max_body : DEFAULT_MAX_BODY;
  unsigned long long n;
  char *end;

  if (cl == NULL || req->route->upload)
    return false;
  n = strtoull (cl, &end, 10);
  return *end == '\0' && n > limit;
}

/* Body bytes: to the route's upload callback, or into req->body.  Once
   either refuses, the rest of the body is read and dropped, and the answer
   comes at the end (a response queued halfway through an upload is not
   reliably delivered).  */
static void
take_body (struct http_req *req, const char *data, size_t size)
{
  if (req->body_refused)
    return;
  if (req->route->upload ? !req->route->upload (req, data, size) : !append_body (req, data, size))
    req->body_refused = true;
}

static enum MHD_Result
finish_request (struct http_req *req)
{
  bool responded = req->responded;

  req->responded = true;
  if (responded)
    return MHD_YES;
  if (req->body_too_large)
    return http_send_error (req->conn, MHD_HTTP_CONTENT_TOO_LARGE,
                            "request body too large (at most %zu bytes)",
                            req->route->max_body ? req->route->max_body : DEFAULT_MAX_BODY);
  if (req->route->upload && !req->body_refused)
    req->route->upload (req, NULL, 0);
  return req->route->handle (req);
}

enum MHD_Result
http_dispatch (const struct http_server *server, struct MHD_Connection *conn, const char *url,
               const char *method, const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
  struct http_req *req = *con_cls;

  if (req == NULL)
    {
      enum MHD_Result r = start_request (server, conn, url, method, con_cls);
      req = *con_cls;
      if (!req->responded && declared_too_large (req))
        {
          req->body_too_large = true;
          return finish_request (req);
        }
      return r;
    }
  if (*upload_data_size > 0)
    {
      if (!req->responded)
        take_body (req, upload_data, *upload_data_size);
      *upload_data_size = 0;
      return MHD_YES;
    }
  return finish_request (req);
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

/* Length of the valid UTF-8 sequence at S, or 0.  */
static size_t
utf8_char_len (const unsigned char *s)
{
  size_t n = s[0] < 0x80             ? 1
             : (s[0] & 0xe0) == 0xc0 ? 2
             : (s[0] & 0xf0) == 0xe0 ? 3
             : (s[0] & 0xf8) == 0xf0 ? 4
                                     : 0;
  if (n == 0 || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4))
    return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  return n;
}

/* Messages quote what clients sent: replace what is not UTF-8 (JSON
   cannot carry it) and control characters by '?'.  */
static void
sanitize (char *s)
{
  unsigned char *p = (unsigned char *)s;
  while (*p)
    {
      size_t n = utf8_char_len (p);
      if (n == 0 || (n == 1 && *p < 0x20))
        {
          *p++ = '?';
          continue;
        }
      p += n;
    }
}

enum MHD_Result
http_send_error (struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
  char message[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (message, sizeof message, fmt, ap);
  va_end (ap);
  sanitize (message);
  return http_send_json (conn, status,
                         json_pack ("{s:i, s:s}", "code", (int)status, "message", message));
}

enum MHD_Result
http_not_found (struct MHD_Connection *conn, const char *method, const char *url)
{
  return http_send_error (conn, MHD_HTTP_NOT_FOUND, "no such endpoint: %s %s", method, url);
}

const char *
http_header (struct MHD_Connection *conn, const char *name)
{
  return MHD_lookup_connection_value (conn, MHD_HEADER_KIND, name);
}

bool
http_secret_equal (const char *given, const char *secret)
{
  size_t n = strlen (secret);
  return given && strlen (given) == n && CRYPTO_memcmp (given, secret, n) == 0;
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

static int
hex_digit (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

size_t
http_unescape (void *cls, struct MHD_Connection *conn, char *s)
{
  char *out = s;

  for (char *in = s; *in; in++)
    {
      int hi, lo;
      if (in[0] == '%' && (hi = hex_digit (in[1])) >= 0 && (lo = hex_digit (in[2])) >= 0
          && (hi | lo) != 0)
        {
          *out++ = (char)(hi * 16 + lo);
          in += 2;
        }
      else
        *out++ = *in;
    }
  *out = '\0';
  return (size_t)(out - s);
}
