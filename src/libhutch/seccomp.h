/* The sandbox seccomp filter.

   The filter is an allowlist with a default action of EPERM, modelled on
   (and at least as strict as) Docker's default profile.  It is compiled to
   BPF once, in the supervisor, with libseccomp; each sandbox then installs
   the ready program with one seccomp(2) call, which children inherit.  */
#pragma once

#include "error.h"

#include <linux/filter.h>

struct hutch_seccomp_prog
{
  struct sock_filter *filter;
  unsigned short len;
};

/* Compile the filter.  On success RET owns an allocated program; release it
   with hutch_seccomp_prog_release().  */
int hutch_seccomp_build (struct hutch_seccomp_prog *ret, hutch_error_t *err);

void hutch_seccomp_prog_release (struct hutch_seccomp_prog *prog);

/* Set no_new_privs and install PROG for the calling thread (and so for every
   process it later creates).  Async-signal-safe: meant for the pre-exec
   sandbox child.  Returns 0 or -errno.  */
int hutch_seccomp_install (const struct hutch_seccomp_prog *prog);
