/* GET and POST /files: download and upload as a user of the sandbox.
   This file holds what both share: error replies, the checks of the query
   and the user it names.  See files-internal.h for the other files.  */
#define _GNU_SOURCE
#include "files-internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum MHD_Result
files_error (struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
  char message[1024];
  json_t *body;
  char *text;
  struct MHD_Response *r;
  enum MHD_Result ret;
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (message, sizeof message, fmt, ap);
  va_end (ap);
  body = json_pack ("{s:i, s:s}", "code", (int)status, "message", message);
  text = json_dumps (body, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref (body);
  r = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
  http_add_cors (r);
  ret = MHD_queue_response (conn, status, r);
  MHD_destroy_response (r);
  return ret;
}

static enum MHD_Result
find_nul (void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size, const char *value,
          size_t value_size)
{
  bool *found = cls;
  if (strlen (key) != key_size || (value && strlen (value) != value_size))
    *found = true;
  return *found ? MHD_NO : MHD_YES;
}

bool
files_query_has_nul (struct MHD_Connection *conn)
{
  bool found = false;
  MHD_get_connection_values_n (conn, MHD_GET_ARGUMENT_KIND, find_nul, &found);
  return found;
}

const char *
files_user_name (struct MHD_Connection *conn)
{
  const char *name = http_query (conn, "username");
  return name && *name ? name : "(default user)";
}

int
files_user (struct MHD_Connection *conn, struct agent_user *ret)
{
  const char *name = http_query (conn, "username");
  if (name == NULL || *name == '\0')
    return agent_user_from_basic_auth (NULL, ret);
  return agent_user_lookup (name, ret);
}

const char *
files_base_of (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash && slash[1] ? slash + 1 : path;
}
