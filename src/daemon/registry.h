/* The live sandboxes of hutchd: an in-memory table keyed by id, their
   deadlines, and the monitor thread that ends sandboxes whose timeout
   passed or whose pid 1 died.  Records are reference counted: a request
   that looked a sandbox up may keep using it while another kills it.  */
#pragma once

#include "libhutch/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

struct sbx
{
  char id[65];
  char template_id[64];
  char alias[64];
  json_t *metadata;      /* object of strings */
  char access_token[65]; /* empty: envd asks for none */
  long long started_ms;  /* unix ms */
  long long end_ms;      /* unix ms: the sandbox ends then */
  int cpu_count;
  int memory_mb;
  int disk_mb;
  pid_t pid;
  int pidfd;
  int netns_fd; /* its network namespace: proxy connections are made there */
  bool paused;
  /* private */
  int refs;
  bool gone;
};

struct registry_limits
{
  int max_sandboxes;
  long long max_timeout_s;
};

struct sandbox_spec
{
  const char *template_id; /* as given: "base", "code-interpreter-v1"... */
  long long timeout_s;
  json_t *metadata; /* borrowed */
  json_t *env_vars; /* borrowed */
  int cpu_count;
  int memory_mb;
  int disk_mb;
  bool insecure; /* v1 `secure: false`: envd asks for no access token */
};

/* Processes and threads a sandbox may have.  */
#define REGISTRY_SANDBOX_PIDS 1024

int registry_init (const struct registry_limits *limits, hutch_error_t *err);
void registry_shutdown (void);

/* Create a sandbox (through the zygote) and register it.  Errors: EAGAIN
   when the maximum number of sandboxes is alive, ENOENT for an unknown
   template, others from the runtime.  RET gets a reference.  */
int registry_create (const struct sandbox_spec *spec, struct sbx **ret, hutch_error_t *err);

/* Keep COUNT spare sandboxes of the code-interpreter templates, with
   SPEC's cpu, memory and disk (see spares.h).  Call after registry_init.  */
int registry_start_spares (int count, const struct sandbox_spec *spec, hutch_error_t *err);

/* How many sandboxes are alive or being created.  */
int registry_live_count (void);

/* A reference to the live sandbox ID, or NULL.  */
struct sbx *registry_get (const char *id);
void sbx_unref (struct sbx *s);

/* Kill and forget ID.  Returns 0, or -1 when it does not exist.  */
int registry_kill (const char *id);

/* Set the sandbox to end TIMEOUT_S seconds from now.  -1 when unknown.  */
int registry_set_timeout (const char *id, long long timeout_s);

/* Extend (never shorten) the end to now + TIMEOUT_S.  -1 when unknown.  */
int registry_extend (const char *id, long long timeout_s);

/* Freeze (pause) or thaw every process of ID.  A paused sandbox keeps
   its deadline.  */
int registry_pause (const char *id, bool paused, hutch_error_t *err);

/* One SandboxMetric sample of S, now.  */
json_t *registry_metric (const struct sbx *s);

/* References to every live sandbox, newest first (free with
   registry_list_free).  */
struct sbx **registry_list (size_t *ret_count);
void registry_list_free (struct sbx **list, size_t count);

long long registry_now_ms (void);
