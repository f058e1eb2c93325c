/* Internals of the routing proxy, shared by proxy.c (routing, the request
   going upstream, error answers) and proxy-upstream.c (the response coming
   back, and upgraded connections).  Everything about one request happens
   on its connection's thread, except an upgraded connection's relay, which
   gets its own thread and its own state.  */
#pragma once

#include "registry.h"

#include <http_parser.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#define PROXY_CONNECT_TIMEOUT_MS 5000
#define PROXY_BUF_SIZE (64 * 1024)

struct proxy_header
{
  char *name;
  char *value;
};

/* One proxied request.  Referenced by the request (*con_cls) and by the
   streaming response; freed when both have let go.  */
struct proxy_req
{
  int refs;
  struct MHD_Connection *conn;
  struct sbx *sbx;
  char id[65];
  int port;
  int upstream;       /* the connection to the sandbox port, or -1 */
  int client;         /* the client's socket, watched for hang-ups, or -1 */
  bool head;          /* HEAD: the response has no body */
  bool upgrade;       /* the client asks to switch protocols */
  bool chunked_body;  /* the request body goes upstream chunked */
  bool upload_failed; /* upstream stopped taking the body: drop the rest */
  bool has_body;      /* the client sends a request body */
  bool started;       /* past the first call */
  bool responded;     /* a response is queued */
  char *error;        /* a 502 body waiting for the end of the request */

  /* The upstream response.  */
  http_parser parser;
  struct proxy_header *headers;
  size_t n_headers;
  bool in_value;      /* the last header callback was for a value */
  bool interim;       /* inside a 1xx response other than 101: skipped */
  bool headers_done;  /* the parser paused at the end of the final head */
  bool message_done;  /* the parser paused at the end of the message */
  uint64_t body_size; /* MHD_SIZE_UNKNOWN unless a Content-Length came */
  char *buf;          /* read from upstream, not parsed yet: [buf_off, buf_len) */
  size_t buf_off;
  size_t buf_len;
  char *out; /* where body bytes go while parsing: the response buffer */
  size_t out_len;
  size_t out_cap;
};

/* proxy.c */

/* Drop a reference to R, freeing it (socket, sandbox reference, buffers)
   with the last one.  */
void proxy_req_unref (struct proxy_req *r);

/* Whether the comma-separated LIST (may be NULL) holds TOKEN, ignoring
   case.  */
bool proxy_has_token (const char *list, const char *token);

/* Whether header NAME concerns one hop only (RFC 9110 7.6.1), given the
   message's Connection header (may be NULL); Upgrade passes when
   UPGRADING.  */
bool proxy_is_hop_by_hop (const char *name, const char *connection, bool upgrading);

/* Wait until FD is ready for EVENTS, as long as the client stays connected
   (no time limit).  Returns 0 (FD ready or failed: the next call on it
   tells), or -1 with errno: ECONNABORTED when the client hung up.  */
int proxy_wait (struct proxy_req *r, int fd, short events);

/* proxy-upstream.c */

/* Read the upstream response up to the end of its (final) head.  Returns
   0, or -1 with errno: ECONNABORTED when the client hung up, EPROTO when
   upstream sent no valid response, others from the socket.  */
int proxy_read_head (struct proxy_req *r);

/* Queue the response for a head read by proxy_read_head: the body streams
   from upstream as the client takes it, or the connection is relayed when
   upstream switched protocols.  */
enum MHD_Result proxy_respond (struct proxy_req *r);
