/* The code-interpreter server's parts: routes (server.c), the /execute
   stream (execute.c), request bodies (request.c) and the NDJSON lines
   (output.c).  */
#pragma once

#include "common/http.h"
#include "jupyter.h"

#include <jansson.h>
#include <stdbool.h>

/* Seconds without output after which a keepalive line goes out.  */
#define KEEPALIVE_NS (5ULL * 1000000000ULL)

/* request.c */

/* The JSON object body of REQ.  On failure queues a 422 in FastAPI's
   shape and returns NULL.  */
json_t *request_object (struct http_req *req);

struct field_check
{
  const char *name;
  bool required;
  bool dict_of_strings; /* else a string; null is always allowed */
};

/* Check BODY's fields per CHECKS (terminated by a NULL name); on failure
   queues a 422 and returns false.  */
bool request_check (struct http_req *req, json_t *body, const struct field_check *checks);

/* A string field, NULL when absent, null or "" (FastAPI code tests them
   for truth).  */
const char *request_str (json_t *body, const char *name);

/* The context a request names by "context_id", or the default context of
   its "language" (made on first use).  On failure queues the answer (400
   for both, 404 for an unknown id, 500 when the context cannot start) in
   *RET and returns NULL.  The caller owns the reference.  */
struct interp_ctx;
struct interp_ctx *request_context (struct http_req *req, json_t *body, enum MHD_Result *ret);

/* Plain-text answers, as FastAPI's PlainTextResponse.  */
enum MHD_Result reply_text (struct http_req *req, unsigned status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* output.c */

/* The lines for M, a message of the user's execution, appended to LINES.
 *ERRORED keeps only the first error of an execution, as E2B does.  */
void output_lines (const struct jupyter_msg *m, bool *errored, json_t *lines);

json_t *output_error (const char *name, const char *value);
json_t *output_type (const char *type);

/* One NDJSON line: Python json.dumps separators, ASCII only, "\n".  */
char *output_dump (json_t *line);

/* execute.c */
enum MHD_Result execute_handle (struct http_req *req);

/* validate.c */
enum MHD_Result validate_handle (struct http_req *req);
