/* The control plane: the E2B sandboxes REST API (api-sandboxes.c) and
   its JSON shapes (api-json.c).  */
#pragma once

#include "common/http.h"
#include "config.h"
#include "registry.h"

extern const struct http_server api_server;

/* Settings the handlers need; kept by reference.  */
void api_init (const struct hutchd_config *config);

/* JSON shapes of a sandbox.  */
json_t *api_sandbox_json (const struct sbx *s);        /* Sandbox */
json_t *api_sandbox_detail_json (const struct sbx *s); /* SandboxDetail / ListedSandbox */

/* Does S's metadata hold every pair of FILTER (an E2B metadata query)?  */
bool api_metadata_matches (const struct sbx *s, const char *filter);
