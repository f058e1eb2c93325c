/* The client layer: configuration, requests through libcurl, and the
   translation of every failure into a message and an exit status.  */
#define _GNU_SOURCE
#include "client.h"
#include "libhutch/util.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>

#define USER_AGENT "hutch-cli/0.1.0"
#define CONNECT_TIMEOUT_S 10L
/* Bounds a plain request; streams and uploads last as long as they need.  */
#define REQUEST_TIMEOUT_S 120L

bool
client_option (struct client *c, int opt, const char *arg)
{
  switch (opt)
    {
    case CLIENT_OPT_URL:
      c->url_option = arg;
      return true;
    case CLIENT_OPT_KEY:
      c->key_option = arg;
      return true;
    case CLIENT_OPT_JSON:
      c->json = true;
      return true;
    default:
      return false;
    }
}

static const char *
env_first (const char *a, const char *b)
{
  const char *v = getenv (a);
  if (v && *v)
    return v;
  v = getenv (b);
  return v && *v ? v : NULL;
}

static int
resolve_url (struct client *c)
{
  const char *url = c->url_option ? c->url_option : env_first ("HUTCH_API_URL", "E2B_API_URL");
  size_t len;

  if (url == NULL)
    url = CLIENT_DEFAULT_URL;
  if (strncmp (url, "http://", 7) != 0 && strncmp (url, "https://", 8) != 0)
    {
      fprintf (stderr, "hutch: the API URL must start with http:// or https://, got `%s`\n", url);
      return CLIENT_EXIT_USAGE;
    }
  len = strlen (url);
  while (len > 0 && url[len - 1] == '/')
    len--;
  c->api_url = xstrndup (url, len);
  return 0;
}

int
client_open (struct client *c)
{
  int status = resolve_url (c);

  if (status)
    return status;
  c->api_key = c->key_option ? c->key_option : env_first ("HUTCH_API_KEY", "E2B_API_KEY");
  if (c->api_key == NULL)
    {
      fprintf (stderr, "hutch: no API key: pass --api-key KEY or set HUTCH_API_KEY (or "
                       "E2B_API_KEY) to the key hutchd printed at its first start (it keeps it "
                       "in DATA_DIR/api-key, /var/lib/hutch/api-key by default)\n");
      return CLIENT_EXIT_AUTH;
    }
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK || (c->curl = curl_easy_init ()) == NULL)
    {
      fprintf (stderr, "hutch: cannot initialise libcurl\n");
      return CLIENT_EXIT_FAILURE;
    }
  return 0;
}

void
client_close (struct client *c)
{
  if (c->curl)
    {
      curl_easy_cleanup (c->curl);
      curl_global_cleanup ();
    }
  c->curl = NULL;
  free (c->api_url);
  c->api_url = NULL;
}

void
client_response_release (struct client_response *r)
{
  free (r->body);
  free (r->next_token);
  r->body = r->next_token = NULL;
  r->len = 0;
}

/* ---- one transfer ---- */

struct transfer
{
  const struct client_request *rq;
  struct client_response *resp;
  CURL *h;
  int stopped;    /* the exit status a sink or tick stopped the transfer with */
  bool checked;   /* the status was looked at (first body byte) */
  bool streaming; /* a 2xx body going to the sink */
  bool too_large;
};

static void
keep_body (struct transfer *t, const char *data, size_t len)
{
  struct client_response *r = t->resp;
  size_t max = t->rq->sink ? CLIENT_MAX_ERROR_BODY : CLIENT_MAX_BODY;

  /* Error bodies are only read for their message: a cut one will do.  */
  if (r->len + len > max)
    {
      t->too_large = t->rq->sink == NULL;
      len = max - r->len;
    }
  r->body = xrealloc (r->body, r->len + len + 1);
  memcpy (r->body + r->len, data, len);
  r->len += len;
  r->body[r->len] = '\0';
}

static size_t
on_body (char *data, size_t size, size_t n, void *arg)
{
  struct transfer *t = arg;
  size_t len = size * n;

  if (!t->checked)
    {
      curl_easy_getinfo (t->h, CURLINFO_RESPONSE_CODE, &t->resp->status);
      t->streaming = t->rq->sink && t->resp->status / 100 == 2;
      t->checked = true;
    }
  if (t->streaming)
    {
      t->stopped = t->rq->sink (t->rq->sink_arg, data, len);
      return t->stopped ? 0 : len;
    }
  keep_body (t, data, len);
  return t->too_large ? 0 : len;
}

