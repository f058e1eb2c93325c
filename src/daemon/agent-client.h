/* hutchd speaking to the agent of one of its sandboxes, from the host,
   through a socket made in the sandbox's network namespace.  */
#pragma once

#include "libhutch/error.h"

/* POST INIT_JSON (the body of envd's /init: access token, sandbox-wide
   variables, default user) to the agent of the sandbox whose network
   namespace is NETNS_FD, and wait for its answer.  Returns 0 once the
   agent has applied it.  */
int agent_client_init (int netns_fd, const char *init_json, hutch_error_t *err);
