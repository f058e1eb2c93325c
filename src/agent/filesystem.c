/* filesystem.Filesystem: Stat, MakeDir, Move, ListDir, Remove, and the
   EntryInfo and metadata helpers the watch service and /files share.  */
#define _GNU_SOURCE
#include "connect.h"
#include "fs-internal.h"
#include "libhutch/util.h"
#include "services.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

/* ListDir answers at most this many entries (a deep listing of / would
   otherwise grow without bound).  */
#define LIST_MAX_ENTRIES 200000

/* EntryInfo.  */

/* Go's FileMode.String(): type letters from "dalTLDpSugct?", then rwx.  */
static void
go_mode_string (mode_t m, char out[24])
{
  const bool bits[] = {
    S_ISDIR (m),
    false,
    false,
    false,
    S_ISLNK (m),
    S_ISBLK (m) || S_ISCHR (m),
    S_ISFIFO (m),
    S_ISSOCK (m),
    (m & S_ISUID) != 0,
    (m & S_ISGID) != 0,
    S_ISCHR (m),
    (m & S_ISVTX) != 0,
    false,
  };
  static const char letters[] = "dalTLDpSugct?";
  static const char rwx[] = "rwxrwxrwx";
  size_t w = 0;

  for (size_t i = 0; i < ARRAY_SIZE (bits); i++)
    if (bits[i])
      out[w++] = letters[i];
  if (w == 0)
    out[w++] = '-';
  for (int i = 0; i < 9; i++)
    out[w++] = (m & (1u << (8 - i))) ? rwx[i] : '-';
  out[w] = '\0';
}

static const char *
file_type_name (mode_t m)
{
  if (S_ISREG (m))
    return "FILE_TYPE_FILE";
  if (S_ISDIR (m))
    return "FILE_TYPE_DIRECTORY";
  if (S_ISLNK (m))
    return "FILE_TYPE_SYMLINK";
  return NULL;
}

static const char *
cached_name (struct fs_names *names, bool group, unsigned id)
{
  unsigned *n = group ? &names->ngroups : &names->nusers;
  __typeof__ (names->users[0]) *slots = group ? names->groups : names->users;
  char buf[4096];
  unsigned slot;

  for (unsigned i = 0; i < *n && i < FS_NAMES_SLOTS; i++)
    if (slots[i].id == id)
      return slots[i].name;
  slot = (*n)++ % FS_NAMES_SLOTS;
  slots[slot].id = id;
  snprintf (slots[slot].name, sizeof slots[slot].name, "%u", id);
  if (group)
    {
      struct group gr, *res = NULL;
      if (getgrgid_r (id, &gr, buf, sizeof buf, &res) == 0 && res)
        snprintf (slots[slot].name, sizeof slots[slot].name, "%s", gr.gr_name);
    }
  else
    {
      struct passwd pw, *res = NULL;
      if (getpwuid_r (id, &pw, buf, sizeof buf, &res) == 0 && res)
        snprintf (slots[slot].name, sizeof slots[slot].name, "%s", pw.pw_name);
    }
  return slots[slot].name;
}

static const char *
base_name (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash && slash[1] ? slash + 1 : path;
}

/* The path the symlink PATH resolves to, as the kernel resolves it (no
   userspace walking of links), or NULL when it dangles.  */
static char *
resolve_link (const char *path)
{
  cleanup_close int fd = open (path, O_PATH | O_CLOEXEC);
  char proc[64], buf[PATH_MAX];
  ssize_t n;

  if (fd < 0)
    return NULL;
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
  n = readlink (proc, buf, sizeof buf - 1);
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  return xstrdup (buf);
}

/* Type, mode and symlinkTarget: a symlink reports its target's.  */
static void
add_type (json_t *e, const char *path, const struct stat *st)
{
  const char *type = file_type_name (st->st_mode);
  unsigned mode = st->st_mode & 0777;

  if (S_ISLNK (st->st_mode))
    {
      struct stat target;
      bool ok = stat (path, &target) == 0;
      cleanup_free char *resolved = ok ? resolve_link (path) : NULL;

      type = ok ? file_type_name (target.st_mode) : NULL;
      mode = ok ? (target.st_mode & 0777) : 0;
      json_object_set_new (e, "symlinkTarget", json_string (resolved ? resolved : path));
    }
  if (type)
    json_object_set_new (e, "type", json_string (type));
  if (mode)
    json_object_set_new (e, "mode", json_integer (mode));
}

