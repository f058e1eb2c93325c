/* Small helpers over libmicrohttpd shared by hutchd and the in-sandbox
   agent: a request record with a bounded body, a path router, and JSON,
   text and error responses.  Both servers run libmicrohttpd with a thread
   per connection, so handlers may block.  */
#pragma once

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_PARAMS 4

struct http_req;

struct http_route
{
  const char *method;  /* "GET", "POST"... */
  const char *pattern; /* "/sandboxes/{}/timeout": {} matches one segment */
  /* Called once the whole body is in req->body (up to max_body).  */
  enum MHD_Result (*handle) (struct http_req *req);
  /* Optional: receives the body as it arrives instead of buffering it;
     called with size 0 once at the end, before handle.  Returns false to
     refuse the rest of the body, which is then read and dropped; handle
     still runs at the end and answers (it must not queue a response from
     here: one queued halfway through an upload is not reliably sent).  */
  bool (*upload) (struct http_req *req, const char *data, size_t size);
  size_t max_body; /* 0: 1 MiB */
  bool open;       /* needs no authorization */
};

struct http_server
{
  const struct http_route *routes; /* terminated by a zero entry */
  /* Answers paths no route matches.  */
  enum MHD_Result (*not_found) (struct MHD_Connection *conn, const char *method, const char *url);
  /* Optional: called before a route that is not open runs; returns false
     after queueing a refusal.  */
  bool (*authorize) (struct MHD_Connection *conn, const struct http_route *route);
};

struct http_req
{
  struct MHD_Connection *conn;
  const char *method;
  const char *url;
  const struct http_route *route;
  char *params[HTTP_MAX_PARAMS]; /* the {} segments, percent-decoded */
  char *body;
  size_t body_len;
  bool body_too_large;
  bool body_refused; /* the upload callback or the size limit said no */
  bool responded;    /* a response was queued (by upload, for instance) */
  void *state;       /* owned by the route; freed with free_state */
  void (*free_state) (void *state);
};

/* The libmicrohttpd access handler body for SERVER.  Use from a
   MHD_AccessHandlerCallback, passing its arguments through.  */
enum MHD_Result http_dispatch (const struct http_server *server, struct MHD_Connection *conn,
                               const char *url, const char *method, const char *upload_data,
                               size_t *upload_data_size, void **con_cls);

/* MHD_OPTION_NOTIFY_COMPLETED callback freeing what http_dispatch made.  */
void http_request_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                             enum MHD_RequestTerminationCode toe);

/* Responses.  Each queues a response and returns the MHD result.  */
enum MHD_Result http_send_json (struct MHD_Connection *conn, unsigned status, json_t *body);
enum MHD_Result http_send_text (struct MHD_Connection *conn, unsigned status,
                                const char *content_type, const char *text);
enum MHD_Result http_send_empty (struct MHD_Connection *conn, unsigned status);
/* {"code": STATUS, "message": "..."}, the error body E2B clients expect.  */
enum MHD_Result http_send_error (struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* 404 {"code": 404, "message": "no such endpoint: METHOD URL"}: the
   not_found of a server whose errors are http_send_error's.  */
enum MHD_Result http_not_found (struct MHD_Connection *conn, const char *method, const char *url);

const char *http_header (struct MHD_Connection *conn, const char *name);

/* Whether GIVEN (a header's value, may be NULL) is SECRET, compared in a
   time that tells nothing of where they differ.  */
bool http_secret_equal (const char *given, const char *secret);
const char *http_query (struct MHD_Connection *conn, const char *name);

/* Parse the body of REQ as a JSON object.  On failure queues a 400 error
   and returns NULL.  */
json_t *http_body_json (struct http_req *req);

/* The status of the last response queued on this thread (libmicrohttpd
   runs each connection on its own thread), for the request log.  */
extern __thread unsigned http_last_status;

/* Queue RESPONSE with STATUS, adding CORS headers; destroys RESPONSE.  */
enum MHD_Result http_queue (struct MHD_Connection *conn, unsigned status,
                            struct MHD_Response *response);

/* libmicrohttpd's MHD_OPTION_UNESCAPE_CALLBACK: percent-decoding that
   leaves "%00" as it is, so that no path or argument is cut short by an
   encoded NUL.  */
size_t http_unescape (void *cls, struct MHD_Connection *conn, char *s);

/* Add permissive CORS headers to RESPONSE.  */
void http_add_cors (struct MHD_Response *response);
