#define _GNU_SOURCE
#include "agent/agent.h"
#include "api.h"
#include "libhutch/util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define CLIENT_ID "6532622b"

static void
rfc3339 (long long ms, char *out, size_t size)
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  size_t n;

  gmtime_r (&t, &tm);
  n = strftime (out, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (out + n, size - n, ".%03dZ", (int)(ms % 1000));
}

static json_t *
token_json (const struct sbx *s)
{
  return *s->access_token ? json_string (s->access_token) : json_null ();
}

json_t *
api_sandbox_json (const struct sbx *s)
{
  return json_pack ("{s:s, s:s, s:s, s:s, s:o, s:n, s:n, s:s}", "templateID", s->template_id,
                    "sandboxID", s->id, "clientID", CLIENT_ID, "envdVersion", AGENT_VERSION,
                    "envdAccessToken", token_json (s), "trafficAccessToken", "domain", "alias",
                    s->alias);
}

json_t *
api_sandbox_detail_json (const struct sbx *s)
{
  char started[40], end[40];

  rfc3339 (s->started_ms, started, sizeof started);
  rfc3339 (s->end_ms, end, sizeof end);
  return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:o, s:O}",
                    "templateID", s->template_id, "sandboxID", s->id, "clientID", CLIENT_ID,
                    "alias", s->alias, "startedAt", started, "endAt", end, "envdVersion",
                    AGENT_VERSION, "cpuCount", s->cpu_count, "memoryMB", s->memory_mb, "diskSizeMB",
                    s->disk_mb, "state", s->paused ? "paused" : "running", "envdAccessToken",
                    token_json (s), "metadata", s->metadata);
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decoding as Go's url.QueryUnescape ('+' is a space).  */
static char *
query_unescape (const char *s, size_t n)
{
  char *out = xmalloc (n + 1);
  size_t j = 0;

  for (size_t i = 0; i < n; i++)
    {
      if (s[i] == '%' && i + 2 < n && hexval (s[i + 1]) >= 0 && hexval (s[i + 2]) >= 0)
        {
          out[j++] = (char)(hexval (s[i + 1]) * 16 + hexval (s[i + 2]));
          i += 2;
        }
      else
        out[j++] = s[i] == '+' ? ' ' : s[i];
    }
  out[j] = '\0';
  return out;
}

/* The SDKs encode the filter three times (docs/http-api.md): the query
   layer is undone by libmicrohttpd, then the whole string once, then each
   key and value.  */
bool
api_metadata_matches (const struct sbx *s, const char *filter)
{
  cleanup_free char *once = query_unescape (filter, strlen (filter));
  char *save = NULL;

  for (char *pair = strtok_r (once, "&", &save); pair; pair = strtok_r (NULL, "&", &save))
    {
      char *eq = strchr (pair, '=');
      cleanup_free char *key = NULL, *value = NULL;
      const char *have;
      if (eq == NULL)
        return false;
      key = query_unescape (pair, (size_t)(eq - pair));
      value = query_unescape (eq + 1, strlen (eq + 1));
      have = json_string_value (json_object_get (s->metadata, key));
      if (have == NULL || strcmp (have, value) != 0)
        return false;
    }
  return true;
}
