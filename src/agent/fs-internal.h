/* Shared by the filesystem service (filesystem.c, watch.c) and /files
   (files-download.c, files-upload.c): EntryInfo messages, per-file
   metadata, errno mapping and the caller's user.  Every function here
   touches the filesystem with the calling thread's credentials: call them
   between agent_fs_as() and agent_fs_restore().  */
#pragma once

#include "common/http.h"
#include "users.h"

#include <jansson.h>
#include <stdbool.h>

/* Metadata from X-Metadata-* headers lives in this xattr as a JSON object
   of strings.  */
#define FS_META_XATTR "user.hutch.meta"
#define FS_META_MAX (32 * 1024)

/* A small uid/gid -> name cache for one request.  */
#define FS_NAMES_SLOTS 8
struct fs_names
{
  struct
  {
    unsigned id;
    char name[64];
  } users[FS_NAMES_SLOTS], groups[FS_NAMES_SLOTS];
  unsigned nusers, ngroups;
};

/* The EntryInfo of PATH (not following a final symlink, whose type is its
   target's), in proto3 JSON.  PATH is reported as given.  NAMES may be
   NULL.  Returns NULL with errno set.  */
json_t *fs_entry_info (const char *path, struct fs_names *names);

/* The metadata object of PATH (following symlinks), or NULL when it has
   none.  */
json_t *fs_meta_read (const char *path);

/* Replace the metadata of the open file FD by META (an object of strings;
   NULL or empty removes it).  Returns 0 or -1 with errno set.  */
int fs_meta_write (int fd, json_t *meta);

/* The Connect code for a failed filesystem call's errno.  */
const char *fs_errno_code (int err);

/* The caller of a Connect RPC (Authorization: Basic, else the default
   user).  Returns 0, or -1 when the header names no known user.  */
int fs_rpc_user (struct http_req *req, struct agent_user *ret);

/* A string field of a request message: "" when absent, NULL when present
   with another type.  */
const char *fs_get_string (json_t *msg, const char *camel, const char *snake);

/* Scope guard: the enclosing block runs its filesystem accesses as USER.  */
static inline void
fs_restorep (int *unused)
{
  (void)unused;
  agent_fs_restore ();
}
#define FS_AS(user)                                                                                \
  __attribute__ ((cleanup (fs_restorep))) int fs_as_guard_ = (agent_fs_as (user), 0);              \
  (void)fs_as_guard_
