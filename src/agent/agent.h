/* The agent: pid 1 of every hutchd sandbox.  It serves the envd API on
   port 49983 inside the sandbox (process and filesystem services over
   Connect RPC with the JSON codec, /files, /health, /init), reaps every
   orphan, and reports readiness to the supervisor.  */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#define AGENT_ENVD_PORT 49983
#define AGENT_VERSION "0.6.4"

/* What the supervisor hands to a new sandbox's agent.  */
struct agent_args
{
  const char *sandbox_id;
  /* {"accessToken"?, "envVars"?, "defaultUser"?, "warmInterpreter"?}; the
     last one (start the default Python kernel at once) only here, not in
     a later /init.  */
  const char *init_json;
};

/* The sandbox init function (struct hutch_sandbox_config.init).  */
int agent_main (void *args);

/* Settings shared by the services, fixed after start except through
   POST /init.  Read them under agent_lock()/agent_unlock() when they may
   change concurrently.  */
struct agent_state
{
  char *sandbox_id;
  char *access_token; /* NULL: no token required */
  json_t *env_vars;   /* object: sandbox-wide variables for every process */
  char *default_user; /* "user" */
};

extern struct agent_state agent;
void agent_lock (void);
void agent_unlock (void);
