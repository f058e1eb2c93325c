/* The sandboxes REST API, in every generation the E2B SDKs use.  */
#define _GNU_SOURCE
#include "api.h"
#include "libhutch/log.h"
#include "libhutch/util.h"

#include <stdio.h>
#include <string.h>

#define LIST_LIMIT 100

static const struct hutchd_config *cfg;

void
api_init (const struct hutchd_config *config)
{
  cfg = config;
}

static enum MHD_Result
not_found_sandbox (struct MHD_Connection *conn, const char *id)
{
  return http_send_error (conn, MHD_HTTP_NOT_FOUND,
                          "Sandbox \"%s\" doesn't exist or you don't have access to it", id);
}

/* A timeout field: absent → DEF; else an integer in [MIN, max].  Returns
   false after answering 400.  */
static bool
get_timeout (struct http_req *req, json_t *body, const char *key, long long def, long long min,
             long long *ret)
{
  json_t *v = json_object_get (body, key);

  *ret = def;
  if (v == NULL || json_is_null (v))
    return true;
  if (!json_is_integer (v) || json_integer_value (v) < min
      || json_integer_value (v) > cfg->max_timeout_s)
    {
      http_send_error (req->conn, MHD_HTTP_BAD_REQUEST,
                       "`%s` must be an integer number of seconds from %lld to %lld", key, min,
                       cfg->max_timeout_s);
      return false;
    }
  *ret = json_integer_value (v);
  return true;
}

/* Optional object whose values are all strings; env names must be usable.  */
static bool
get_string_map (struct http_req *req, json_t *body, const char *key, bool env, json_t **ret)
{
  json_t *v = json_object_get (body, key), *value;
  const char *k;

  *ret = NULL;
  if (v == NULL || json_is_null (v))
    return true;
  if (!json_is_object (v))
    goto bad;
  json_object_foreach (v, k, value)
  {
    if (!json_is_string (value) || *k == '\0' || strlen (k) > 1024
        || (env && strchr (k, '=') != NULL))
      goto bad;
  }
  *ret = v;
  return true;
bad:
  http_send_error (req->conn, MHD_HTTP_BAD_REQUEST, "`%s` must be an object of strings%s", key,
                   env ? " with names without `=`" : "");
  return false;
}

static enum MHD_Result
create (struct http_req *req, long long default_timeout, long long min_timeout, bool v1)
{
  cleanup_error hutch_error_t err = NULL;
  json_t *body = http_body_json (req), *metadata, *env;
  const char *template_id;
  struct sandbox_spec spec = { 0 };
  struct sbx *s;
  enum MHD_Result r;

  if (body == NULL)
    return MHD_YES;
  template_id = json_string_value (json_object_get (body, "templateID"));
  if (template_id == NULL || *template_id == '\0' || strlen (template_id) > 63)
    r = http_send_error (req->conn, MHD_HTTP_BAD_REQUEST, "`templateID` (a string) is required");
  else if (!get_timeout (req, body, "timeout", default_timeout, min_timeout, &spec.timeout_s)
           || !get_string_map (req, body, "metadata", false, &metadata)
           || !get_string_map (req, body, "envVars", true, &env))
    r = MHD_YES;
  else
    {
      spec = (struct sandbox_spec){ .template_id = template_id,
                                    .timeout_s = spec.timeout_s,
                                    .metadata = metadata,
                                    .env_vars = env,
                                    .cpu_count = cfg->cpu_count,
                                    .memory_mb = cfg->memory_mb,
                                    .disk_mb = cfg->disk_mb,
                                    .insecure
                                    = v1 && json_is_false (json_object_get (body, "secure")) };
      if (registry_create (&spec, &s, &err) == 0)
        {
          r = http_send_json (req->conn, MHD_HTTP_CREATED, api_sandbox_json (s));
          sbx_unref (s);
        }
      else if (err->status == ENOENT)
        r = http_send_error (req->conn, MHD_HTTP_BAD_REQUEST, "%s", err->msg);
      else if (err->status == EAGAIN)
        r = http_send_error (req->conn, MHD_HTTP_TOO_MANY_REQUESTS, "%s", err->msg);
      else
        {
          log_error ("create sandbox: %s", err->msg);
          r = http_send_error (req->conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                               "could not create the sandbox: %s", err->msg);
        }
    }
  json_decref (body);
  return r;
}

static enum MHD_Result
create_v1 (struct http_req *req)
{
  return create (req, 15, 0, true);
}

static enum MHD_Result
create_v2 (struct http_req *req)
{
  return create (req, cfg->default_timeout_s, 1, false);
}

/* Connect: a running sandbox has its end extended (200); a paused one is
   resumed (201).  */
