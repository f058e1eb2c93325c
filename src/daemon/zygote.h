/* The zygote: a single-threaded child of hutchd, forked before any thread
   exists, that creates and destroys sandboxes.  Sandboxes are forked from
   it (their pid 1, the agent, is code of this binary), never from the
   multi-threaded daemon, so no lock of another thread can be inherited.
   The daemon talks to it over a SOCK_SEQPACKET pair; requests are served
   one at a time.  */
#pragma once

#include "libhutch/error.h"
#include "libhutch/sandbox.h"

#include <sys/types.h>

struct zygote_create
{
  const char *id;
  const char *template_id;
  unsigned long long memory_bytes;
  unsigned long long disk_bytes;
  unsigned long cpu_millis;
  unsigned long pids;
  const char *agent_init_json; /* handed to the agent: token, env vars */
};

struct zygote_sandbox
{
  pid_t pid;
  int pidfd;
  int netns_fd;
  unsigned uid_base;
};

/* Fork the zygote.  Call before any thread is started.  */
int zygote_start (struct hutch_runtime *rt, hutch_error_t *err);

/* Create a sandbox whose agent is ready.  Thread-safe.  */
int zygote_create (const struct zygote_create *req, struct zygote_sandbox *ret, hutch_error_t *err);

/* Kill and remove sandbox ID completely.  Thread-safe.  */
int zygote_destroy (const char *id, hutch_error_t *err);

/* Wait until the zygote serves requests (it first preloads Python, about
   a second).  */
int zygote_wait_ready (hutch_error_t *err);

/* Freeze or thaw every process of sandbox ID.  */
int zygote_freeze (const char *id, bool frozen, hutch_error_t *err);

/* Stop the zygote; its sandboxes are destroyed.  */
void zygote_stop (void);
