/* filesystem.Filesystem watches over inotify: the WatchDir server stream
   and the polled watchers (CreateWatcher, GetWatcherEvents,
   RemoveWatcher).  Each watch runs one thread that reads its inotify
   descriptor as the calling user.  */
#define _GNU_SOURCE
#include "connect.h"
#include "fs-internal.h"
#include "libhutch/util.h"
#include "services.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>

#define WATCH_MASK                                                                                 \
  (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_MOVE_SELF | IN_ATTRIB | IN_MODIFY | IN_DELETE      \
   | IN_DELETE_SELF)
/* A stream's client going away has no notification: the thread looks at
   the stream this often.  */
#define STREAM_CHECK_MS 1000
/* Bytes a stream may have queued for its client before the watch waits.  */
#define STREAM_MAX_BUFFERED (1024 * 1024)
/* Unread events a watcher keeps before it fails with an overflow.  */
#define WATCHER_MAX_EVENTS 65536

struct watch_dir
{
  int wd;
  char *rel; /* "" for the root */
};

struct watch
{
  int ifd, stop_fd;
  char *root;
  bool recursive, include_entry;
  struct agent_user user;
  struct fs_names names;
  struct watch_dir *dirs; /* sorted by wd: the kernel hands them out increasing */
  size_t ndirs, cap;
  /* Where events go: a stream, or a watcher's buffer.  Returns false to
     stop the watch.  */
  bool (*emit) (struct watch *w, json_t *event);
  struct connect_stream *stream;
  struct watcher *watcher;
};

struct watcher
{
  char id[40];
  struct watch *w;
  pthread_t thread;
  pthread_mutex_t mu;
  json_t *events;
  char *error;
  struct watcher *next;
};

static pthread_mutex_t watchers_mu = PTHREAD_MUTEX_INITIALIZER;
static struct watcher *watchers;

/* The directory table.  */

static struct watch_dir *
dir_find (struct watch *w, int wd)
{
  size_t lo = 0, hi = w->ndirs;
  while (lo < hi)
    {
      size_t mid = (lo + hi) / 2;
      if (w->dirs[mid].wd == wd)
        return &w->dirs[mid];
      if (w->dirs[mid].wd < wd)
        lo = mid + 1;
      else
        hi = mid;
    }
  return NULL;
}

static void
dir_insert (struct watch *w, int wd, const char *rel)
{
  struct watch_dir *d = dir_find (w, wd);
  size_t at = w->ndirs;

  if (d)
    {
      free (d->rel);
      d->rel = xstrdup (rel);
      return;
    }
  if (w->ndirs == w->cap)
    {
      w->cap = w->cap ? w->cap * 2 : 16;
      w->dirs = xrealloc (w->dirs, w->cap * sizeof *w->dirs);
    }
  while (at > 0 && w->dirs[at - 1].wd > wd)
    at--;
  memmove (&w->dirs[at + 1], &w->dirs[at], (w->ndirs - at) * sizeof *w->dirs);
  w->dirs[at] = (struct watch_dir){ wd, xstrdup (rel) };
  w->ndirs++;
}

static void
dir_remove (struct watch *w, int wd)
{
  struct watch_dir *d = dir_find (w, wd);
  size_t at;
  if (d == NULL)
    return;
  at = (size_t)(d - w->dirs);
  free (d->rel);
  memmove (&w->dirs[at], &w->dirs[at + 1], (w->ndirs - at - 1) * sizeof *w->dirs);
  w->ndirs--;
}

static char *
join (const char *a, const char *b)
{
  char *out;
  if (*a == '\0')
    return xstrdup (b);
  if (*b == '\0')
    return xstrdup (a);
  xasprintf (&out, "%s%s%s", a, strcmp (a, "/") == 0 ? "" : "/", b);
  return out;
}

static bool
has_prefix_dir (const char *rel, const char *prefix)
{
  size_t n = strlen (prefix);
  return strncmp (rel, prefix, n) == 0 && (rel[n] == '\0' || rel[n] == '/');
}

/* Watching.  */

static json_t *make_event (struct watch *w, const char *name, const char *type, bool want_entry);

