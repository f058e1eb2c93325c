/* The Connect protocol with the JSON codec, as the E2B SDKs speak it
   (docs/ of the protocol: unary calls answer application/json; server
   streams answer application/connect+json with 5-byte envelopes and a
   mandatory end-of-stream envelope carrying any error).  */
#pragma once

#include "common/http.h"

#include <jansson.h>
#include <stdbool.h>

/* Connect error codes, e.g. "not_found", "invalid_argument".  */
unsigned connect_http_status (const char *code);

/* Unary answers.  RESPONSE is stolen.  */
enum MHD_Result connect_reply (struct MHD_Connection *conn, json_t *response);
enum MHD_Result connect_error (struct MHD_Connection *conn, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* The request message of a unary call (plain JSON body) or of a server
   streaming call (one enveloped JSON message).  On failure queues an error
   (as a unary error or as a stream's end frame, per STREAMING) and returns
   NULL.  */
json_t *connect_request (struct http_req *req, bool streaming);

/* A server stream.  Producers (any thread) send messages; the response
   body, read by libmicrohttpd on the connection's thread, delivers them as
   envelopes, a keepalive message after every KEEPALIVE_S seconds without
   traffic, and the end frame once connect_stream_end() was called or the
   deadline passed (then with deadline_exceeded).  */
struct connect_stream;

/* KEEPALIVE is the message sent on idle ticks (stolen).  The interval comes
   from the request's Keepalive-Ping-Interval header (default 90 s) and the
   deadline from Connect-Timeout-Ms (none when absent or 0).  */
struct connect_stream *connect_stream_new (struct http_req *req, json_t *keepalive);

/* Queue MESSAGE (stolen).  Returns false once the client has gone.  */
bool connect_stream_send (struct connect_stream *s, json_t *message);

/* Finish the stream: CODE NULL for success, else a Connect error.  */
void connect_stream_end (struct connect_stream *s, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* True once the client disconnected or the stream ended.  */
bool connect_stream_closed (struct connect_stream *s);

/* Block while more than MAX bytes wait to be sent, until the client took
   them, the stream closed or ended, or TIMEOUT_MS passed (-1: no limit).
   Returns false on timeout.  Producers use it to hold a fast source back
   to the client's pace instead of buffering without bound.  */
bool connect_stream_wait_drained (struct connect_stream *s, size_t max, long timeout_ms);

/* Milliseconds until the stream's deadline (-1: none).  */
long connect_stream_deadline_ms (struct connect_stream *s);

/* Queue the HTTP 200 response that drains S.  Call once, from the route's
   handle function; the stream stays valid for producers until they call
   connect_stream_unref().  */
enum MHD_Result connect_stream_respond (struct connect_stream *s);

void connect_stream_ref (struct connect_stream *s);
void connect_stream_unref (struct connect_stream *s);

/* proto3-JSON helpers.  */
char *connect_b64_encode (const void *data, size_t len);
/* Accepts standard and URL-safe alphabets, with or without padding.
   Returns an allocated buffer (length in *RET_LEN) or NULL.  */
unsigned char *connect_b64_decode (const char *text, size_t *ret_len);
/* RFC 3339 UTC with nanoseconds.  */
char *connect_timestamp (long long sec, long nsec);
/* A field that may be a JSON number or a numeric string (int64 rules).
   Returns false when present but not a valid integer.  */
bool connect_get_int (json_t *obj, const char *camel, const char *snake, long long *ret);
/* A field under its camelCase or snake_case name.  */
json_t *connect_get (json_t *obj, const char *camel, const char *snake);
