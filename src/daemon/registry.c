#define _GNU_SOURCE
#include "registry.h"
#include "libhutch/cgroup.h"
#include "libhutch/log.h"
#include "libhutch/sandbox.h"
#include "libhutch/template.h"
#include "libhutch/util.h"
#include "agent-client.h"
#include "spares.h"
#include "zygote.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#define BUCKETS 4096

struct node
{
  struct sbx *s;
  struct node *next;
};

static struct node *table[BUCKETS];
static int live_count;
static struct registry_limits limits;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int epoll_fd = -1, wake_fd = -1;
static pthread_t monitor;
static bool stopping;

long long
registry_now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned
bucket (const char *id)
{
  unsigned h = 5381;
  for (; *id; id++)
    h = h * 33 + (unsigned char)*id;
  return h % BUCKETS;
}

static struct sbx *
find_locked (const char *id)
{
  for (struct node *n = table[bucket (id)]; n; n = n->next)
    if (strcmp (n->s->id, id) == 0)
      return n->s;
  return NULL;
}

static void
insert_locked (struct sbx *s)
{
  struct node *n = xzalloc (sizeof *n);
  unsigned b = bucket (s->id);
  n->s = s;
  n->next = table[b];
  table[b] = n;
  live_count++;
}

static struct sbx *
remove_locked (const char *id)
{
  for (struct node **p = &table[bucket (id)]; *p; p = &(*p)->next)
    if (strcmp ((*p)->s->id, id) == 0)
      {
        struct node *n = *p;
        struct sbx *s = n->s;
        *p = n->next;
        free (n);
        live_count--;
        return s;
      }
  return NULL;
}

void
sbx_unref (struct sbx *s)
{
  int refs;
  if (s == NULL)
    return;
  pthread_mutex_lock (&mu);
  refs = --s->refs;
  pthread_mutex_unlock (&mu);
  if (refs > 0)
    return;
  if (s->pidfd >= 0)
    close (s->pidfd);
  if (s->netns_fd >= 0)
    close (s->netns_fd);
  json_decref (s->metadata);
  free (s);
}

struct sbx *
registry_get (const char *id)
{
  struct sbx *s;
  pthread_mutex_lock (&mu);
  s = find_locked (id);
  if (s)
    s->refs++;
  pthread_mutex_unlock (&mu);
  return s;
}

static void
wake_monitor (void)
{
  uint64_t one = 1;
  (void)!write (wake_fd, &one, sizeof one);
}

/* Take S out of the table and destroy it.  Safe to call twice.  */
static void
end_sandbox (struct sbx *s, const char *why)
{
  cleanup_error hutch_error_t err = NULL;
  bool was_live;

  pthread_mutex_lock (&mu);
  was_live = !s->gone && remove_locked (s->id) == s;
  s->gone = true;
  pthread_mutex_unlock (&mu);
  if (!was_live)
    return;
  epoll_ctl (epoll_fd, EPOLL_CTL_DEL, s->pidfd, NULL);
  if (zygote_destroy (s->id, &err) < 0)
    log_error ("sandbox %s: destroy: %s", s->id, err->msg);
  log_info ("sandbox %s: ended (%s)", s->id, why);
  sbx_unref (s); /* the table's reference */
  spares_wake ();
}

int
registry_kill (const char *id)
{
  struct sbx *s = registry_get (id);
  if (s == NULL)
    return -1;
  end_sandbox (s, "killed");
  sbx_unref (s);
  return 0;
}

static int
update_end (const char *id, long long timeout_s, bool extend_only)
{
  struct sbx *s;
  long long end = registry_now_ms () + timeout_s * 1000;

  pthread_mutex_lock (&mu);
  s = find_locked (id);
  if (s && (!extend_only || end > s->end_ms))
    s->end_ms = end;
  pthread_mutex_unlock (&mu);
  if (s == NULL)
    return -1;
  wake_monitor ();
  return 0;
}

int
registry_set_timeout (const char *id, long long timeout_s)
{
  return update_end (id, timeout_s, false);
}

int
registry_extend (const char *id, long long timeout_s)
{
  return update_end (id, timeout_s, true);
}

int
registry_pause (const char *id, bool paused, hutch_error_t *err)
{
  struct sbx *s = registry_get (id);
  int r;

  if (s == NULL)
    return hutch_make_error (err, ENOENT, "sandbox `%s` not found", id);
  r = zygote_freeze (id, paused, err);
  if (r == 0)
    s->paused = paused;
  sbx_unref (s);
  return r;
}

json_t *
registry_metric (const struct sbx *s)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_cgroup struct hutch_cgroup *cg = NULL;
  unsigned long long mem = 0;
  long long now = registry_now_ms ();
  char stamp[40];
  time_t t = (time_t)(now / 1000);
  struct tm tm;

  if (hutch_cgroup_open (s->id, &cg, &err) == 0)
    mem = hutch_cgroup_memory_current (cg);
  gmtime_r (&t, &tm);
  strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return json_pack ("{s:s, s:I, s:i, s:f, s:I, s:I, s:I, s:I, s:I}", "timestamp", stamp,
                    "timestampUnix", (json_int_t)(now / 1000), "cpuCount", s->cpu_count,
                    "cpuUsedPct", 0.0, "memUsed", (json_int_t)mem, "memTotal",
                    (json_int_t)s->memory_mb << 20, "memCache", (json_int_t)0, "diskUsed",
                    (json_int_t)0, "diskTotal", (json_int_t)s->disk_mb << 20);
}