static bool
is_real_dir (DIR *d, const struct dirent *de)
{
  struct stat st;
  if (de->d_type != DT_UNKNOWN)
    return de->d_type == DT_DIR;
  return fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode);
}

/* Watch the directory REL under the root and, when recursive, every real
   directory below it.  ANNOUNCE reports what is found inside as created:
   a new tree (mkdir -p a/b/c) is mostly built before its watches exist.
   Returns 0 or -1 with errno set (only for REL itself and for running out
   of watches: subdirectories that vanish or deny access are skipped).  */
static int
add_tree (struct watch *w, const char *rel, bool announce)
{
  cleanup_free char *abs = join (w->root, rel);
  uint32_t extra = *rel ? IN_DONT_FOLLOW : 0;
  cleanup_dir DIR *d = NULL;
  struct dirent *de;
  int wd = inotify_add_watch (w->ifd, abs, WATCH_MASK | IN_ONLYDIR | extra);

  if (wd < 0)
    return -1;
  dir_insert (w, wd, rel);
  if (!w->recursive || (d = opendir (abs)) == NULL)
    return 0;
  while ((de = readdir (d)))
    {
      cleanup_free char *child = NULL;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      child = join (rel, de->d_name);
      if (announce)
        w->emit (w, make_event (w, child, "EVENT_TYPE_CREATE", true));
      if (is_real_dir (d, de) && add_tree (w, child, announce) < 0 && errno == ENOSPC)
        return -1;
    }
  return 0;
}

/* Stop watching REL and everything below it.  */
static void
remove_tree (struct watch *w, const char *rel)
{
  for (size_t i = w->ndirs; i-- > 0;)
    if (*w->dirs[i].rel && has_prefix_dir (w->dirs[i].rel, rel))
      {
        inotify_rm_watch (w->ifd, w->dirs[i].wd);
        dir_remove (w, w->dirs[i].wd);
      }
}

static void
watch_free (struct watch *w)
{
  if (w == NULL)
    return;
  if (w->ifd >= 0)
    close (w->ifd);
  if (w->stop_fd >= 0)
    close (w->stop_fd);
  for (size_t i = 0; i < w->ndirs; i++)
    free (w->dirs[i].rel);
  free (w->dirs);
  free (w->root);
  free (w);
}

/* Events.  */

static const struct
{
  uint32_t mask;
  const char *type;
} ops[] = {
  /* The order envd reports the ops of one inotify event in.  */
  { IN_CREATE | IN_MOVED_TO, "EVENT_TYPE_CREATE" },
  { IN_MOVED_FROM | IN_MOVE_SELF, "EVENT_TYPE_RENAME" },
  { IN_ATTRIB, "EVENT_TYPE_CHMOD" },
  { IN_MODIFY, "EVENT_TYPE_WRITE" },
  { IN_DELETE | IN_DELETE_SELF, "EVENT_TYPE_REMOVE" },
};

static json_t *
make_event (struct watch *w, const char *name, const char *type, bool want_entry)
{
  json_t *ev = json_pack ("{s:s, s:s}", "name", name, "type", type);

  if (want_entry && w->include_entry)
    {
      cleanup_free char *abs = strcmp (name, ".") == 0 ? xstrdup (w->root) : join (w->root, name);
      json_t *entry = fs_entry_info (abs, &w->names);
      if (entry)
        json_object_set_new (ev, "entry", entry);
    }
  return ev;
}

/* Keep the directory table in step with directories appearing, moving
   and vanishing under a recursive watch.  */
static void
track_dirs (struct watch *w, const struct inotify_event *ie, const char *rel)
{
  if (ie->mask & IN_IGNORED)
    {
      dir_remove (w, ie->wd);
      return;
    }
  if (!w->recursive || !(ie->mask & IN_ISDIR) || ie->len == 0)
    return;
  if (ie->mask & IN_MOVED_FROM)
    remove_tree (w, rel);
  if (ie->mask & (IN_CREATE | IN_MOVED_TO))
    add_tree (w, rel, true);
}

