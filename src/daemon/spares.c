#define _GNU_SOURCE
#include "spares.h"
#include "libhutch/cgroup.h"
#include "libhutch/log.h"
#include "libhutch/sandbox.h"
#include "libhutch/util.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SPARES 64
/* After a failed create, wait this long before the next attempt.  */
#define RETRY_MS 2000
/* Make spares once sandboxes have been neither created nor ended for this
   long: making one keeps the zygote busy and costs cpu, which creates and
   kills in a burst would wait for.  */
#define QUIET_MS 50

static struct spares_config cfg;
static char template_id[64];
static char *init_json;
static int (*live_count) (void);
static int max_total;

static struct spare pool[MAX_SPARES];
static int pool_len;
static bool making, stopping, started;
static long long last_activity_ms; /* CLOCK_MONOTONIC */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER; /* to the thread */
static pthread_cond_t made = PTHREAD_COND_INITIALIZER; /* from the thread */
static pthread_t thread;

static bool
exited (const struct spare *s)
{
  struct pollfd p = { .fd = s->z.pidfd, .events = POLLIN };
  return poll (&p, 1, 0) != 0;
}

void
spares_discard (struct spare *s, const char *why)
{
  cleanup_error hutch_error_t err = NULL;

  if (zygote_destroy (s->id, &err) < 0)
    log_error ("spare sandbox %s: destroy: %s", s->id, err->msg);
  else
    log_debug ("spare sandbox %s: destroyed (%s)", s->id, why);
  close (s->z.pidfd);
  close (s->z.netns_fd);
}

/* A spare waits in the background: it gets cpu time only when no sandbox
   in use wants it, so making it (its kernel starting) does not slow them
   down.  Taken, it gets the usual share back.  */
static void
set_cpu_weight (const char *id, unsigned weight)
{
  cleanup_error hutch_error_t err = NULL;
  cleanup_cgroup struct hutch_cgroup *cg = NULL;

  if (hutch_cgroup_open (id, &cg, &err) < 0 || hutch_cgroup_set_cpu_weight (cg, weight, &err) < 0)
    log_warn ("spare sandbox %s: cpu weight: %s", id, err->msg);
}

/* Make one spare, outside the lock.  */
static int
make_one (struct spare *s, hutch_error_t *err)
{
  struct zygote_create req = { .id = s->id,
                               .template_id = template_id,
                               .memory_bytes = cfg.memory_bytes,
                               .disk_bytes = cfg.disk_bytes,
                               .cpu_millis = cfg.cpu_millis,
                               .pids = cfg.pids,
                               .agent_init_json = init_json };

  random_string (s->id, HUTCH_ID_LEN, HUTCH_ID_ALPHABET);
  if (zygote_create (&req, &s->z, err) < 0)
    return -1;
  set_cpu_weight (s->id, HUTCH_CGROUP_WEIGHT_MIN);
  return 0;
}

static long long
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
wanted_locked (void)
{
  return !stopping && pool_len < cfg.count && live_count () + pool_len + 1 <= max_total;
}

static void
wait_ms_locked (int ms)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000)
    {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
  pthread_cond_timedwait (&cond, &mu, &ts);
}

static void *
spares_main (void *arg)
{
  bool warned = false;

  pthread_mutex_lock (&mu);
  while (!stopping)
    {
      cleanup_error hutch_error_t err = NULL;
      struct spare s;
      int r;

      if (!wanted_locked ())
        {
          pthread_cond_wait (&cond, &mu);
          continue;
        }
      if (now_ms () - last_activity_ms < QUIET_MS)
        {
          wait_ms_locked ((int)(QUIET_MS - (now_ms () - last_activity_ms)));
          continue;
        }
      making = true;
      pthread_mutex_unlock (&mu);
      r = make_one (&s, &err);
      pthread_mutex_lock (&mu);
      making = false;
      if (r < 0)
        {
          if (!warned)
            log_warn ("spare sandbox: %s; retrying every %d ms", err->msg, RETRY_MS);
          warned = true;
          pthread_cond_broadcast (&made);
          wait_ms_locked (RETRY_MS);
          continue;
        }
      warned = false;
      pool[pool_len++] = s;
      pthread_cond_broadcast (&made);
      log_debug ("spare sandbox %s: ready", s.id);
    }
  pthread_mutex_unlock (&mu);
  return arg;
}

int
spares_start (const struct spares_config *config, int (*count_live) (void), int max,
              hutch_error_t *err)
{
  cfg = *config;
  if (cfg.count <= 0)
    return 0;
  if (cfg.count > MAX_SPARES)
    cfg.count = MAX_SPARES;
  snprintf (template_id, sizeof template_id, "%s", config->template_id);
  cfg.template_id = template_id;
  init_json = xstrdup (config->agent_init_json);
  cfg.agent_init_json = init_json;
  live_count = count_live;
  max_total = max;
  if ((errno = pthread_create (&thread, NULL, spares_main, NULL)) != 0)
    return hutch_make_error (err, errno, "start the spare sandbox thread");
  started = true;
  return 0;
}

bool
spares_take (const char *template, unsigned long long memory_bytes, unsigned long long disk_bytes,
             unsigned long cpu_millis, struct spare *ret)
{
  bool found = false;

  if (!started)
    return false;
  pthread_mutex_lock (&mu);
  last_activity_ms = now_ms ();
  if (strcmp (template, template_id) != 0 || memory_bytes != cfg.memory_bytes
      || disk_bytes != cfg.disk_bytes || cpu_millis != cfg.cpu_millis)
    {
      pthread_mutex_unlock (&mu);
      return false;
    }
  /* The one being made is ready sooner than a new one would be.  */
  while (pool_len == 0 && making && !stopping)
    pthread_cond_wait (&made, &mu);
  while (!found && pool_len > 0)
    {
      struct spare s = pool[--pool_len];
      if (!exited (&s))
        {
          *ret = s;
          found = true;
        }
      else
        {
          pthread_mutex_unlock (&mu);
          spares_discard (&s, "its agent exited");
          pthread_mutex_lock (&mu);
        }
    }
  pthread_cond_signal (&cond);
  pthread_mutex_unlock (&mu);
  if (found)
    set_cpu_weight (ret->id, HUTCH_CGROUP_WEIGHT_DEFAULT);
  return found;
}

void
spares_wake (void)
{
  pthread_mutex_lock (&mu);
  last_activity_ms = now_ms ();
  pthread_cond_signal (&cond);
  pthread_mutex_unlock (&mu);
}

void
spares_stop (void)
{
  if (!started)
    return;
  pthread_mutex_lock (&mu);
  stopping = true;
  pthread_cond_signal (&cond);
  pthread_cond_broadcast (&made);
  pthread_mutex_unlock (&mu);
  pthread_join (thread, NULL);
  while (pool_len > 0)
    spares_discard (&pool[--pool_len], "shutdown");
  free (init_json);
  init_json = NULL;
  started = false;
}
