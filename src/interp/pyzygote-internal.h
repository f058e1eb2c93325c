/* pyzygote's full kernel interface (pyzygote_fork_kernel in interp.h is
   the short form): the environment and the log of a forked kernel.  */
#pragma once

#include <sys/types.h>

struct pyzygote_kernel
{
  const char *connection_file; /* Jupyter connection file, readable by UID */
  uid_t uid;
  gid_t gid;
  const char *home; /* HOME */
  const char *cwd;  /* working directory */
  /* Extra environment ("NAME=value"), NULL-terminated; may be NULL.  The
     kernel's environment is PATH, HOME, USER and LOGNAME (the name of UID
     in /etc/passwd), then these, later entries replacing earlier ones, as
     for processes the agent starts.  */
  char *const *env;
  int log_fd; /* the kernel's stdout and stderr; -1: /dev/null */
};

/* Fork a Python kernel from the preloaded interpreter, as K describes.
   Thread-safe.  Returns the kernel's pid once it runs as its user in its
   directory (it then binds the ports of the connection file within
   milliseconds), or -1 with errno: ENOSYS when pyzygote_init did not
   succeed, else why the kernel could not be set up (EPERM, ENOENT...).
   The caller reaps the kernel.  */
pid_t pyzygote_spawn (const struct pyzygote_kernel *k);

/* In the zygote, GIL held, after preloading: take every free block of
   pymalloc's partly used pools, so that kernels allocate from pools of
   their own rather than copying shared pages.  Returns the bytes taken.  */
size_t pyzygote_fill_pools (void);