/* Translate one inotify event.  Returns false to stop the watch.  */
static bool
handle_event (struct watch *w, const struct inotify_event *ie)
{
  struct watch_dir *d = dir_find (w, ie->wd);
  cleanup_free char *rel = NULL;
  bool is_root = d && *d->rel == '\0';

  /* A subdirectory's own events repeat what its parent reports.  */
  if (d == NULL || (ie->len == 0 && !is_root))
    {
      track_dirs (w, ie, "");
      return true;
    }
  rel = ie->len ? join (d->rel, ie->name) : xstrdup (".");
  for (size_t i = 0; i < ARRAY_SIZE (ops); i++)
    if ((ie->mask & ops[i].mask)
        && !w->emit (w, make_event (w, rel, ops[i].type, i == 0 || i == 2 || i == 3)))
      return false;
  track_dirs (w, ie, rel);
  return true;
}

/* Read and translate what is queued.  Returns false to stop the watch.  */
static bool
drain (struct watch *w)
{
  char buf[64 * 1024] __attribute__ ((aligned (__alignof__(struct inotify_event))));
  ssize_t n;

  while ((n = read (w->ifd, buf, sizeof buf)) > 0)
    for (char *p = buf; p < buf + n;)
      {
        const struct inotify_event *ie = (const struct inotify_event *)p;
        p += sizeof *ie + ie->len;
        if (ie->mask & IN_Q_OVERFLOW)
          return w->emit (w, NULL);
        if (!handle_event (w, ie))
          return false;
      }
  return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/* True while a stream watch should go on.  */
static bool
stream_alive (struct watch *w, int *timeout)
{
  long left;
  if (w->stream == NULL)
    return true;
  if (connect_stream_closed (w->stream))
    return false;
  left = connect_stream_deadline_ms (w->stream);
  if (left == 0)
    {
      connect_stream_end (w->stream, "deadline_exceeded", "context deadline exceeded");
      return false;
    }
  *timeout = left > 0 && left < STREAM_CHECK_MS ? (int)left : STREAM_CHECK_MS;
  return true;
}

static void
watch_loop (struct watch *w)
{
  struct pollfd p[2]
      = { { .fd = w->ifd, .events = POLLIN }, { .fd = w->stop_fd, .events = POLLIN } };

  FS_AS (&w->user);
  for (;;)
    {
      int timeout = -1;
      if (!stream_alive (w, &timeout))
        return;
      if (poll (p, 2, timeout) < 0 && errno != EINTR)
        return;
      if (p[1].revents)
        return;
      if ((p[0].revents & POLLIN) && !drain (w))
        return;
    }
}

/* Sinks.  */

static bool
emit_stream (struct watch *w, json_t *event)
{
  if (event == NULL)
    {
      connect_stream_end (w->stream, "internal", "watcher error: event queue overflow");
      return false;
    }
  if (!connect_stream_send (w->stream, json_pack ("{s:o}", "filesystem", event)))
    return false;
  /* A client that does not read holds events back in the kernel's queue,
     which overflows into a stream error, instead of in our memory.  */
  connect_stream_wait_drained (w->stream, STREAM_MAX_BUFFERED, -1);
  return true;
}

static bool
emit_watcher (struct watch *w, json_t *event)
{
  struct watcher *wt = w->watcher;
  bool ok;

  pthread_mutex_lock (&wt->mu);
  ok = event && json_array_size (wt->events) < WATCHER_MAX_EVENTS;
  if (ok)
    json_array_append (wt->events, event);
  else if (wt->error == NULL)
    wt->error = xstrdup ("watcher error: event queue overflow");
  pthread_mutex_unlock (&wt->mu);
  json_decref (event);
  return ok;
}

/* Setting up.  */

struct watch_req
{
  const char *path;
  bool recursive, include_entry;
};

static void
parse_watch_req (json_t *msg, struct watch_req *r)
{
  r->path = fs_get_string (msg, "path", NULL);
  r->recursive = json_is_true (connect_get (msg, "recursive", NULL));
  r->include_entry = json_is_true (connect_get (msg, "includeEntry", "include_entry"));
}

/* Validate and start watching R->path as USER.  On failure returns NULL
   with the Connect code and message of the error.  */
static struct watch *
watch_new (const struct agent_user *user, const struct watch_req *r, const char **code, char *msg,
           size_t msg_size)
{
  struct watch *w = xzalloc (sizeof *w);
  struct stat st;

  w->ifd = w->stop_fd = -1;
  w->user = *user;
  w->recursive = r->recursive;
  w->include_entry = r->include_entry;
  w->root = r->path ? agent_resolve_path (user, r->path) : NULL;
  *code = "invalid_argument";
  if (w->root == NULL)
    snprintf (msg, msg_size, "invalid path");
  else
    {
      FS_AS (user);
      if (stat (w->root, &st) < 0)
        {
          *code = fs_errno_code (errno);
          snprintf (msg, msg_size, "path %s not found: %s", w->root, strerror (errno));
        }
      else if (!S_ISDIR (st.st_mode))
        snprintf (msg, msg_size, "path %s not a directory", w->root);
      else if ((w->ifd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC)) < 0
               || (w->stop_fd = eventfd (0, EFD_CLOEXEC)) < 0 || add_tree (w, "", false) < 0)
        {
          *code = fs_errno_code (errno);
          snprintf (msg, msg_size, "error watching %s: %s", w->root, strerror (errno));
        }
      else
        return w;
    }
  watch_free (w);
  return NULL;
}