static enum MHD_Result
connect_sandbox (struct http_req *req, bool timeout_required)
{
  cleanup_error hutch_error_t err = NULL;
  json_t *body = http_body_json (req);
  long long timeout;
  struct sbx *s;
  unsigned status = MHD_HTTP_OK;
  enum MHD_Result r;

  if (body == NULL)
    return MHD_YES;
  if (timeout_required && json_object_get (body, "timeout") == NULL)
    {
      json_decref (body);
      return http_send_error (req->conn, MHD_HTTP_BAD_REQUEST, "`timeout` is required");
    }
  if (!get_timeout (req, body, "timeout", cfg->default_timeout_s, 0, &timeout))
    {
      json_decref (body);
      return MHD_YES;
    }
  json_decref (body);
  s = registry_get (req->params[0]);
  if (s == NULL)
    return not_found_sandbox (req->conn, req->params[0]);
  if (s->paused)
    {
      if (registry_pause (s->id, false, &err) < 0)
        log_error ("resume %s: %s", s->id, err->msg);
      status = MHD_HTTP_CREATED;
      registry_set_timeout (s->id, timeout);
    }
  else
    registry_extend (s->id, timeout);
  r = http_send_json (req->conn, status, api_sandbox_json (s));
  sbx_unref (s);
  return r;
}

static enum MHD_Result
connect_v1 (struct http_req *req)
{
  return connect_sandbox (req, true);
}

static enum MHD_Result
connect_v2 (struct http_req *req)
{
  return connect_sandbox (req, false);
}

static enum MHD_Result
get_sandbox (struct http_req *req)
{
  struct sbx *s = registry_get (req->params[0]);
  enum MHD_Result r;

  if (s == NULL)
    return not_found_sandbox (req->conn, req->params[0]);
  r = http_send_json (req->conn, MHD_HTTP_OK, api_sandbox_detail_json (s));
  sbx_unref (s);
  return r;
}

