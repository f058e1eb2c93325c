#define _GNU_SOURCE
#include "connect.h"
#include "libhutch/util.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEFAULT_KEEPALIVE_S 90

static const struct
{
  const char *code;
  unsigned status;
} codes[] = {
  { "canceled", 499 },
  { "unknown", 500 },
  { "invalid_argument", 400 },
  { "deadline_exceeded", 504 },
  { "not_found", 404 },
  { "already_exists", 409 },
  { "permission_denied", 403 },
  { "resource_exhausted", 429 },
  { "failed_precondition", 400 },
  { "aborted", 409 },
  { "out_of_range", 400 },
  { "unimplemented", 501 },
  { "internal", 500 },
  { "unavailable", 503 },
  { "data_loss", 500 },
  { "unauthenticated", 401 },
};

unsigned
connect_http_status (const char *code)
{
  for (size_t i = 0; i < ARRAY_SIZE (codes); i++)
    if (strcmp (codes[i].code, code) == 0)
      return codes[i].status;
  return 500;
}

enum MHD_Result
connect_reply (struct MHD_Connection *conn, json_t *response)
{
  return http_send_json (conn, 200, response ? response : json_object ());
}

static json_t *
error_object (const char *code, const char *fmt, va_list ap)
{
  char message[1024];
  vsnprintf (message, sizeof message, fmt, ap);
  return json_pack ("{s:s, s:s}", "code", code, "message", message);
}

enum MHD_Result
connect_error (struct MHD_Connection *conn, const char *code, const char *fmt, ...)
{
  va_list ap;
  json_t *body;

  va_start (ap, fmt);
  body = error_object (code, fmt, ap);
  va_end (ap);
  return http_send_json (conn, connect_http_status (code), body);
}

/* Streams.  */

struct connect_stream
{
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *buf;
  size_t len, cap;
  json_t *keepalive;
  int keepalive_s;
  unsigned long long deadline; /* monotonic ns, 0: none */
  bool ended, closed;
  int refs;
  struct MHD_Connection *conn;
};

static void
append_envelope (struct connect_stream *s, unsigned char flags, json_t *msg)
{
  char *text = json_dumps (msg, JSON_COMPACT | JSON_ENCODE_ANY);
  size_t n = strlen (text);
  uint32_t be = htonl ((uint32_t)n);

  if (s->len + n + 5 > s->cap)
    {
      s->cap = (s->len + n + 5) * 2;
      s->buf = xrealloc (s->buf, s->cap);
    }
  s->buf[s->len] = (char)flags;
  memcpy (s->buf + s->len + 1, &be, 4);
  memcpy (s->buf + s->len + 5, text, n);
  s->len += n + 5;
  free (text);
}

static void
end_locked (struct connect_stream *s, json_t *error)
{
  json_t *frame = error ? json_pack ("{s:o}", "error", error) : json_object ();
  if (s->ended)
    {
      json_decref (frame);
      return;
    }
  append_envelope (s, 0x02, frame);
  json_decref (frame);
  s->ended = true;
  pthread_cond_broadcast (&s->cv);
}

static int
header_int (struct MHD_Connection *conn, const char *name, long long def)
{
  const char *v = http_header (conn, name);
  unsigned long n;
  if (v == NULL || parse_ulong (v, 1UL << 40, &n) < 0)
    return (int)def;
  return n > 0x7fffffff ? 0x7fffffff : (int)n;
}

struct connect_stream *
connect_stream_new (struct http_req *req, json_t *keepalive)
{
  struct connect_stream *s = xzalloc (sizeof *s);
  const char *timeout = http_header (req->conn, "Connect-Timeout-Ms");
  unsigned long ms;

  pthread_mutex_init (&s->mu, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&s->cv, &attr);
  pthread_condattr_destroy (&attr);
  s->keepalive = keepalive;
  s->keepalive_s = header_int (req->conn, "Keepalive-Ping-Interval", DEFAULT_KEEPALIVE_S);
  if (s->keepalive_s <= 0)
    s->keepalive_s = DEFAULT_KEEPALIVE_S;
  if (timeout && parse_ulong (timeout, 1UL << 40, &ms) == 0 && ms > 0)
    s->deadline = now_ns () + ms * 1000000ULL;
  s->refs = 1;
  s->conn = req->conn;
  return s;
}