static size_t
on_header (char *line, size_t size, size_t n, void *arg)
{
  static const char name[] = "x-next-token:";
  struct transfer *t = arg;
  size_t len = size * n;

  if (len > sizeof name - 1 && strncasecmp (line, name, sizeof name - 1) == 0)
    {
      const char *v = line + sizeof name - 1;
      const char *end = line + len;
      while (v < end && (*v == ' ' || *v == '\t'))
        v++;
      while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
      free (t->resp->next_token);
      t->resp->next_token = end > v ? xstrndup (v, (size_t)(end - v)) : NULL;
    }
  return len;
}

static size_t
on_upload (char *buf, size_t size, size_t n, void *arg)
{
  const struct client_request *rq = arg;
  ssize_t got = TEMP_FAILURE_RETRY (read (rq->upload_fd, buf, size * n));
  return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

static int
on_progress (void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
  struct transfer *t = arg;
  t->stopped = t->rq->tick (t->rq->tick_arg);
  return t->stopped != 0;
}

static void
set_body (CURL *h, const struct client_request *rq, struct curl_slist **headers)
{
  if (rq->upload)
    {
      curl_easy_setopt (h, CURLOPT_POST, 1L);
      curl_easy_setopt (h, CURLOPT_READFUNCTION, on_upload);
      curl_easy_setopt (h, CURLOPT_READDATA, rq);
      curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->upload_len);
      if (rq->upload_len < 0)
        *headers = curl_slist_append (*headers, "Transfer-Encoding: chunked");
    }
  else if (rq->body)
    {
      curl_easy_setopt (h, CURLOPT_POSTFIELDS, rq->body);
      curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    }
  if (strcmp (rq->method, "POST") != 0)
    curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, rq->method);
}

static struct curl_slist *
request_headers (const struct client_request *rq)
{
  struct curl_slist *h = NULL;

  /* hutchd answers at once; a 100-continue round trip only adds latency.  */
  h = curl_slist_append (h, "Expect:");
  for (struct curl_slist *e = rq->headers; e; e = e->next)
    h = curl_slist_append (h, e->data);
  return h;
}

static void
setup (CURL *h, const char *url, struct transfer *t, char *errbuf)
{
  curl_easy_setopt (h, CURLOPT_URL, url);
  curl_easy_setopt (h, CURLOPT_USERAGENT, USER_AGENT);
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
  curl_easy_setopt (h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, t);
  curl_easy_setopt (h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (h, CURLOPT_HEADERDATA, t);
  if (t->rq->sink == NULL && !t->rq->upload)
    curl_easy_setopt (h, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
  if (t->rq->tick)
    {
      curl_easy_setopt (h, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt (h, CURLOPT_XFERINFOFUNCTION, on_progress);
      curl_easy_setopt (h, CURLOPT_XFERINFODATA, t);
    }
}

static int
transfer_failed (struct client *c, const struct transfer *t, CURLcode res, const char *errbuf)
{
  const char *why = *errbuf ? errbuf : curl_easy_strerror (res);

  if (t->stopped)
    return t->stopped;
  if (t->too_large)
    {
      fprintf (stderr, "hutch: %s %s: the answer is larger than %u bytes\n", t->rq->method,
               t->rq->path, CLIENT_MAX_BODY);
      return CLIENT_EXIT_FAILURE;
    }
  if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST
      || res == CURLE_COULDNT_RESOLVE_PROXY
      || (res == CURLE_OPERATION_TIMEDOUT && t->resp->status == 0))
    {
      fprintf (stderr,
               "hutch: cannot reach hutchd at %s: %s. Is it running there? Set HUTCH_API_URL "
               "(or E2B_API_URL), or pass --url, to its address.\n",
               c->api_url, why);
      return CLIENT_EXIT_UNREACHABLE;
    }
  if (t->resp->status != 0)
    fprintf (stderr, "hutch: %s %s%s: the connection broke in the middle of the answer (%s)\n",
             t->rq->method, c->api_url, t->rq->path, why);
  else
    fprintf (stderr, "hutch: %s %s%s: %s\n", t->rq->method, c->api_url, t->rq->path, why);
  return CLIENT_EXIT_FAILURE;
}

int
client_perform (struct client *c, const struct client_request *rq, struct client_response *ret)
{
  /* A tick may make a request (exec forwards a signal) while the shared
     handle is busy: that one gets a handle of its own.  */
  CURL *h = c->busy ? curl_easy_init () : c->curl;
  struct transfer t = { .rq = rq, .resp = ret, .h = h };
  struct curl_slist *headers;
  cleanup_free char *url = NULL;
  char errbuf[CURL_ERROR_SIZE] = "";
  bool own = h != c->curl;
  CURLcode res;

  memset (ret, 0, sizeof *ret);
  if (h == NULL)
    {
      fprintf (stderr, "hutch: cannot initialise libcurl\n");
      return CLIENT_EXIT_FAILURE;
    }
  curl_easy_reset (h);
  headers = request_headers (rq);
  xasprintf (&url, "%s%s", c->api_url, rq->path);
  setup (h, url, &t, errbuf);
  set_body (h, rq, &headers);
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, headers);
  if (!own)
    c->busy = true;
  res = curl_easy_perform (h);
  if (!own)
    c->busy = false;
  if (ret->status == 0)
    curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &ret->status);
  curl_slist_free_all (headers);
  if (own)
    curl_easy_cleanup (h);
  if (res != CURLE_OK || t.stopped)
    {
      ret->broken = ret->status != 0 && !t.stopped && !t.too_large;
      return transfer_failed (c, &t, res, errbuf);
    }
  return 0;
}