static int
compare_started (const void *a, const void *b)
{
  const struct sbx *x = *(struct sbx *const *)a, *y = *(struct sbx *const *)b;
  return x->started_ms < y->started_ms ? 1 : x->started_ms > y->started_ms ? -1 : 0;
}

struct sbx **
registry_list (size_t *ret_count)
{
  struct sbx **list;
  size_t n = 0;

  pthread_mutex_lock (&mu);
  list = xzalloc (sizeof (struct sbx *) * ((size_t)live_count + 1));
  for (int b = 0; b < BUCKETS; b++)
    for (struct node *nd = table[b]; nd; nd = nd->next)
      {
        nd->s->refs++;
        list[n++] = nd->s;
      }
  pthread_mutex_unlock (&mu);
  qsort (list, n, sizeof *list, compare_started);
  *ret_count = n;
  return list;
}

void
registry_list_free (struct sbx **list, size_t count)
{
  for (size_t i = 0; i < count; i++)
    sbx_unref (list[i]);
  free (list);
}

/* Templates for running code (E2B's code-interpreter templates have
   Jupyter running from the start): their default Python kernel starts
   with the sandbox.  Other sandboxes start it on first use.  */
#define INTERPRETER_TEMPLATE "code-interpreter-v1"

static bool
warm_interpreter (const char *template_id)
{
  return strncmp (template_id, "code-interpreter", strlen ("code-interpreter")) == 0;
}

/* The agent's settings at creation: S's token (S NULL: a spare's, none
   yet), ENV_VARS, and whether to start the default kernel at once.  */
static char *
agent_init_json (const struct sbx *s, json_t *env_vars, bool warm)
{
  json_t *init = json_pack ("{s:s}", "defaultUser", "user");
  char *text;

  if (warm)
    json_object_set_new (init, "warmInterpreter", json_true ());
  if (s && *s->access_token)
    json_object_set_new (init, "accessToken", json_string (s->access_token));
  if (json_is_object (env_vars))
    json_object_set (init, "envVars", env_vars);
  text = json_dumps (init, JSON_COMPACT);
  json_decref (init);
  return text;
}

/* A record for SPEC, named ID, or a new id when NULL.  */
static struct sbx *
new_record (const struct sandbox_spec *spec, const char *id)
{
  struct sbx *s = xzalloc (sizeof *s);

  s->refs = 2; /* the table's and the caller's */
  s->pidfd = s->netns_fd = -1;
  if (id)
    snprintf (s->id, sizeof s->id, "%s", id);
  else
    random_string (s->id, HUTCH_ID_LEN, HUTCH_ID_ALPHABET);
  if (!spec->insecure)
    random_string (s->access_token, 40, "0123456789abcdef");
  snprintf (s->template_id, sizeof s->template_id, "%s", spec->template_id);
  snprintf (s->alias, sizeof s->alias, "%s", spec->template_id);
  s->metadata = spec->metadata ? json_deep_copy (spec->metadata) : json_object ();
  s->cpu_count = spec->cpu_count;
  s->memory_mb = spec->memory_mb;
  s->disk_mb = spec->disk_mb;
  s->started_ms = registry_now_ms ();
  s->end_ms = s->started_ms + spec->timeout_s * 1000;
  return s;
}

static int
reserve_slot (hutch_error_t *err)
{
  int r = 0;
  pthread_mutex_lock (&mu);
  if (live_count >= limits.max_sandboxes)
    r = hutch_make_error (err, EAGAIN,
                          "the server runs its maximum of %d sandboxes; kill one or try later",
                          limits.max_sandboxes);
  else
    live_count++; /* reserved; insert_locked counts it again */
  pthread_mutex_unlock (&mu);
  return r;
}

int
registry_start_spares (int count, const struct sandbox_spec *spec, hutch_error_t *err)
{
  cleanup_free char *init = agent_init_json (NULL, NULL, true);
  struct spares_config c = { .count = count,
                             .template_id = hutch_template_canonical (INTERPRETER_TEMPLATE),
                             .agent_init_json = init,
                             .memory_bytes = (unsigned long long)spec->memory_mb << 20,
                             .disk_bytes = (unsigned long long)spec->disk_mb << 20,
                             .cpu_millis = (unsigned long)spec->cpu_count * 1000,
                             .pids = REGISTRY_SANDBOX_PIDS };

  return spares_start (&c, registry_live_count, limits.max_sandboxes, err);
}

int
registry_live_count (void)
{
  int n;
  pthread_mutex_lock (&mu);
  n = live_count;
  pthread_mutex_unlock (&mu);
  return n;
}

/* A spare sandbox, given SPEC's settings: S gets its id, Z its process.
   False when there is no spare, or it could not be handed its settings
   (it is then destroyed).  */
