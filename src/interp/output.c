/* Jupyter messages to the NDJSON lines of /execute, as E2B's server writes
   them (its pydantic models, dumped with exclude_none).  */
#define _GNU_SOURCE
#include "libhutch/util.h"
#include "server-internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct
{
  const char *mime;
  const char *field;
} result_fields[] = {
  { "text/plain", "text" },        { "text/html", "html" },
  { "text/markdown", "markdown" }, { "image/svg+xml", "svg" },
  { "image/png", "png" },          { "image/jpeg", "jpeg" },
  { "application/pdf", "pdf" },    { "text/latex", "latex" },
  { "application/json", "json" },  { "application/javascript", "javascript" },
  { "e2b/data", "data" },          { "e2b/chart", "chart" },
};

json_t *
output_type (const char *type)
{
  return json_pack ("{s:s}", "type", type);
}

json_t *
output_error (const char *name, const char *value)
{
  return json_pack ("{s:s, s:s, s:s, s:s}", "type", "error", "name", name, "value", value,
                    "traceback", "");
}

char *
output_dump (json_t *line)
{
  char *text = json_dumps (line, JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
  char *out;

  xasprintf (&out, "%s\n", text ? text : "{}");
  free (text);
  return out;
}

/* One pair of surrounding quotes goes, as E2B's Result does.  */
static json_t *
strip_quotes (json_t *text)
{
  const char *s = json_string_value (text);
  size_t n = json_string_length (text);

  if (s && n > 0 && ((s[0] == '\'' && s[n - 1] == '\'') || (s[0] == '"' && s[n - 1] == '"')))
    return json_stringn (n > 1 ? s + 1 : "", n > 1 ? n - 2 : 0);
  return json_incref (text);
}

static json_t *
result_line (json_t *data, bool main)
{
  json_t *line = output_type ("result");
  json_t *extra = json_is_object (data) ? json_deep_copy (data) : json_object ();

  for (size_t i = 0; i < ARRAY_SIZE (result_fields); i++)
    {
      json_t *v = json_object_get (extra, result_fields[i].mime);
      if (v && !json_is_null (v))
        json_object_set_new (line, result_fields[i].field,
                             i == 0 ? strip_quotes (v) : json_incref (v));
      json_object_del (extra, result_fields[i].mime);
    }
  json_object_set_new (line, "extra", extra);
  json_object_set_new (line, "is_main_result", json_boolean (main));
  return line;
}

/* The kernel's "2026-01-01T12:00:00.123456Z" as Python's isoformat()
   writes it after pydantic parsed it: "+00:00", six digits of fraction,
   none when zero.  */
static char *
timestamp (const char *date)
{
  char head[20], frac[7] = "000000", *out;
  const char *p, *zone;
  size_t n = 0;

  if (date == NULL || strlen (date) < 19)
    return NULL;
  memcpy (head, date, 19);
  head[19] = '\0';
  p = date + 19;
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++)
      if (n < 6)
        frac[n++] = *p;
  zone = *p == '\0' || *p == 'Z' || *p == 'z' ? "+00:00" : p;
  if (strcmp (frac, "000000") == 0)
    xasprintf (&out, "%s%s", head, zone);
  else
    xasprintf (&out, "%s.%s%s", head, frac, zone);
  return out;
}

static char *
now_timestamp (void)
{
  struct timespec ts;
  struct tm tm;
  char buf[64];

  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  snprintf (buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
  return timestamp (buf);
}

static json_t *
stream_line (const struct jupyter_msg *m)
{
  const char *name = json_string_value (json_object_get (m->content, "name"));
  json_t *text = json_object_get (m->content, "text");
  cleanup_free char *ts = timestamp (m->date);

  if (name == NULL || !json_is_string (text)
      || (strcmp (name, "stdout") != 0 && strcmp (name, "stderr") != 0))
    return NULL;
  if (ts == NULL)
    ts = now_timestamp ();
  return json_pack ("{s:s, s:O, s:s}", "type", name, "text", text, "timestamp", ts);
}

static json_t *
joined_traceback (json_t *tb)
{
  char *s = xstrdup ("");
  size_t i;
  json_t *v;
  json_t *out;

  json_array_foreach (tb, i, v)
  {
    char *more;
    if (!json_is_string (v))
      continue;
    xasprintf (&more, "%s%s", s, json_string_value (v));
    free (s);
    s = more;
  }
  out = json_string (s);
  free (s);
  return out ? out : json_string ("");
}

static json_t *
error_line (json_t *content)
{
  const char *name = json_string_value (json_object_get (content, "ename"));
  const char *value = json_string_value (json_object_get (content, "evalue"));

  return json_pack ("{s:s, s:s, s:s, s:o}", "type", "error", "name", name ? name : "", "value",
                    value ? value : "", "traceback",
                    joined_traceback (json_object_get (content, "traceback")));
}

static void
reply_lines (json_t *content, bool *errored, json_t *lines)
{
  const char *status = json_string_value (json_object_get (content, "status"));

  if (status == NULL)
    return;
  if (strcmp (status, "error") == 0 && !*errored)
    {
      *errored = true;
      json_array_append_new (lines, error_line (content));
    }
  else if (strcmp (status, "abort") == 0 || strcmp (status, "aborted") == 0)
    json_array_append_new (lines, output_error ("ExecutionAborted", "Execution was aborted"));
}

void
output_lines (const struct jupyter_msg *m, bool *errored, json_t *lines)
{
  json_t *line = NULL;

  if (strcmp (m->type, "stream") == 0)
    line = stream_line (m);
  else if (strcmp (m->type, "execute_result") == 0 || strcmp (m->type, "display_data") == 0)
    line = result_line (json_object_get (m->content, "data"),
                        strcmp (m->type, "execute_result") == 0);
  else if (strcmp (m->type, "execute_input") == 0)
    line = json_pack ("{s:s, s:O}", "type", "number_of_executions", "execution_count",
                      json_object_get (m->content, "execution_count"));
  else if (strcmp (m->type, "error") == 0 && !*errored)
    {
      *errored = true;
      line = error_line (m->content);
    }
  else if (strcmp (m->type, "execute_reply") == 0)
    reply_lines (m->content, errored, lines);
  if (line)
    json_array_append_new (lines, line);
}