/* WatchDir.  */

static void *
stream_thread (void *arg)
{
  struct watch *w = arg;
  watch_loop (w);
  connect_stream_unref (w->stream);
  watch_free (w);
  return NULL;
}

static bool
start_thread (void *(*fn) (void *), void *arg, pthread_t *ret)
{
  pthread_t t;
  if (pthread_create (ret ? ret : &t, NULL, fn, arg) != 0)
    return false;
  if (ret == NULL)
    pthread_detach (t);
  return true;
}

static void
start_stream_watch (struct http_req *req, struct connect_stream *s, json_t *msg)
{
  struct agent_user user;
  struct watch_req r;
  struct watch *w;
  const char *code;
  char err[512];

  if (fs_rpc_user (req, &user) < 0)
    {
      connect_stream_end (s, "unauthenticated", "invalid or unknown user");
      return;
    }
  parse_watch_req (msg, &r);
  w = watch_new (&user, &r, &code, err, sizeof err);
  if (w == NULL)
    {
      connect_stream_end (s, code, "%s", err);
      return;
    }
  w->stream = s;
  w->emit = emit_stream;
  connect_stream_send (s, json_pack ("{s:{}}", "start"));
  connect_stream_ref (s);
  if (!start_thread (stream_thread, w, NULL))
    {
      connect_stream_unref (s);
      watch_free (w);
      connect_stream_end (s, "internal", "cannot start the watch thread");
    }
}

enum MHD_Result
fs_watch_dir (struct http_req *req)
{
  json_t *msg = connect_request (req, true);
  struct connect_stream *s;
  enum MHD_Result res;

  if (msg == NULL)
    return MHD_YES;
  s = connect_stream_new (req, json_pack ("{s:{}}", "keepalive"));
  start_stream_watch (req, s, msg);
  json_decref (msg);
  res = connect_stream_respond (s);
  connect_stream_unref (s);
  return res;
}

/* Polled watchers.  */

static void *
watcher_thread (void *arg)
{
  watch_loop (arg);
  return NULL;
}

static void
watcher_free (struct watcher *wt)
{
  uint64_t one = 1;
  ssize_t n = write (wt->w->stop_fd, &one, sizeof one);

  (void)n; /* adding 1 to a fresh eventfd cannot fail */
  pthread_join (wt->thread, NULL);
  watch_free (wt->w);
  json_decref (wt->events);
  free (wt->error);
  pthread_mutex_destroy (&wt->mu);
  free (wt);
}