static bool
adopt_spare (const struct sandbox_spec *spec, const struct zygote_create *req, struct sbx **ret_s,
             struct zygote_sandbox *z)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_free char *init = NULL;
  struct spare sp;
  struct sbx *s;

  if (!warm_interpreter (spec->template_id)
      || !spares_take (hutch_template_canonical (spec->template_id), req->memory_bytes,
                       req->disk_bytes, req->cpu_millis, &sp))
    return false;
  s = new_record (spec, sp.id);
  init = agent_init_json (s, spec->env_vars, false);
  if (agent_client_init (sp.z.netns_fd, init, &err) < 0)
    {
      log_warn ("spare sandbox %s: %s; creating a new sandbox instead", sp.id, err->msg);
      spares_discard (&sp, "its agent refused /init");
      s->refs = 1;
      sbx_unref (s);
      return false;
    }
  *ret_s = s;
  *z = sp.z;
  return true;
}

int
registry_create (const struct sandbox_spec *spec, struct sbx **ret, hutch_error_t *err)
{
  struct zygote_sandbox z;
  cleanup_free char *init = NULL;
  struct zygote_create req = { .template_id = spec->template_id,
                               .memory_bytes = (unsigned long long)spec->memory_mb << 20,
                               .disk_bytes = (unsigned long long)spec->disk_mb << 20,
                               .cpu_millis = (unsigned long)spec->cpu_count * 1000,
                               .pids = REGISTRY_SANDBOX_PIDS };
  struct epoll_event ev = { .events = EPOLLIN };
  struct sbx *s;
  int r = 0;

  if (hutch_template_canonical (spec->template_id) == NULL)
    return hutch_make_error (err, ENOENT, "template `%s` not found", spec->template_id);
  if ((r = reserve_slot (err)) < 0)
    return r;
  if (!adopt_spare (spec, &req, &s, &z))
    {
      s = new_record (spec, NULL);
      init = agent_init_json (s, spec->env_vars, warm_interpreter (spec->template_id));
      req.id = s->id;
      req.agent_init_json = init;
      r = zygote_create (&req, &z, err);
    }
  pthread_mutex_lock (&mu);
  live_count--;
  if (r == 0)
    {
      s->pid = z.pid;
      s->pidfd = z.pidfd;
      s->netns_fd = z.netns_fd;
      insert_locked (s);
    }
  pthread_mutex_unlock (&mu);
  if (r < 0)
    {
      s->refs = 1;
      sbx_unref (s);
      return r;
    }
  ev.data.ptr = s;
  epoll_ctl (epoll_fd, EPOLL_CTL_ADD, s->pidfd, &ev);
  wake_monitor ();
  log_info ("sandbox %s: created from template %s, pid %d", s->id, s->template_id, (int)s->pid);
  *ret = s;
  return 0;
}

/* The earliest deadline, and a reference to whoever has passed theirs.  */
static struct sbx *
next_expired (int *ret_wait_ms)
{
  long long now = registry_now_ms (), next = -1;
  struct sbx *expired = NULL;

  pthread_mutex_lock (&mu);
  for (int b = 0; b < BUCKETS && !expired; b++)
    for (struct node *n = table[b]; n; n = n->next)
      {
        if (n->s->end_ms <= now)
          {
            expired = n->s;
            expired->refs++;
            break;
          }
        if (next < 0 || n->s->end_ms < next)
          next = n->s->end_ms;
      }
  pthread_mutex_unlock (&mu);
  *ret_wait_ms = expired ? 0 : next < 0 ? -1 : (int)(next - now > 60000 ? 60000 : next - now);
  return expired;
}

static void *
monitor_main (void *arg)
{
  for (;;)
    {
      struct epoll_event ev[32];
      int wait_ms, n;
      struct sbx *expired;

      while ((expired = next_expired (&wait_ms)))
        {
          end_sandbox (expired, "timeout");
          sbx_unref (expired);
        }
      n = epoll_wait (epoll_fd, ev, 32, wait_ms);
      if (stopping)
        return NULL;
      for (int i = 0; i < n; i++)
        {
          struct sbx *s = ev[i].data.ptr;
          uint64_t v;
          if (s == NULL)
            {
              (void)!read (wake_fd, &v, sizeof v);
              continue;
            }
          s = registry_get (s->id);
          if (s)
            {
              end_sandbox (s, "its agent exited");
              sbx_unref (s);
            }
        }
    }
}

int
registry_init (const struct registry_limits *l, hutch_error_t *err)
{
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

  limits = *l;
  epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd < 0 || wake_fd < 0 || epoll_ctl (epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev) < 0)
    return hutch_make_error (err, errno, "set up the sandbox monitor");
  if ((errno = pthread_create (&monitor, NULL, monitor_main, NULL)) != 0)
    return hutch_make_error (err, errno, "start the sandbox monitor");
  return 0;
}

void
registry_shutdown (void)
{
  size_t n;
  struct sbx **all = registry_list (&n);

  for (size_t i = 0; i < n; i++)
    end_sandbox (all[i], "shutdown");
  registry_list_free (all, n);
  stopping = true;
  wake_monitor ();
  pthread_join (monitor, NULL);
}