bool
connect_stream_send (struct connect_stream *s, json_t *message)
{
  bool ok;
  pthread_mutex_lock (&s->mu);
  ok = !s->closed && !s->ended;
  if (ok)
    {
      append_envelope (s, 0, message);
      pthread_cond_broadcast (&s->cv);
    }
  pthread_mutex_unlock (&s->mu);
  json_decref (message);
  return ok;
}

void
connect_stream_end (struct connect_stream *s, const char *code, const char *fmt, ...)
{
  json_t *error = NULL;
  va_list ap;

  if (code)
    {
      va_start (ap, fmt);
      error = error_object (code, fmt, ap);
      va_end (ap);
    }
  pthread_mutex_lock (&s->mu);
  end_locked (s, error);
  pthread_mutex_unlock (&s->mu);
}

bool
connect_stream_closed (struct connect_stream *s)
{
  bool r;
  pthread_mutex_lock (&s->mu);
  r = s->closed || s->ended;
  pthread_mutex_unlock (&s->mu);
  return r;
}

long
connect_stream_deadline_ms (struct connect_stream *s)
{
  unsigned long long now = now_ns ();
  if (s->deadline == 0)
    return -1;
  return now >= s->deadline ? 0 : (long)((s->deadline - now) / 1000000ULL);
}

bool
connect_stream_wait_drained (struct connect_stream *s, size_t max, long timeout_ms)
{
  unsigned long long until
      = timeout_ms < 0 ? 0 : now_ns () + (unsigned long long)timeout_ms * 1000000ULL;
  bool ok = true;

  pthread_mutex_lock (&s->mu);
  while (ok && s->len > max && !s->closed && !s->ended)
    {
      struct timespec ts = { (time_t)(until / 1000000000ULL), (long)(until % 1000000000ULL) };
      if (until == 0)
        pthread_cond_wait (&s->cv, &s->mu);
      else if (pthread_cond_timedwait (&s->cv, &s->mu, &ts) == ETIMEDOUT)
        ok = s->len <= max;
    }
  pthread_mutex_unlock (&s->mu);
  return ok;
}

void
connect_stream_ref (struct connect_stream *s)
{
  pthread_mutex_lock (&s->mu);
  s->refs++;
  pthread_mutex_unlock (&s->mu);
}

void
connect_stream_unref (struct connect_stream *s)
{
  int refs;
  pthread_mutex_lock (&s->mu);
  refs = --s->refs;
  pthread_mutex_unlock (&s->mu);
  if (refs > 0)
    return;
  json_decref (s->keepalive);
  free (s->buf);
  pthread_cond_destroy (&s->cv);
  pthread_mutex_destroy (&s->mu);
  free (s);
}

/* Wait for bytes, a keepalive tick or the deadline.  */
static void
wait_for_data (struct connect_stream *s)
{
  unsigned long long tick = now_ns () + (unsigned long long)s->keepalive_s * 1000000000ULL;

  /* A stream that never idles must still end at its deadline.  */
  if (s->deadline && !s->ended && now_ns () >= s->deadline)
    end_locked (s, json_pack ("{s:s, s:s}", "code", "deadline_exceeded", "message",
                              "context deadline exceeded"));
  while (s->len == 0 && !s->ended)
    {
      unsigned long long until = tick;
      struct timespec ts;
      if (s->deadline && s->deadline < until)
        until = s->deadline;
      ts.tv_sec = (time_t)(until / 1000000000ULL);
      ts.tv_nsec = (long)(until % 1000000000ULL);
      if (pthread_cond_timedwait (&s->cv, &s->mu, &ts) != ETIMEDOUT)
        continue;
      if (s->deadline && now_ns () >= s->deadline)
        end_locked (s, json_pack ("{s:s, s:s}", "code", "deadline_exceeded", "message",
                                  "context deadline exceeded"));
      else if (now_ns () >= tick && s->keepalive)
        {
          append_envelope (s, 0, s->keepalive);
          tick = now_ns () + (unsigned long long)s->keepalive_s * 1000000000ULL;
        }
    }
}