/* ---- errors ---- */

/* The message of an error body: its JSON "message", else its text, else
   the status.  Returns a string to free.  */
static char *
error_message (const struct client_response *r)
{
  json_t *body = r->body ? json_loads (r->body, JSON_DECODE_ANY, NULL) : NULL;
  const char *msg = json_string_value (json_object_get (body, "message"));
  char *ret;

  if (msg && *msg)
    ret = xstrdup (msg);
  else if (r->body && r->len > 0)
    {
      size_t len = r->len;
      while (len > 0 && (r->body[len - 1] == '\n' || r->body[len - 1] == '\r'))
        len--;
      ret = xstrndup (r->body, len > 300 ? 300 : len);
    }
  else
    xasprintf (&ret, "HTTP %ld", r->status);
  json_decref (body);
  return ret;
}

static int
api_error (const char *method, const char *path, const char *sandbox_id,
           const struct client_response *r)
{
  cleanup_free char *msg = error_message (r);

  switch (r->status)
    {
    case 401:
      fprintf (stderr, "hutch: authentication failed (401): %s\n", msg);
      return CLIENT_EXIT_AUTH;
    case 404:
      /* The server's message would only repeat it.  */
      if (sandbox_id)
        fprintf (stderr, "hutch: sandbox `%s` not found\n", sandbox_id);
      else
        fprintf (stderr, "hutch: not found (404): %s\n", msg);
      return CLIENT_EXIT_NOT_FOUND;
    case 400:
      fprintf (stderr, "hutch: invalid request (400): %s\n", msg);
      return CLIENT_EXIT_USAGE;
    default:
      fprintf (stderr, "hutch: %s %s: %ld: %s\n", method, path, r->status, msg);
      return CLIENT_EXIT_FAILURE;
    }
}

static int
decode_json (const struct client_response *r, const char *what, json_t **ret)
{
  json_error_t jerr;

  if (r->len == 0)
    {
      *ret = json_null ();
      return 0;
    }
  *ret = json_loadb (r->body, r->len, JSON_DECODE_ANY, &jerr);
  if (*ret == NULL)
    {
      fprintf (stderr, "hutch: %s: the answer is not JSON (%s)\n", what, jerr.text);
      return CLIENT_EXIT_FAILURE;
    }
  return 0;
}

int
client_api (struct client *c, const char *method, const char *path, json_t *body,
            const char *sandbox_id, json_t **ret_json, char **ret_next)
{
  cleanup_free char *data = body ? json_dumps (body, JSON_COMPACT) : NULL;
  cleanup_free char *key = NULL;
  struct client_request rq = { .method = method, .path = path };
  struct client_response r;
  int status;

  xasprintf (&key, "X-API-Key: %s", c->api_key);
  rq.headers = curl_slist_append (NULL, key);
  if (data)
    {
      rq.headers = curl_slist_append (rq.headers, "Content-Type: application/json");
      rq.body = data;
      rq.body_len = strlen (data);
    }
  status = client_perform (c, &rq, &r);
  curl_slist_free_all (rq.headers);
  if (status == 0 && r.status / 100 != 2)
    status = api_error (method, path, sandbox_id, &r);
  if (status == 0 && ret_json)
    status = decode_json (&r, path, ret_json);
  if (status == 0 && ret_next)
    *ret_next = steal_pointer (&r.next_token);
  client_response_release (&r);
  return status;
}