static void
new_watcher_id (char *out, size_t size)
{
  static unsigned long long counter;
  unsigned char rnd[12];
  size_t w = 0;

  if (getrandom (rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
    {
      unsigned long long v[2] = { now_ns (), __atomic_add_fetch (&counter, 1, __ATOMIC_RELAXED) };
      memcpy (rnd, v, sizeof rnd);
    }
  out[w++] = 'w';
  for (size_t i = 0; i < sizeof rnd && w + 3 <= size; i++)
    w += (size_t)snprintf (out + w, size - w, "%02x", rnd[i]);
}

/* Look the watcher of field watcherId up, under watchers_mu (held on
   success).  Queues not_found and returns NULL otherwise.  */
static struct watcher *
find_watcher (struct http_req *req, json_t *msg, struct watcher ***link, enum MHD_Result *res)
{
  const char *id = fs_get_string (msg, "watcherId", "watcher_id");

  pthread_mutex_lock (&watchers_mu);
  for (struct watcher **p = &watchers; *p; p = &(*p)->next)
    if (id && strcmp ((*p)->id, id) == 0)
      {
        if (link)
          *link = p;
        return *p;
      }
  pthread_mutex_unlock (&watchers_mu);
  *res = connect_error (req->conn, "not_found", "watcher with id %s not found", id ? id : "");
  return NULL;
}

static json_t *
rpc_begin (struct http_req *req, struct agent_user *user, enum MHD_Result *res)
{
  json_t *msg = connect_request (req, false);
  *res = MHD_YES;
  if (msg && fs_rpc_user (req, user) < 0)
    {
      json_decref (msg);
      *res = connect_error (req->conn, "unauthenticated", "invalid or unknown user");
      return NULL;
    }
  return msg;
}

enum MHD_Result
fs_create_watcher (struct http_req *req)
{
  struct agent_user user;
  struct watch_req r;
  struct watcher *wt;
  struct watch *w;
  enum MHD_Result res;
  const char *code;
  char err[512];
  json_t *msg = rpc_begin (req, &user, &res);

  if (msg == NULL)
    return res;
  parse_watch_req (msg, &r);
  w = watch_new (&user, &r, &code, err, sizeof err);
  json_decref (msg);
  if (w == NULL)
    return connect_error (req->conn, code, "%s", err);
  wt = xzalloc (sizeof *wt);
  wt->w = w;
  wt->events = json_array ();
  pthread_mutex_init (&wt->mu, NULL);
  new_watcher_id (wt->id, sizeof wt->id);
  w->watcher = wt;
  w->emit = emit_watcher;
  if (!start_thread (watcher_thread, w, &wt->thread))
    {
      json_decref (wt->events);
      pthread_mutex_destroy (&wt->mu);
      free (wt);
      watch_free (w);
      return connect_error (req->conn, "internal", "cannot start the watch thread");
    }
  pthread_mutex_lock (&watchers_mu);
  wt->next = watchers;
  watchers = wt;
  pthread_mutex_unlock (&watchers_mu);
  return connect_reply (req->conn, json_pack ("{s:s}", "watcherId", wt->id));
}

enum MHD_Result
fs_get_watcher_events (struct http_req *req)
{
  struct agent_user user;
  enum MHD_Result res;
  json_t *msg = rpc_begin (req, &user, &res), *events, *reply;
  struct watcher *wt;
  cleanup_free char *error = NULL;

  if (msg == NULL)
    return res;
  wt = find_watcher (req, msg, NULL, &res);
  json_decref (msg);
  if (wt == NULL)
    return res;
  pthread_mutex_lock (&wt->mu);
  events = wt->events;
  wt->events = json_array ();
  if (wt->error)
    error = xstrdup (wt->error);
  pthread_mutex_unlock (&wt->mu);
  pthread_mutex_unlock (&watchers_mu);
  if (error)
    {
      json_decref (events);
      return connect_error (req->conn, "internal", "%s", error);
    }
  reply = json_object ();
  if (json_array_size (events))
    json_object_set (reply, "events", events);
  json_decref (events);
  return connect_reply (req->conn, reply);
}

enum MHD_Result
fs_remove_watcher (struct http_req *req)
{
  struct agent_user user;
  enum MHD_Result res;
  json_t *msg = rpc_begin (req, &user, &res);
  struct watcher **link = NULL, *wt;

  if (msg == NULL)
    return res;
  wt = find_watcher (req, msg, &link, &res);
  json_decref (msg);
  if (wt == NULL)
    return res;
  *link = wt->next;
  pthread_mutex_unlock (&watchers_mu);
  watcher_free (wt);
  return connect_reply (req->conn, json_object ());
}