static ssize_t
stream_read (void *cls, uint64_t pos, char *out, size_t max)
{
  struct connect_stream *s = cls;
  size_t n;

  pthread_mutex_lock (&s->mu);
  wait_for_data (s);
  if (s->len == 0)
    {
      pthread_mutex_unlock (&s->mu);
      return MHD_CONTENT_READER_END_OF_STREAM;
    }
  n = s->len < max ? s->len : max;
  memcpy (out, s->buf, n);
  memmove (s->buf, s->buf + n, s->len - n);
  s->len -= n;
  pthread_cond_broadcast (&s->cv); /* producers in connect_stream_wait_drained */
  pthread_mutex_unlock (&s->mu);
  return (ssize_t)n;
}

static void
stream_free (void *cls)
{
  struct connect_stream *s = cls;
  pthread_mutex_lock (&s->mu);
  s->closed = true;
  pthread_cond_broadcast (&s->cv);
  pthread_mutex_unlock (&s->mu);
  connect_stream_unref (s);
}

enum MHD_Result
connect_stream_respond (struct connect_stream *s)
{
  struct MHD_Response *r;
  enum MHD_Result ret;

  connect_stream_ref (s);
  r = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, s, stream_free);
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/connect+json");
  http_add_cors (r);
  ret = MHD_queue_response (s->conn, 200, r);
  MHD_destroy_response (r);
  return ret;
}

/* Requests.  */

static json_t *
request_fail (struct http_req *req, bool streaming, const char *message)
{
  if (streaming)
    {
      struct connect_stream *s = connect_stream_new (req, NULL);
      connect_stream_end (s, "invalid_argument", "%s", message);
      connect_stream_respond (s);
      connect_stream_unref (s);
    }
  else
    connect_error (req->conn, "invalid_argument", "%s", message);
  return NULL;
}

json_t *
connect_request (struct http_req *req, bool streaming)
{
  const char *body = req->body ? req->body : "";
  size_t len = req->body_len;
  json_error_t jerr;
  json_t *v;

  if (streaming)
    {
      uint32_t be;
      if (len < 5)
        return request_fail (req, true, "missing request envelope");
      memcpy (&be, body + 1, 4);
      if (body[0] != 0 || ntohl (be) != len - 5)
        return request_fail (req, true, "malformed or compressed request envelope");
      body += 5;
      len -= 5;
    }
  if (len == 0)
    return json_object ();
  v = json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (v == NULL || !json_is_object (v))
    {
      json_decref (v);
      return request_fail (req, streaming, "invalid JSON request message");
    }
  return v;
}

/* proto3-JSON helpers.  */

char *
connect_b64_encode (const void *data, size_t len)
{
  char *out = xmalloc (4 * ((len + 2) / 3) + 1);
  EVP_EncodeBlock ((unsigned char *)out, data, (int)len);
  return out;
}

unsigned char *
connect_b64_decode (const char *text, size_t *ret_len)
{
  size_t n = strlen (text), padded;
  cleanup_free char *std = NULL;
  unsigned char *out;
  int got;

  while (n > 0 && text[n - 1] == '=')
    n--;
  padded = (n + 3) / 4 * 4;
  std = xmalloc (padded + 1);
  for (size_t i = 0; i < n; i++)
    std[i] = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];
  for (size_t i = n; i < padded; i++)
    std[i] = '=';
  std[padded] = '\0';
  if (n % 4 == 1)
    return NULL;
  out = xmalloc (padded / 4 * 3 + 1);
  got = EVP_DecodeBlock (out, (unsigned char *)std, (int)padded);
  if (got < 0)
    {
      free (out);
      return NULL;
    }
  *ret_len = (size_t)got - (padded - n);
  return out;
}

char *
connect_timestamp (long long sec, long nsec)
{
  struct tm tm;
  time_t t = (time_t)sec;
  char *out;

  gmtime_r (&t, &tm);
  xasprintf (&out, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nsec);
  return out;
}

json_t *
connect_get (json_t *obj, const char *camel, const char *snake)
{
  json_t *v = json_object_get (obj, camel);
  if (v == NULL && snake)
    v = json_object_get (obj, snake);
  return v;
}

bool
connect_get_int (json_t *obj, const char *camel, const char *snake, long long *ret)
{
  json_t *v = connect_get (obj, camel, snake);
  char *end;

  if (v == NULL || json_is_null (v))
    return true;
  if (json_is_integer (v))
    {
      *ret = json_integer_value (v);
      return true;
    }
  if (!json_is_string (v))
    return false;
  errno = 0;
  *ret = strtoll (json_string_value (v), &end, 10);
  return errno == 0 && *end == '\0' && end != json_string_value (v);
}
