/* hutchd's settings: command line, environment, and an optional JSON
   config file (docs/configuration.md).  */
#pragma once

#include "libhutch/error.h"

#include <stdbool.h>

struct hutchd_config
{
  char *listen_host;
  int listen_port;
  char *data_dir;
  char *api_key;
  char *domain; /* Host routing: {port}-{id}.{domain}; NULL: any */
  int max_sandboxes;
  int spare_sandboxes; /* kept ready for the next creates */
  long long default_timeout_s;
  long long max_timeout_s;
  int cpu_count;
  int memory_mb;
  int disk_mb;
  int log_level;
};

/* Parse ARGV (after defaults, the config file, then the environment).
   Returns 0, 1 when --help was printed, or < 0.  */
int config_load (int argc, char **argv, struct hutchd_config *ret, hutch_error_t *err);
void config_release (struct hutchd_config *c);

/* Load the API key: the configured one, or DATA_DIR/api-key, generated
   (e2b_ + 40 hex, mode 0600) on first start.  *RET_NEW is set when it was
   just generated.  */
int config_api_key (struct hutchd_config *c, bool *ret_new, hutch_error_t *err);
