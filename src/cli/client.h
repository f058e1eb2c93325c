/* The client side of `hutch`: the commands that talk to a running hutchd
   over HTTP (libcurl does the HTTP), configured like the Python SDK, each
   failure reported once and turned into one exit status (docs/cli.md).  */
#pragma once

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit statuses of the client commands (exec also passes the command's).  */
#define CLIENT_EXIT_REMOTE 1
#define CLIENT_EXIT_USAGE 2
#define CLIENT_EXIT_NOT_FOUND 3
#define CLIENT_EXIT_AUTH 4
#define CLIENT_EXIT_UNREACHABLE 5
#define CLIENT_EXIT_TIMEOUT 124
#define CLIENT_EXIT_FAILURE 125

#define CLIENT_DEFAULT_URL "http://127.0.0.1:3000"
#define ENVD_PORT 49983
#define INTERP_PORT 49999

/* The largest body kept in memory (JSON answers), and the largest Connect
   message or NDJSON line accepted.  */
#define CLIENT_MAX_BODY (64u << 20)
#define CLIENT_MAX_ERROR_BODY (64u << 10)

struct client
{
  const char *url_option; /* --url, --api-key: they win over the environment */
  const char *key_option;
  char *api_url; /* resolved, without a trailing slash */
  const char *api_key;
  bool json;
  CURL *curl; /* kept between requests: one keep-alive connection */
  bool busy;  /* a transfer on CURL is under way */
};

/* getopt_long entries every client command accepts, and their codes.  */
enum
{
  CLIENT_OPT_URL = 0x100,
  CLIENT_OPT_KEY,
  CLIENT_OPT_JSON,
};
/* clang-format off */
#define CLIENT_LONG_OPTIONS                                                                        \
  { "url", required_argument, NULL, CLIENT_OPT_URL },                                              \
  { "api-key", required_argument, NULL, CLIENT_OPT_KEY },                                          \
  { "json", no_argument, NULL, CLIENT_OPT_JSON },                                                  \
  { "help", no_argument, NULL, 'h' }
/* clang-format on */

/* The help lines for CLIENT_LONG_OPTIONS.  */
#define CLIENT_OPTIONS_HELP                                                                        \
  "  --url URL         hutchd's address (default $HUTCH_API_URL, $E2B_API_URL,\n"                  \
  "                    else " CLIENT_DEFAULT_URL ")\n"                                             \
  "  --api-key KEY     the API key (default $HUTCH_API_KEY, else $E2B_API_KEY)\n"                  \
  "  --json            machine-readable output\n"

/* Handle OPT if it is one of CLIENT_LONG_OPTIONS (not --help).  Returns
   true when it was.  */
bool client_option (struct client *c, int opt, const char *arg);

/* Resolve the URL and the key (options, then the environment) and set up
   libcurl.  Returns 0, or an exit status after printing why.  */
int client_open (struct client *c);
void client_close (struct client *c);

/* A response body consumer: returns 0 to go on, or an exit status (its
   message printed) to stop the transfer.  */
typedef int (*client_sink_fn) (void *arg, const char *data, size_t len);

struct client_request
{
  const char *method;         /* GET, POST, DELETE */
  const char *path;           /* appended to the API URL; query already escaped */
  struct curl_slist *headers; /* extra headers, owned by the caller */
  const char *body;           /* a body in memory of BODY_LEN bytes, or */
  size_t body_len;
  bool upload; /* the body is read from UPLOAD_FD as it is sent: */
  int upload_fd;
  long long upload_len; /* its size, or -1 when unknown (sent chunked) */
  client_sink_fn sink;  /* a 2xx body goes here as it arrives (NULL: kept) */
  void *sink_arg;
  int (*tick) (void *arg); /* called at least every second; nonzero stops */
  void *tick_arg;
};

struct client_response
{
  long status;
  char *body; /* NUL-terminated: the whole body, or the error body when a
                 sink took a 2xx one; at most CLIENT_MAX_BODY bytes */
  size_t len;
  char *next_token; /* the X-Next-Token header, or NULL */
  bool broken;      /* the connection broke in the middle of the answer */
};

void client_response_release (struct client_response *r);

/* Send RQ to hutchd.  Returns 0 when an answer came, whatever its status,
   or an exit status after printing why (server unreachable, connection
   broken, a sink or tick that stopped it).  */
int client_perform (struct client *c, const struct client_request *rq, struct client_response *ret);

/* A control-plane call: METHOD PATH with the JSON BODY (may be NULL),
   X-API-Key sent.  On 2xx stores the decoded answer in *RET_JSON (if not
   NULL; json null for an empty body) and X-Next-Token in *RET_NEXT (if not
   NULL).  Other statuses are reported (SANDBOX_ID names the sandbox of a
   404) and returned as exit statuses.  */
int client_api (struct client *c, const char *method, const char *path, json_t *body,
                const char *sandbox_id, json_t **ret_json, char **ret_next);

/* A sandbox reached through hutchd's routing proxy.  */
struct sandbox_target
{
  char *id;
  char *escaped_id;
  char *token; /* envdAccessToken, or NULL */
};

/* Look the sandbox ID up (GET /sandboxes/{id}) for its access token.
   Returns 0 or an exit status after printing why.  */
int client_sandbox (struct client *c, const char *id, struct sandbox_target *ret);
void sandbox_target_release (struct sandbox_target *t);

/* After the stream from T broke (R->broken), tell whether T is gone.
   Returns the exit status for a sandbox that no longer exists (after
   saying so), else STATUS.  */
int client_check_gone (struct client *c, const struct sandbox_target *t,
                       const struct client_response *r, int status);

/* The routing headers for PORT of T, the access token, and Basic auth
   naming USER when USER is not NULL.  Free with curl_slist_free_all.  */
struct curl_slist *client_sandbox_headers (const struct sandbox_target *t, int port,
                                           const char *user);

/* Report a non-2xx answer R from PORT inside T (envd, the code
   interpreter, or the proxy's 502 in front of them) about WHAT; returns
   the exit status.  */
int client_sandbox_error (const struct sandbox_target *t, int port, const char *what,
                          const struct client_response *r);

/* Report a Connect error (string CODE, MESSAGE) about WHAT; returns the
   exit status.  */
int client_connect_error (const char *what, const char *code, const char *message);

/* A connect unary call to envd: POST PATH with the JSON MSG, the answer in
 *RET_JSON.  Returns 0 or an exit status after printing why.  */
int client_envd_unary (struct client *c, const struct sandbox_target *t, const char *path,
                       const char *user, json_t *msg, json_t **ret_json);

/* URL-escape S (every byte but ALPHA DIGIT - . _ ~).  Free with free().  */
char *client_escape (const char *s);

/* Add the KEY=VALUE argument of OPTION to OBJ.  Returns 0, or -1 after
   printing why.  */
int client_add_pair (json_t *obj, const char *option, const char *kv);

/* Parse a number of seconds for OPTION.  Returns 0 or -1 after printing
   why.  */
int client_seconds (const char *option, const char *value, unsigned long *ret);

/* ---- framing: Connect envelopes, NDJSON lines (client-frame.c) ---- */

#define ENVELOPE_COMPRESSED 0x01
#define ENVELOPE_END_STREAM 0x02

/* Reassembles Connect envelopes (1 flag byte, 4-byte big-endian length,
   payload) from the chunks a transfer delivers, however they are cut.  */
struct envelope_reader
{
  char *buf;
  size_t len, cap;
  /* Returns 0 or an exit status.  PAYLOAD is NUL-terminated.  */
  int (*on_message) (void *arg, unsigned flags, const char *payload, size_t len);
  void *arg;
};

int envelope_feed (struct envelope_reader *r, const char *data, size_t len);
void envelope_reader_release (struct envelope_reader *r);

/* One Connect envelope holding PAYLOAD (LEN bytes), in *RET (free()).  */
char *envelope_frame (const char *payload, size_t len, size_t *ret_len);

/* Splits a byte stream into '\n'-terminated lines.  */
struct line_reader
{
  char *buf;
  size_t len, cap;
  /* Returns 0 or an exit status.  LINE is NUL-terminated, without '\n'.  */
  int (*on_line) (void *arg, char *line, size_t len);
  void *arg;
};

int line_feed (struct line_reader *r, const char *data, size_t len);
/* Deliver a last line that had no '\n'.  */
int line_finish (struct line_reader *r);
void line_reader_release (struct line_reader *r);

/* Decode protojson bytes (standard or URL-safe base64, padded or not)
   into OUT, which holds at least LEN * 3 / 4 + 3 bytes.  Returns the
   decoded length, or -1 for a character outside the alphabet.  */
long base64_decode (const char *in, size_t len, unsigned char *out);

/* ---- output (client-output.c) ---- */

/* Print VALUE as indented JSON and a newline on stdout.  */
void client_print_json (json_t *value);

/* Write all of BUF to FD (1 or 2).  Returns 0, or an exit status after
   printing why.  */
int client_write (int fd, const char *buf, size_t len);

/* "2026-11-22T01:28:31.537Z" → "2026-11-22T01:28:31Z" in BUF.  */
const char *client_format_time (const char *rfc3339, char *buf, size_t size);

/* Remove ANSI escape sequences from S in place.  */
void client_strip_ansi (char *s);

/* A text table: a header row, then rows; columns as wide as their widest
   cell, two spaces apart, the last one not padded.  */
struct table
{
  size_t ncols;
  char **cells; /* nrows * ncols owned strings */
  size_t nrows, cap;
};

void table_init (struct table *t, size_t ncols, const char *const *header);
/* Add a row of NCOLS cells (copied; NULL prints as "").  */
void table_add (struct table *t, const char *const *row);
/* Sort the rows after the header by column COL.  */
void table_sort (struct table *t, size_t col);
void table_print (const struct table *t);
void table_release (struct table *t);
