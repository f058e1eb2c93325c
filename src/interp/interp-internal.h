/* The code interpreter's internals shared between its files: starting
   kernels (kernelspec.c, kernel-spawn.c, kernels.c) and the per-language
   code snippets of hidden executions (snippets.c).  */
#pragma once

#include "agent/users.h"
#include "libhutch/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#define INTERP_DEFAULT_DIR "/run/hutch-interp"

static inline void
cleanup_jsonp_interp (void *p)
{
  json_decref (*(json_t **)p);
}
#define cleanup_json_t __attribute__ ((cleanup (cleanup_jsonp_interp)))

/* The directory of connection files and of our own kernels:
   $HUTCH_INTERP_DIR or INTERP_DEFAULT_DIR.  */
const char *interp_dir (void);

/* A started kernel.  */
struct kernel_proc
{
  pid_t pid;
  int pidfd; /* -1 when it exited before we could watch it */
  bool interrupt_by_message;
};

/* Start the kernel of LANGUAGE (normalised: "python", "javascript",
   "typescript", "r", "bash", or any kernelspec name) serving CONN_FILE, as
   USER in CWD.  Python comes from pyzygote when it is ready, else from the
   python3 kernelspec; bash and javascript fall back on our own kernel when
   no kernelspec provides them.  */
int kernel_start (const char *language, const char *conn_file, const struct agent_user *user,
                  const char *cwd, struct kernel_proc *ret, hutch_error_t *err);

/* What kernel_spawn runs: everything prepared, so the child only makes
   syscalls.  */
struct kernel_spawn_spec
{
  char **argv; /* argv[0] is a path */
  char **envp;
  const char *cwd;
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t n_groups;
};

/* Fork and exec SPEC as the leader of a new session, stdio on /dev/null.
   The pidfd is opened before the child may exit, so the agent's reaper
   cannot recycle the pid under us.  */
int kernel_spawn (const struct kernel_spawn_spec *spec, struct kernel_proc *ret,
                  hutch_error_t *err);

/* kernels.c: the argv of our own kernel for LANGUAGE ("bash",
   "javascript" or "typescript"), extracting its scripts on first use.
   {connection_file} stands for the connection file.  */
json_t *builtin_kernel_argv (const char *language, hutch_error_t *err);

/* result-formatters.c: the Python statement that installs the e2b/chart
   and e2b/data formatters in the running IPython shell.  Allocated.  */
char *result_formatters_code (void);

/* snippets.c: code for hidden executions, per language; NULL when the
   language has none.  Allocated.  */
char *snippet_chdir (const char *language, const char *path);
/* Set every variable of VARS (an object of strings).  */
char *snippet_setenv (const char *language, json_t *vars);
/* Put back the variables of VARS: to their value in GLOBALS, or unset.  */
char *snippet_restore_env (const char *language, json_t *vars, json_t *globals);
/* Check CODE without running it; prints {"valid": ...} as one JSON line.  */
char *snippet_validate (const char *language, const char *code);