/* ---- sandboxes ---- */

void
sandbox_target_release (struct sandbox_target *t)
{
  free (t->id);
  free (t->escaped_id);
  free (t->token);
  memset (t, 0, sizeof *t);
}

int
client_sandbox (struct client *c, const char *id, struct sandbox_target *ret)
{
  cleanup_free char *path = NULL;
  json_t *detail = NULL;
  const char *token, *state;
  int status;

  memset (ret, 0, sizeof *ret);
  ret->id = xstrdup (id);
  ret->escaped_id = client_escape (id);
  xasprintf (&path, "/sandboxes/%s", ret->escaped_id);
  status = client_api (c, "GET", path, NULL, id, &detail, NULL);
  if (status)
    return status;
  token = json_string_value (json_object_get (detail, "envdAccessToken"));
  state = json_string_value (json_object_get (detail, "state"));
  ret->token = token ? xstrdup (token) : NULL;
  if (state && strcmp (state, "paused") == 0)
    {
      fprintf (stderr, "hutch: sandbox `%s` is paused: resume it first\n", id);
      status = CLIENT_EXIT_FAILURE;
    }
  json_decref (detail);
  return status;
}

static struct curl_slist *add_header (struct curl_slist *list, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

int
client_check_gone (struct client *c, const struct sandbox_target *t,
                   const struct client_response *r, int status)
{
  cleanup_free char *path = NULL;
  int gone;

  if (!r->broken)
    return status;
  /* A sandbox killed under a stream drops the connection: ask the control
     plane whether it is still there, as the SDKs do.  */
  xasprintf (&path, "/sandboxes/%s", t->escaped_id);
  gone = client_api (c, "GET", path, NULL, t->id, NULL, NULL);
  return gone == CLIENT_EXIT_NOT_FOUND ? gone : status;
}

static struct curl_slist *
add_header (struct curl_slist *list, const char *fmt, ...)
{
  cleanup_free char *line = NULL;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&line, fmt, ap) < 0)
    abort ();
  va_end (ap);
  return curl_slist_append (list, line);
}

/* Standard base64 of "USER:" (Basic auth with an empty password).  */
static char *
basic_auth (const char *user)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  cleanup_free char *plain = NULL;
  size_t len = (size_t)xasprintf (&plain, "%s:", user);
  char *out = xmalloc (len / 3 * 4 + 5), *o = out;

  for (size_t i = 0; i < len; i += 3)
    {
      unsigned v = (unsigned char)plain[i] << 16;
      v |= i + 1 < len ? (unsigned char)plain[i + 1] << 8 : 0;
      v |= i + 2 < len ? (unsigned char)plain[i + 2] : 0;
      *o++ = alphabet[v >> 18 & 63];
      *o++ = alphabet[v >> 12 & 63];
      *o++ = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
      *o++ = i + 2 < len ? alphabet[v & 63] : '=';
    }
  *o = '\0';
  return out;
}

struct curl_slist *
client_sandbox_headers (const struct sandbox_target *t, int port, const char *user)
{
  struct curl_slist *h = NULL;

  h = add_header (h, "E2b-Sandbox-Id: %s", t->id);
  h = add_header (h, "E2b-Sandbox-Port: %d", port);
  if (t->token)
    h = add_header (h, "X-Access-Token: %s", t->token);
  if (user)
    {
      cleanup_free char *auth = basic_auth (user);
      h = add_header (h, "Authorization: Basic %s", auth);
    }
  return h;
}

/* The proxy's 502: {"sandboxId", "message", "port"?, "code": 502}.  */
static int
proxy_error (const struct sandbox_target *t, int port, json_t *body)
{
  const char *msg = json_string_value (json_object_get (body, "message"));

  if (msg && strstr (msg, "port is not open"))
    {
      fprintf (stderr, "hutch: sandbox `%s` is running but nothing listens on port %d%s\n", t->id,
               port,
               port == INTERP_PORT ? " (the code interpreter is not running)"
                                   : " (its agent is not running)");
      return CLIENT_EXIT_FAILURE;
    }
  fprintf (stderr, "hutch: sandbox `%s` was not found: it was killed or its timeout passed\n",
           t->id);
  return CLIENT_EXIT_NOT_FOUND;
}

