/* The routing proxy: requests for a sandbox port are forwarded, streaming
   both ways, to that port on the sandbox's loopback, inside its network
   namespace.  A request is for a sandbox when it carries E2b-Sandbox-Id and
   E2b-Sandbox-Port headers, or a Host of the form {port}-{id}.{domain}.  */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* The sandbox id and port a request addresses, from its headers.  Returns
   false when the request is for the control plane.  */
bool proxy_target (struct MHD_Connection *conn, const char *domain, char *id, size_t id_size,
                   int *port);

/* The libmicrohttpd access handler for a proxied request (same contract as
   MHD_AccessHandlerCallback; *CON_CLS is the proxy's own state, created on
   the first call).  */
enum MHD_Result proxy_handle (struct MHD_Connection *conn, const char *id, int port,
                              const char *url, const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size, void **con_cls);

/* MHD_OPTION_NOTIFY_COMPLETED part for proxied requests.  */
void proxy_completed (void **con_cls);