static enum MHD_Result
kill_sandbox (struct http_req *req)
{
  if (registry_kill (req->params[0]) < 0)
    return not_found_sandbox (req->conn, req->params[0]);
  return http_send_empty (req->conn, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result
set_timeout (struct http_req *req)
{
  json_t *body = http_body_json (req);
  long long timeout;
  bool ok;

  if (body == NULL)
    return MHD_YES;
  if (!json_is_integer (json_object_get (body, "timeout")))
    {
      json_decref (body);
      return http_send_error (req->conn, MHD_HTTP_BAD_REQUEST,
                              "`timeout` (an integer number of seconds) is required");
    }
  ok = get_timeout (req, body, "timeout", 0, 0, &timeout);
  json_decref (body);
  if (!ok)
    return MHD_YES;
  if (registry_set_timeout (req->params[0], timeout) < 0)
    return not_found_sandbox (req->conn, req->params[0]);
  return http_send_empty (req->conn, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result
refresh (struct http_req *req)
{
  json_t *body = http_body_json (req), *d;
  long long duration = 0;

  if (body == NULL)
    return MHD_YES;
  d = json_object_get (body, "duration");
  if (d && (!json_is_integer (d) || json_integer_value (d) < 0 || json_integer_value (d) > 3600))
    {
      json_decref (body);
      return http_send_error (req->conn, MHD_HTTP_BAD_REQUEST,
                              "`duration` must be an integer from 0 to 3600");
    }
  if (d)
    duration = json_integer_value (d);
  json_decref (body);
  if (registry_extend (req->params[0], duration) < 0)
    return not_found_sandbox (req->conn, req->params[0]);
  return http_send_empty (req->conn, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result
pause_sandbox (struct http_req *req)
{
  cleanup_error hutch_error_t err = NULL;
  struct sbx *s = registry_get (req->params[0]);
  enum MHD_Result r;

  if (s == NULL)
    return not_found_sandbox (req->conn, req->params[0]);
  if (s->paused)
    r = http_send_error (req->conn, MHD_HTTP_CONFLICT, "sandbox \"%s\" is already paused", s->id);
  else if (registry_pause (s->id, true, &err) < 0)
    r = http_send_error (req->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "pause: %s", err->msg);
  else
    r = http_send_empty (req->conn, MHD_HTTP_NO_CONTENT);
  sbx_unref (s);
  return r;
}

/* The deprecated resume: 409 when the sandbox is not paused.  */
static enum MHD_Result
resume_sandbox (struct http_req *req)
{
  struct sbx *s = registry_get (req->params[0]);
  bool paused = s && s->paused;

  sbx_unref (s);
  if (s == NULL)
    return not_found_sandbox (req->conn, req->params[0]);
  if (!paused)
    return http_send_error (req->conn, MHD_HTTP_CONFLICT, "sandbox \"%s\" is already running",
                            req->params[0]);
  return connect_sandbox (req, false);
}

static enum MHD_Result
metrics (struct http_req *req)
{
  struct sbx *s = registry_get (req->params[0]);
  json_t *list;

  if (s == NULL)
    return not_found_sandbox (req->conn, req->params[0]);
  list = json_array ();
  json_array_append_new (list, registry_metric (s));
  sbx_unref (s);
  return http_send_json (req->conn, MHD_HTTP_OK, list);
}

static bool
state_matches (const struct sbx *s, const char *states)
{
  cleanup_free char *copy = NULL;
  char *save = NULL;

  if (states == NULL || *states == '\0')
    return true;
  copy = xstrdup (states);
  for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
    if (strcmp (t, s->paused ? "paused" : "running") == 0)
      return true;
  return false;
}

static bool
parse_list_args (struct http_req *req, unsigned long *limit, unsigned long *offset)
{
  const char *l = http_query (req->conn, "limit");
  const char *token = http_query (req->conn, "nextToken");

  *limit = LIST_LIMIT;
  *offset = 0;
  if (l && (parse_ulong (l, LIST_LIMIT, limit) < 0 || *limit == 0))
    {
      http_send_error (req->conn, MHD_HTTP_BAD_REQUEST, "`limit` must be from 1 to %d", LIST_LIMIT);
      return false;
    }
  if (token && *token && parse_ulong (token, 1UL << 30, offset) < 0)
    {
      http_send_error (req->conn, MHD_HTTP_BAD_REQUEST, "invalid `nextToken`");
      return false;
    }
  return true;
}

static enum MHD_Result
list_sandboxes (struct http_req *req, bool v2)
{
  const char *metadata = http_query (req->conn, "metadata");
  const char *state = v2 ? http_query (req->conn, "state") : "running";
  unsigned long limit, offset, matched = 0;
  json_t *out = json_array ();
  struct MHD_Response *resp;
  size_t n;
  struct sbx **all;
  char *text, next[32] = "";

  if (!parse_list_args (req, &limit, &offset))
    {
      json_decref (out);
      return MHD_YES;
    }
  all = registry_list (&n);
  for (size_t i = 0; i < n; i++)
    {
      if (!state_matches (all[i], state) || (metadata && !api_metadata_matches (all[i], metadata)))
        continue;
      if (matched++ < offset)
        continue;
      if (json_array_size (out) == limit)
        {
          snprintf (next, sizeof next, "%lu", offset + limit);
          break;
        }
      json_array_append_new (out, api_sandbox_detail_json (all[i]));
    }
  registry_list_free (all, n);
  text = json_dumps (out, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref (out);
  resp = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if (*next)
    MHD_add_response_header (resp, "X-Next-Token", next);
  return http_queue (req->conn, MHD_HTTP_OK, resp);
}

static enum MHD_Result
list_v1 (struct http_req *req)
{
  return list_sandboxes (req, false);
}

static enum MHD_Result
list_v2 (struct http_req *req)
{
  return list_sandboxes (req, true);
}

static enum MHD_Result
health (struct http_req *req)
{
  return http_send_json (req->conn, MHD_HTTP_OK, json_pack ("{s:s}", "status", "ok"));
}

static const struct http_route routes[] = {
  { "GET", "/health", health, NULL, 0, true },
  { "POST", "/sandboxes", create_v1, NULL, 0, false },
  { "POST", "/v2/sandboxes", create_v2, NULL, 0, false },
  { "GET", "/sandboxes", list_v1, NULL, 0, false },
  { "GET", "/v2/sandboxes", list_v2, NULL, 0, false },
  { "GET", "/sandboxes/{}", get_sandbox, NULL, 0, false },
  { "DELETE", "/sandboxes/{}", kill_sandbox, NULL, 0, false },
  { "POST", "/sandboxes/{}/connect", connect_v1, NULL, 0, false },
  { "POST", "/v2/sandboxes/{}/connect", connect_v2, NULL, 0, false },
  { "POST", "/sandboxes/{}/timeout", set_timeout, NULL, 0, false },
  { "POST", "/sandboxes/{}/refreshes", refresh, NULL, 0, false },
  { "POST", "/sandboxes/{}/pause", pause_sandbox, NULL, 0, false },
  { "POST", "/sandboxes/{}/resume", resume_sandbox, NULL, 0, false },
  { "GET", "/sandboxes/{}/metrics", metrics, NULL, 0, false },
  { NULL, NULL, NULL, NULL, 0, false },
};

static bool
authorize (struct MHD_Connection *conn, const struct http_route *route)
{
  if (http_secret_equal (http_header (conn, "X-API-Key"), cfg->api_key))
    return true;
  http_send_error (conn, MHD_HTTP_UNAUTHORIZED,
                   "Invalid API key: send the key hutchd printed at its first start (it is in "
                   "DATA_DIR/api-key) in the X-API-Key header, or set E2B_API_KEY for the SDKs");
  return false;
}

const struct http_server api_server = { routes, http_not_found, authorize };
