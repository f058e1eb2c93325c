/* POST /validate (ours, not E2B's): check code without running it, inside
   the context's kernel, so it is judged by the same parser (IPython's
   transformations included) that would run it.
   {"code", "language"?, "context_id"?} -> {"valid": true} or
   {"valid": false, "error": {"name", "value", "line"}}.  */
#define _GNU_SOURCE
#include "contexts.h"
#include "interp-internal.h"
#include "libhutch/util.h"
#include "server-internal.h"

#include <string.h>

#define BUSY_WAIT_NS (30ULL * 1000000000ULL)
#define VALIDATE_TIMEOUT_MS 30000

static const struct field_check validate_fields[] = {
  { "code", true, false },
  { "context_id", false, false },
  { "language", false, false },
  { NULL, false, false },
};

/* The last line the snippet printed, as JSON.  */
static json_t *
parse_verdict (const char *out)
{
  size_t n = strlen (out);
  const char *line;

  while (n > 0 && out[n - 1] == '\n')
    n--;
  line = out + n;
  while (line > out && line[-1] != '\n')
    line--;
  return json_loadb (line, (size_t)(out + n - line), 0, NULL);
}

static enum MHD_Result
run (struct http_req *req, struct interp_ctx *c, const char *code)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_free char *out = NULL, *error = NULL;
  json_t *verdict;

  if (ctx_prepare (c, &err) < 0
      || jupyter_run_hidden (c->client, code, VALIDATE_TIMEOUT_MS, &out, &error, &err) < 0)
    return reply_text (req, 500, "Validation failed: %s", err->msg);
  if (error)
    return reply_text (req, 500, "Validation failed: %s", error);
  verdict = parse_verdict (out);
  if (!json_is_object (verdict))
    {
      json_decref (verdict);
      return reply_text (req, 500, "Validation failed: no verdict from the kernel");
    }
  return http_send_json (req->conn, 200, verdict);
}

enum MHD_Result
validate_handle (struct http_req *req)
{
  cleanup_json_t json_t *body = request_object (req);
  cleanup_free char *snippet = NULL;
  enum MHD_Result ret = MHD_YES;
  struct interp_ctx *c;

  if (body == NULL || !request_check (req, body, validate_fields))
    return MHD_YES;
  c = request_context (req, body, &ret);
  if (c == NULL)
    return ret;
  snippet = snippet_validate (c->language, json_string_value (json_object_get (body, "code")));
  if (snippet == NULL)
    ret = reply_text (req, 400, "Validation is not supported for language %s", c->language);
  else
    switch (ctx_acquire (c, now_ns () + BUSY_WAIT_NS))
      {
      case CTX_ACQUIRED:
        ret = run (req, c, snippet);
        ctx_release (c);
        break;
      case CTX_TIMEOUT:
        ret = reply_text (req, 503, "Context %s is busy", c->id);
        break;
      case CTX_GONE:
        ret = reply_text (req, 404, "Context %s not found", c->id);
        break;
      }
  ctx_unref (c);
  return ret;
}
