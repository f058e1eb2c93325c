/* Users inside the sandbox and the paths they name.  */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct agent_user
{
  char name[64];
  uid_t uid;
  gid_t gid;
  char home[256];
  char shell[256];
};

/* Look NAME up in the sandbox's /etc/passwd.  Returns 0 or -1 (ENOENT).  */
int agent_user_lookup (const char *name, struct agent_user *ret);

/* The user named by an "Authorization: Basic base64(name:)" header, else
   the default user.  Returns 0, or -1 when the header is malformed or
   names an unknown user (the caller answers `unauthenticated`).  */
int agent_user_from_basic_auth (const char *header, struct agent_user *ret);

/* Resolve PATH for USER as envd does: "" is the home directory, "~" and
   "~/x" expand to it, relative paths join onto it; "~other" is an error.
   The result is absolute and lexically cleaned ("." and ".." resolved, no
   trailing slash).  Returns an allocated string or NULL (errno EINVAL).  */
char *agent_resolve_path (const struct agent_user *user, const char *path);

/* Run the calling thread's filesystem accesses as USER (setfsuid/setfsgid
   and supplementary groups are per thread): permissions are checked and
   files created as that user.  agent_fs_restore() returns to root.  */
void agent_fs_as (const struct agent_user *user);
void agent_fs_restore (void);
