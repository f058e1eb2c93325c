/* Request bodies checked as E2B's FastAPI server checks them: failures are
   422 {"detail": [{"type", "loc", "msg", "input"}...]}.  */
#define _GNU_SOURCE
#include "contexts.h"
#include "libhutch/util.h"
#include "server-internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static json_t *
detail (const char *type, json_t *loc, const char *msg, json_t *input)
{
  return json_pack ("{s:s, s:o, s:s, s:O}", "type", type, "loc", loc, "msg", msg, "input",
                    input ? input : json_null ());
}

static enum MHD_Result
unprocessable (struct http_req *req, json_t *details)
{
  return http_send_json (req->conn, 422, json_pack ("{s:o}", "detail", details));
}

json_t *
request_object (struct http_req *req)
{
  json_error_t jerr;
  json_t *v;

  if (req->body_len == 0)
    {
      unprocessable (req, json_pack ("[o]", detail ("missing", json_pack ("[s]", "body"),
                                                    "Field required", NULL)));
      return NULL;
    }
  v = json_loadb (req->body, req->body_len, JSON_DECODE_ANY, &jerr);
  if (v == NULL)
    {
      json_t *d = detail ("json_invalid", json_pack ("[s, i]", "body", jerr.position),
                          "JSON decode error", NULL);
      json_object_set_new (d, "ctx", json_pack ("{s:s}", "error", jerr.text));
      unprocessable (req, json_pack ("[o]", d));
      return NULL;
    }
  if (!json_is_object (v))
    {
      unprocessable (req,
                     json_pack ("[o]", detail ("model_attributes_type", json_pack ("[s]", "body"),
                                               "Input should be a valid dictionary or object "
                                               "to extract fields from",
                                               v)));
      json_decref (v);
      return NULL;
    }
  return v;
}

static void
check_dict (json_t *details, const char *name, json_t *v)
{
  const char *k;
  json_t *item;

  if (!json_is_object (v))
    {
      json_array_append_new (details, detail ("dict_type", json_pack ("[s, s]", "body", name),
                                              "Input should be a valid dictionary", v));
      return;
    }
  json_object_foreach (v, k, item)
  {
    if (!json_is_string (item))
      json_array_append_new (details,
                             detail ("string_type", json_pack ("[s, s, s]", "body", name, k),
                                     "Input should be a valid string", item));
  }
}

bool
request_check (struct http_req *req, json_t *body, const struct field_check *checks)
{
  json_t *details = json_array ();

  for (const struct field_check *c = checks; c->name; c++)
    {
      json_t *v = json_object_get (body, c->name);
      if (v == NULL && c->required)
        json_array_append_new (details, detail ("missing", json_pack ("[s, s]", "body", c->name),
                                                "Field required", body));
      else if (v == NULL || (json_is_null (v) && !c->required))
        continue;
      else if (c->dict_of_strings)
        check_dict (details, c->name, v);
      else if (!json_is_string (v))
        json_array_append_new (details,
                               detail ("string_type", json_pack ("[s, s]", "body", c->name),
                                       "Input should be a valid string", v));
    }
  if (json_array_size (details) == 0)
    {
      json_decref (details);
      return true;
    }
  unprocessable (req, details);
  return false;
}

const char *
request_str (json_t *body, const char *name)
{
  const char *s = json_string_value (json_object_get (body, name));
  return s && *s ? s : NULL;
}

enum MHD_Result
reply_text (struct http_req *req, unsigned status, const char *fmt, ...)
{
  cleanup_free char *text = NULL;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&text, fmt, ap) < 0)
    text = NULL;
  va_end (ap);
  return http_send_text (req->conn, status, "text/plain; charset=utf-8", text ? text : "");
}

struct interp_ctx *
request_context (struct http_req *req, json_t *body, enum MHD_Result *ret)
{
  cleanup_error hutch_error_t err = NULL;
  const char *id = request_str (body, "context_id"), *language = request_str (body, "language");
  cleanup_free char *norm = interp_normalize_language (language);
  struct interp_ctx *c;

  if (id && language)
    return *ret = reply_text (req, 400, "Only one of context_id or language can be provided"), NULL;
  if (id)
    {
      c = contexts_find (id);
      if (c == NULL)
        *ret = reply_text (req, 404, "Context %s not found", id);
      return c;
    }
  c = contexts_default (norm, &err);
  if (c == NULL)
    *ret = reply_text (req, 500, "Failed to create context: %s", err->msg);
  return c;
}