static int
status_error (const char *what, long status, const char *msg)
{
  fprintf (stderr, "hutch: %s: %s\n", what, msg);
  switch (status)
    {
    case 400:
    case 422:
      return CLIENT_EXIT_USAGE;
    case 401:
      return CLIENT_EXIT_AUTH;
    case 404:
      return CLIENT_EXIT_NOT_FOUND;
    case 504:
      return CLIENT_EXIT_TIMEOUT;
    default:
      return CLIENT_EXIT_FAILURE;
    }
}

int
client_sandbox_error (const struct sandbox_target *t, int port, const char *what,
                      const struct client_response *r)
{
  json_t *body = r->body ? json_loads (r->body, 0, NULL) : NULL;
  const char *code = json_string_value (json_object_get (body, "code"));
  cleanup_free char *msg = error_message (r);
  int status;

  if (r->status == 502 && json_object_get (body, "sandboxId"))
    status = proxy_error (t, port, body);
  else if (code)
    status = client_connect_error (what, code, msg);
  else
    status = status_error (what, r->status, msg);
  json_decref (body);
  return status;
}

int
client_connect_error (const char *what, const char *code, const char *message)
{
  static const struct
  {
    const char *code;
    int status;
  } map[] = {
    { "not_found", CLIENT_EXIT_NOT_FOUND },
    { "unauthenticated", CLIENT_EXIT_AUTH },
    { "invalid_argument", CLIENT_EXIT_USAGE },
    { "deadline_exceeded", CLIENT_EXIT_TIMEOUT },
  };

  fprintf (stderr, "hutch: %s: %s (%s)\n", what, message && *message ? message : "failed", code);
  for (size_t i = 0; i < ARRAY_SIZE (map); i++)
    if (strcmp (code, map[i].code) == 0)
      return map[i].status;
  return CLIENT_EXIT_FAILURE;
}

int
client_envd_unary (struct client *c, const struct sandbox_target *t, const char *path,
                   const char *user, json_t *msg, json_t **ret_json)
{
  cleanup_free char *data = json_dumps (msg, JSON_COMPACT);
  struct client_request rq = { .method = "POST", .path = path };
  struct client_response r;
  int status;

  rq.headers = client_sandbox_headers (t, ENVD_PORT, user);
  rq.headers = curl_slist_append (rq.headers, "Content-Type: application/json");
  rq.headers = curl_slist_append (rq.headers, "Connect-Protocol-Version: 1");
  rq.body = data;
  rq.body_len = strlen (data);
  status = client_perform (c, &rq, &r);
  curl_slist_free_all (rq.headers);
  if (status == 0 && r.status != 200)
    status = client_sandbox_error (t, ENVD_PORT, path + 1, &r);
  if (status == 0)
    status = decode_json (&r, path, ret_json);
  client_response_release (&r);
  return status;
}

/* ---- arguments ---- */

char *
client_escape (const char *s)
{
  char *e = curl_easy_escape (NULL, s, 0);
  char *ret;

  if (e == NULL)
    abort ();
  ret = xstrdup (e);
  curl_free (e);
  return ret;
}

int
client_add_pair (json_t *obj, const char *option, const char *kv)
{
  const char *eq = strchr (kv, '=');
  cleanup_free char *key = NULL;

  if (eq == NULL || eq == kv)
    {
      fprintf (stderr, "hutch: %s: expected KEY=VALUE, got `%s`\n", option, kv);
      return -1;
    }
  key = xstrndup (kv, (size_t)(eq - kv));
  if (json_object_set_new (obj, key, json_string (eq + 1)) < 0)
    {
      fprintf (stderr, "hutch: %s: `%s` is not valid UTF-8\n", option, kv);
      return -1;
    }
  return 0;
}

int
client_seconds (const char *option, const char *value, unsigned long *ret)
{
  if (parse_ulong (value, 86400UL * 365, ret) < 0)
    {
      fprintf (stderr, "hutch: %s: expected a number of seconds, got `%s`\n", option, value);
      return -1;
    }
  return 0;
}
