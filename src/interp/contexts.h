/* The code contexts of a sandbox: one kernel each, with an id (a UUID, as
   Jupyter kernel ids are), a language and a working directory.

   A context is held by one execution at a time (ctx_acquire): the holder
   owns the kernel client.  Deleting or restarting kills the kernel first,
   so a running execution ends at once (it sees the kernel die) and the
   context is free again.  */
#pragma once

#include "jupyter.h"
#include "libhutch/error.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

struct interp_ctx
{
  char id[JUPYTER_ID_LEN + 1];
  char *language; /* normalised: "python", "typescript"... */
  char *cwd;
  int refs; /* atomic */

  pthread_mutex_t mu; /* guards busy, deleted, pid, pidfd */
  pthread_cond_t cv;
  bool busy;
  bool deleted;
  pid_t pid;
  int pidfd; /* a copy of the kernel's, for killing it from outside */

  /* Owned by the holder.  */
  struct jupyter_client *client; /* NULL: no kernel */
  json_t *globals;               /* the sandbox's variables once injected */
};

/* "js" -> "javascript", "ts" -> "typescript", "" or NULL -> "python",
   else lower-cased and stripped.  Allocated.  */
char *interp_normalize_language (const char *language);

/* Make the directories.  Returns 0 or -1.  */
int contexts_init (hutch_error_t *err);

/* A new context with a running kernel, registered, referenced for the
   caller.  CWD NULL: the user's home.  */
struct interp_ctx *contexts_create (const char *language, const char *cwd, hutch_error_t *err);

/* The context ID, referenced, or NULL.  */
struct interp_ctx *contexts_find (const char *id);

/* The default context of LANGUAGE, created on first use; referenced.  */
struct interp_ctx *contexts_default (const char *language, hutch_error_t *err);

/* [{"id", "language", "cwd"}...] in creation order.  */
json_t *contexts_list (void);

/* Returns 0, or -1 with errno ENOENT.  */
int contexts_delete (const char *id);

/* Kill and start the kernel again; state is lost.  Returns 0, or -1 with
 *ERR (status ENOENT when there is no such context).  */
int contexts_restart (const char *id, hutch_error_t *err);

/* Kill every kernel (for tests and shutdown).  */
void contexts_shutdown (void);

void ctx_ref (struct interp_ctx *c);
void ctx_unref (struct interp_ctx *c);

enum ctx_acquire_result
{
  CTX_ACQUIRED,
  CTX_TIMEOUT,
  CTX_GONE, /* deleted */
};

/* Hold C, waiting until DEADLINE (monotonic ns; 0: no limit).  */
enum ctx_acquire_result ctx_acquire (struct interp_ctx *c, unsigned long long deadline);
void ctx_release (struct interp_ctx *c);

/* With C held: start its kernel if it has none or it died, and inject the
   sandbox's variables before its first execution.  */
int ctx_prepare (struct interp_ctx *c, hutch_error_t *err);
