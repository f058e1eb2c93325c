/* Internals shared by the supervisor (sandbox.c) and the pre-init child
   (sandbox-child.c, rootfs.c).  */
#pragma once

#include "sandbox.h"
#include "template.h"

#include <stdint.h>

/* Where the sync socket sits in the child.  */
#define HUTCH__SYNC_FD 3

struct hutch_runtime
{
  char *data_dir;
  int data_fd;
  struct hutch_seccomp_prog seccomp;
  struct hutch_template *template_host;
};

/* Everything the child needs, prepared by the supervisor before clone so
   the child only makes syscalls and never allocates.  */
struct hutch__child_args
{
  const struct hutch_sandbox_config *config;
  const struct hutch_runtime *rt;
  const struct hutch_template *template;
  const char *id;
  uid_t uid_base;
  int sync_fd;
  char *mnt_dir;       /* DATA/mnt: a private mount point for the tmpfs */
  char *tmpfs_options; /* "size=...,mode=0755" */
  char *overlay_options;
  char *upper_dir, *work_dir, *root_dir;
  char *hosts;    /* content of the sandbox's /etc/hosts */
  char *hostname; /* content of its /etc/hostname */
};

/* Messages on the SOCK_SEQPACKET pair between supervisor and child.  */
enum hutch__sync_kind
{
  HUTCH_SYNC_CGROUP_READY = 1, /* supervisor → child: in the cgroup */
  HUTCH_SYNC_NEED_MAPS,        /* child → supervisor: new user ns made */
  HUTCH_SYNC_MAPS_DONE,        /* supervisor → child: uid/gid maps written */
  HUTCH_SYNC_RUNNING,          /* child → supervisor: isolation complete */
  HUTCH_SYNC_ERROR,            /* child → supervisor: setup failed */
  HUTCH_SYNC_READY,            /* init → supervisor: init is ready */
};

struct hutch__sync_msg
{
  int32_t kind;
  int32_t err; /* errno */
  char msg[240];
};

/* Runs in the cloned child; never returns.  */
void hutch__child_main (struct hutch__child_args *args) __attribute__ ((noreturn));

/* Build the root filesystem at args->root_dir and pivot into it.  Returns 0
   or -1 with errno set and WHAT naming the failed step.  */
int hutch__rootfs_setup (const struct hutch__child_args *args, const char **what);
