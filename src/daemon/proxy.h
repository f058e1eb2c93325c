/* The routing proxy: requests for a sandbox port are forwarded, streaming
   both ways, to that port on the sandbox's loopback, inside its network
   namespace.  A request is for a sandbox when it carries E2b-Sandbox-Id and
   E2b-Sandbox-Port headers, or a Host of the form {port}-{id}.{domain}.
   Needs a libmicrohttpd daemon with a thread per connection (the handler
   blocks on the sandbox) and MHD_ALLOW_UPGRADE (WebSockets).  */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* The sandbox id and port a request addresses, from its headers.  Returns
   false when the request is for the control plane.  DOMAIN (NULL or "":
   any) is what must follow {port}-{id}. in Host.  */
bool proxy_target (struct MHD_Connection *conn, const char *domain, char *id, size_t id_size,
                   int *port);

/* The libmicrohttpd access handler for a proxied request (same contract as
   MHD_AccessHandlerCallback; *CON_CLS is the proxy's own state, NULL on the
   first call, created then).  Blocks while the sandbox is slow: connecting
   (5 s at most), taking the body, and answering its head (no limit, but it
   stops when the client hangs up).  Unknown sandboxes and closed ports get
   E2B's 502 JSON bodies.  */
enum MHD_Result proxy_handle (struct MHD_Connection *conn, const char *id, int port,
                              const char *url, const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size, void **con_cls);

/* MHD_OPTION_NOTIFY_COMPLETED part for proxied requests: releases *CON_CLS
   (may be NULL) and sets it to NULL.  */
void proxy_completed (void **con_cls);

/* MHD_OPTION_URI_LOG_CALLBACK (register it with a NULL closure, or call it
   from the server's own): remembers the request target as the client sent
   it, before libmicrohttpd decodes the path and splits off the query, so
   that proxy_handle forwards it byte for byte.  The target is kept per
   connection thread, for the request about to be handled.  Returns NULL:
   it puts nothing in *con_cls.  Without it the proxy re-encodes the
   decoded path and arguments.  */
void *proxy_uri_log (void *cls, const char *uri, struct MHD_Connection *conn);
