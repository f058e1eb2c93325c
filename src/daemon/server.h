/* hutchd's HTTP server: one port for the control plane and the routing
   proxy, told apart by the sandbox headers or Host of each request.  */
#pragma once

#include "config.h"
#include "libhutch/error.h"

int server_start (const struct hutchd_config *config, hutch_error_t *err);
void server_stop (void);