json_t *
fs_entry_info (const char *path, struct fs_names *names)
{
  struct fs_names local = { 0 };
  struct stat st;
  char perms[24], size[32];
  cleanup_free char *mtime = NULL;
  json_t *e, *meta;

  if (lstat (path, &st) < 0)
    return NULL;
  if (names == NULL)
    names = &local;
  e = json_object ();
  json_object_set_new (e, "name", json_string (base_name (path)));
  json_object_set_new (e, "path", json_string (path));
  add_type (e, path, &st);
  if (st.st_size)
    {
      snprintf (size, sizeof size, "%lld", (long long)st.st_size);
      json_object_set_new (e, "size", json_string (size));
    }
  go_mode_string (st.st_mode, perms);
  json_object_set_new (e, "permissions", json_string (perms));
  json_object_set_new (e, "owner", json_string (cached_name (names, false, st.st_uid)));
  json_object_set_new (e, "group", json_string (cached_name (names, true, st.st_gid)));
  mtime = connect_timestamp (st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  json_object_set_new (e, "modifiedTime", json_string (mtime));
  meta = fs_meta_read (path);
  if (meta)
    json_object_set_new (e, "metadata", meta);
  return e;
}

/* Metadata.  */

static bool
meta_valid (json_t *meta)
{
  const char *key;
  json_t *value;

  if (!json_is_object (meta))
    return false;
  json_object_foreach (meta, key, value) if (!json_is_string (value)) return false;
  return true;
}

json_t *
fs_meta_read (const char *path)
{
  char buf[FS_META_MAX + 1];
  json_error_t jerr;
  ssize_t n = getxattr (path, FS_META_XATTR, buf, sizeof buf - 1);
  json_t *meta;

  if (n <= 0)
    return NULL;
  meta = json_loadb (buf, (size_t)n, 0, &jerr);
  if (!meta_valid (meta) || json_object_size (meta) == 0)
    {
      json_decref (meta);
      return NULL;
    }
  return meta;
}

int
fs_meta_write (int fd, json_t *meta)
{
  cleanup_free char *text = NULL;

  if (meta == NULL || json_object_size (meta) == 0)
    {
      /* Devices and FIFOs take no user xattrs (EPERM): nothing to remove.  */
      if (fremovexattr (fd, FS_META_XATTR) < 0 && errno != ENODATA && errno != ENOTSUP
          && errno != EPERM)
        return -1;
      return 0;
    }
  text = json_dumps (meta, JSON_COMPACT | JSON_SORT_KEYS);
  if (strlen (text) > FS_META_MAX)
    {
      errno = E2BIG;
      return -1;
    }
  return fsetxattr (fd, FS_META_XATTR, text, strlen (text), 0);
}

/* Requests.  */

const char *
fs_errno_code (int err)
{
  switch (err)
    {
    case ENOENT:
    case ENOTDIR:
      return "not_found";
    case EACCES:
    case EPERM:
    case EROFS:
      return "permission_denied";
    case EEXIST:
    case ENOTEMPTY:
      return "already_exists";
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
      return "resource_exhausted";
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
    case EISDIR:
    case EXDEV:
    case EBUSY:
      return "invalid_argument";
    default:
      return "internal";
    }
}

int
fs_rpc_user (struct http_req *req, struct agent_user *ret)
{
  return agent_user_from_basic_auth (http_header (req->conn, "Authorization"), ret);
}

const char *
fs_get_string (json_t *msg, const char *camel, const char *snake)
{
  json_t *v = connect_get (msg, camel, snake);
  if (v == NULL || json_is_null (v))
    return "";
  return json_is_string (v) ? json_string_value (v) : NULL;
}

/* One unary call: its message and user, and the result of the response
   queued on failure.  */
struct call
{
  struct http_req *req;
  json_t *msg;
  struct agent_user user;
  enum MHD_Result res;
};

static void
call_end (struct call *c)
{
  json_decref (c->msg);
}

static bool
call_begin (struct call *c, struct http_req *req)
{
  c->req = req;
  c->msg = connect_request (req, false);
  if (c->msg == NULL)
    {
      c->res = MHD_YES;
      return false;
    }
  if (fs_rpc_user (req, &c->user) < 0)
    {
      c->res = connect_error (req->conn, "unauthenticated", "invalid or unknown user");
      return false;
    }
  return true;
}

/* The resolved path in field CAMEL/SNAKE, or NULL after queueing an error.  */
static char *
call_path (struct call *c, const char *camel, const char *snake)
{
  const char *raw = fs_get_string (c->msg, camel, snake);
  char *path = raw ? agent_resolve_path (&c->user, raw) : NULL;

  if (path == NULL)
    c->res = connect_error (c->req->conn, "invalid_argument", "invalid path in field %s", camel);
  return path;
}

static enum MHD_Result
errno_error (struct call *c, int err, const char *what, const char *path)
{
  return connect_error (c->req->conn, fs_errno_code (err), "%s '%s': %s", what, path,
                        strerror (err));
}

static enum MHD_Result
reply_entry (struct call *c, const char *path)
{
  json_t *entry = fs_entry_info (path, NULL);
  if (entry == NULL)
    return errno_error (c, errno, "stat", path);
  return connect_reply (c->req->conn, json_pack ("{s:o}", "entry", entry));
}

#define CALL __attribute__ ((cleanup (call_end))) struct call

enum MHD_Result
fs_stat (struct http_req *req)
{
  CALL c = { 0 };
  cleanup_free char *path = NULL;

  if (!call_begin (&c, req) || (path = call_path (&c, "path", NULL)) == NULL)
    return c.res;
  FS_AS (&c.user);
  return reply_entry (&c, path);
}

enum MHD_Result
fs_make_dir (struct http_req *req)
{
  CALL c = { 0 };
  cleanup_free char *path = NULL;
  struct stat st;

  if (!call_begin (&c, req) || (path = call_path (&c, "path", NULL)) == NULL)
    return c.res;
  FS_AS (&c.user);
  if (stat (path, &st) == 0)
    return S_ISDIR (st.st_mode)
               ? connect_error (req->conn, "already_exists", "directory already exists: %s", path)
               : connect_error (req->conn, "invalid_argument",
                                "path already exists but it is not a directory: %s", path);
  if (errno == ENOTDIR)
    return connect_error (req->conn, "invalid_argument", "a parent of %s is not a directory", path);
  if (errno != ENOENT)
    return errno_error (&c, errno, "stat", path);
  if (mkdir_p_at (AT_FDCWD, path, 0755) < 0)
    return errno_error (&c, errno, "mkdir", path);
  return reply_entry (&c, path);
}

static char *
parent_dir (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash == NULL || slash == path ? xstrdup ("/") : xstrndup (path, (size_t)(slash - path));
}

enum MHD_Result
fs_move (struct http_req *req)
{
  CALL c = { 0 };
  cleanup_free char *src = NULL;
  cleanup_free char *dst = NULL;
  cleanup_free char *parent = NULL;
  struct stat st;

  if (!call_begin (&c, req) || (src = call_path (&c, "source", NULL)) == NULL
      || (dst = call_path (&c, "destination", NULL)) == NULL)
    return c.res;
  FS_AS (&c.user);
  if (lstat (src, &st) < 0)
    return errno_error (&c, errno, "source", src);
  parent = parent_dir (dst);
  if (mkdir_p_at (AT_FDCWD, parent, 0755) < 0)
    return errno_error (&c, errno, "mkdir", parent);
  if (rename (src, dst) < 0)
    return errno_error (&c, errno, "rename", src);
  return reply_entry (&c, dst);
}

/* ListDir.  */

struct listing
{
  json_t *entries;
  unsigned depth;
  struct fs_names names;
};

static char *
join_path (const char *dir, const char *name)
{
  char *out;
  xasprintf (&out, "%s/%s", strcmp (dir, "/") == 0 ? "" : dir, name);
  return out;
}

static bool
is_real_dir (const struct dirent *de, const char *path)
{
  struct stat st;
  if (de->d_type != DT_UNKNOWN)
    return de->d_type == DT_DIR;
  return lstat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

/* Append the entries of DIR at LEVEL (1: its children).  Symlinked
   subdirectories are reported but not entered; unreadable subdirectories
   are skipped.  Returns 0 or -1 with errno set.  */
static int
list_level (struct listing *l, const char *dir, unsigned level)
{
  cleanup_dir DIR *d = opendir (dir);
  struct dirent *de;

  if (d == NULL)
    return level == 1 ? -1 : 0;
  while ((de = readdir (d)))
    {
      cleanup_free char *child = NULL;
      json_t *entry;

      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      child = join_path (dir, de->d_name);
      entry = fs_entry_info (child, &l->names);
      if (entry == NULL)
        continue;
      if (json_array_size (l->entries) >= LIST_MAX_ENTRIES)
        {
          json_decref (entry);
          errno = E2BIG;
          return -1;
        }
      json_array_append_new (l->entries, entry);
      if (level < l->depth && is_real_dir (de, child) && list_level (l, child, level + 1) < 0)
        return -1;
    }
  return 0;
}

static bool
entry_is_dir (json_t *e)
{
  const char *t = json_string_value (json_object_get (e, "type"));
  return t && strcmp (t, "FILE_TYPE_DIRECTORY") == 0;
}

/* Directories first, then by name ignoring case, as envd orders them.  */
static int
entry_cmp (const void *a, const void *b)
{
  json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  bool dx = entry_is_dir (x), dy = entry_is_dir (y);

  if (dx != dy)
    return dx ? -1 : 1;
  return strcasecmp (json_string_value (json_object_get (x, "name")),
                     json_string_value (json_object_get (y, "name")));
}

static json_t *
sorted_entries (json_t *entries)
{
  size_t n = json_array_size (entries);
  cleanup_free json_t **v = xmalloc ((n ? n : 1) * sizeof *v);
  json_t *out = json_array ();

  for (size_t i = 0; i < n; i++)
    v[i] = json_array_get (entries, i);
  qsort (v, n, sizeof *v, entry_cmp);
  for (size_t i = 0; i < n; i++)
    json_array_append (out, v[i]);
  return out;
}

enum MHD_Result
fs_list_dir (struct http_req *req)
{
  CALL c = { 0 };
  cleanup_free char *path = NULL;
  struct listing l = { 0 };
  long long depth = 0;
  struct stat st;
  json_t *reply;

  if (!call_begin (&c, req) || (path = call_path (&c, "path", NULL)) == NULL)
    return c.res;
  if (!connect_get_int (c.msg, "depth", NULL, &depth) || depth < 0 || depth > UINT_MAX)
    return connect_error (req->conn, "invalid_argument", "invalid depth");
  FS_AS (&c.user);
  if (stat (path, &st) < 0)
    return errno_error (&c, errno, "directory not found", path);
  if (!S_ISDIR (st.st_mode))
    return connect_error (req->conn, "invalid_argument", "path is not a directory: %s", path);
  l.depth = depth ? (unsigned)depth : 1;
  l.entries = json_array ();
  if (list_level (&l, path, 1) < 0)
    {
      int err = errno;
      json_decref (l.entries);
      if (err == E2BIG)
        return connect_error (req->conn, "resource_exhausted", "more than %d entries under %s",
                              LIST_MAX_ENTRIES, path);
      return errno_error (&c, err, "read directory", path);
    }
  reply = json_object ();
  if (json_array_size (l.entries))
    json_object_set_new (reply, "entries", sorted_entries (l.entries));
  json_decref (l.entries);
  return connect_reply (req->conn, reply);
}

enum MHD_Result
fs_remove (struct http_req *req)
{
  CALL c = { 0 };
  cleanup_free char *path = NULL;

  if (!call_begin (&c, req) || (path = call_path (&c, "path", NULL)) == NULL)
    return c.res;
  FS_AS (&c.user);
  if (rm_rf_at (AT_FDCWD, path) < 0)
    return errno_error (&c, errno, "remove", path);
  return connect_reply (req->conn, json_object ());
}
