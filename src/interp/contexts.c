/* The registry of contexts, the per-language defaults, and holding a
   context for an execution.  */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "context-internal.h"
#include "interp-internal.h"
#include "libhutch/util.h"

#include <ctype.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

#define MAX_DEFAULTS 16

/* A default context per language.  CTX is not referenced: deleting a
   context clears the slots that name it.  */
struct default_slot
{
  char *language;
  struct interp_ctx *ctx;
  bool creating;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv = PTHREAD_COND_INITIALIZER;
static struct interp_ctx **all; /* referenced, in creation order */
static size_t n_all;
static struct default_slot defaults[MAX_DEFAULTS];

char *
interp_normalize_language (const char *language)
{
  const char *s = language ? language : "";
  size_t n;
  char *out;

  while (isspace ((unsigned char)*s))
    s++;
  n = strlen (s);
  while (n > 0 && isspace ((unsigned char)s[n - 1]))
    n--;
  out = xstrndup (s, n);
  for (char *p = out; *p; p++)
    *p = (char)tolower ((unsigned char)*p);
  if (*out == '\0' || strcmp (out, "js") == 0 || strcmp (out, "ts") == 0)
    {
      const char *full = *out == '\0' ? "python" : *out == 'j' ? "javascript" : "typescript";
      free (out);
      out = xstrdup (full);
    }
  return out;
}

int
contexts_init (hutch_error_t *err)
{
  if (mkdir_p_at (AT_FDCWD, interp_dir (), 0711) < 0)
    return hutch_make_error (err, errno, "mkdir `%s`", interp_dir ());
  return 0;
}

void
ctx_ref (struct interp_ctx *c)
{
  __atomic_add_fetch (&c->refs, 1, __ATOMIC_RELAXED);
}

void
ctx_unref (struct interp_ctx *c)
{
  if (c == NULL || __atomic_sub_fetch (&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
    return;
  jupyter_client_free (c->client);
  json_decref (c->globals);
  if (c->pidfd >= 0)
    close (c->pidfd);
  pthread_mutex_destroy (&c->mu);
  pthread_cond_destroy (&c->cv);
  free (c->language);
  free (c->cwd);
  free (c);
}

static struct interp_ctx *
ctx_new (const char *language, const char *cwd)
{
  struct interp_ctx *c = xzalloc (sizeof *c);
  pthread_condattr_t attr;

  jupyter_uuid (c->id);
  c->language = xstrdup (language);
  c->cwd = xstrdup (cwd);
  c->refs = 1;
  c->pidfd = -1;
  c->busy = true; /* its creator holds it until it is published */
  pthread_mutex_init (&c->mu, NULL);
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&c->cv, &attr);
  pthread_condattr_destroy (&attr);
  return c;
}

static char *
user_home (void)
{
  struct agent_user u;
  char name[64];

  agent_lock ();
  snprintf (name, sizeof name, "%s", agent.default_user ? agent.default_user : "user");
  agent_unlock ();
  return xstrdup (agent_user_lookup (name, &u) == 0 ? u.home : "/home/user");
}

struct interp_ctx *
contexts_create (const char *language, const char *cwd, hutch_error_t *err)
{
  cleanup_free char *home = cwd ? NULL : user_home ();
  struct interp_ctx *c = ctx_new (language, cwd ? cwd : home);

  if (ctx_kernel_start (c, err) < 0)
    {
      ctx_unref (c);
      return NULL;
    }
  ctx_release (c);
  pthread_mutex_lock (&reg_mu);
  all = xrealloc (all, (n_all + 1) * sizeof *all);
  all[n_all++] = c;
  ctx_ref (c);
  pthread_mutex_unlock (&reg_mu);
  return c;
}

struct interp_ctx *
contexts_find (const char *id)
{
  struct interp_ctx *found = NULL;

  pthread_mutex_lock (&reg_mu);
  for (size_t i = 0; i < n_all && !found; i++)
    if (strcmp (all[i]->id, id) == 0)
      {
        found = all[i];
        ctx_ref (found);
      }
  pthread_mutex_unlock (&reg_mu);
  return found;
}

static struct default_slot *
slot_locked (const char *language)
{
  for (size_t i = 0; i < MAX_DEFAULTS; i++)
    if (defaults[i].language && strcmp (defaults[i].language, language) == 0)
      return &defaults[i];
  for (size_t i = 0; i < MAX_DEFAULTS; i++)
    if (defaults[i].language == NULL)
      {
        defaults[i].language = xstrdup (language);
        return &defaults[i];
      }
  return NULL;
}

struct interp_ctx *
contexts_default (const char *language, hutch_error_t *err)
{
  struct default_slot *slot;
  struct interp_ctx *c;

  pthread_mutex_lock (&reg_mu);
  while ((slot = slot_locked (language)) && slot->ctx == NULL && slot->creating)
    pthread_cond_wait (&reg_cv, &reg_mu);
  if (slot && slot->ctx)
    {
      ctx_ref (slot->ctx);
      pthread_mutex_unlock (&reg_mu);
      return slot->ctx;
    }
  if (slot)
    slot->creating = true;
  pthread_mutex_unlock (&reg_mu);
  /* Past MAX_DEFAULTS languages, each request gets a context of its own.  */
  c = contexts_create (language, NULL, err);
  if (slot == NULL)
    return c;
  pthread_mutex_lock (&reg_mu);
  slot->creating = false;
  slot->ctx = c;
  pthread_cond_broadcast (&reg_cv);
  pthread_mutex_unlock (&reg_mu);
  return c;
}

json_t *
contexts_list (void)
{
  json_t *list = json_array ();

  pthread_mutex_lock (&reg_mu);
  for (size_t i = 0; i < n_all; i++)
    json_array_append_new (list, json_pack ("{s:s, s:s, s:s}", "id", all[i]->id, "language",
                                            all[i]->language, "cwd", all[i]->cwd));
  pthread_mutex_unlock (&reg_mu);
  return list;
}

/* Take C out of the registry; returns its reference or NULL.  */
static struct interp_ctx *
unregister (const char *id)
{
  struct interp_ctx *c = NULL;

  pthread_mutex_lock (&reg_mu);
  for (size_t i = 0; i < n_all && !c; i++)
    if (strcmp (all[i]->id, id) == 0)
      {
        c = all[i];
        memmove (&all[i], &all[i + 1], (n_all - i - 1) * sizeof *all);
        n_all--;
      }
  for (size_t i = 0; c && i < MAX_DEFAULTS; i++)
    if (defaults[i].ctx == c)
      defaults[i].ctx = NULL;
  pthread_mutex_unlock (&reg_mu);
  return c;
}

int
contexts_delete (const char *id)
{
  struct interp_ctx *c = unregister (id);

  if (c == NULL)
    return errno = ENOENT, -1;
  pthread_mutex_lock (&c->mu);
  c->deleted = true;
  pthread_cond_broadcast (&c->cv);
  pthread_mutex_unlock (&c->mu);
  /* A running execution sees its kernel die and lets go.  */
  ctx_kill_kernel (c);
  pthread_mutex_lock (&c->mu);
  while (c->busy)
    pthread_cond_wait (&c->cv, &c->mu);
  c->busy = true;
  pthread_mutex_unlock (&c->mu);
  ctx_kernel_stop (c);
  ctx_unref (c);
  return 0;
}

int
contexts_restart (const char *id, hutch_error_t *err)
{
  struct interp_ctx *c = contexts_find (id);
  int r;

  if (c == NULL)
    return hutch_make_error (err, ENOENT, "Context %s not found", id);
  ctx_kill_kernel (c);
  if (ctx_acquire (c, 0) != CTX_ACQUIRED)
    {
      ctx_unref (c);
      return hutch_make_error (err, ENOENT, "Context %s not found", id);
    }
  ctx_kernel_stop (c);
  r = ctx_kernel_start (c, err);
  ctx_release (c);
  ctx_unref (c);
  return r;
}

void
contexts_shutdown (void)
{
  pthread_mutex_lock (&reg_mu);
  for (size_t i = 0; i < n_all; i++)
    ctx_kill_kernel (all[i]);
  pthread_mutex_unlock (&reg_mu);
}

enum ctx_acquire_result
ctx_acquire (struct interp_ctx *c, unsigned long long deadline)
{
  struct timespec ts = { (time_t)(deadline / 1000000000ULL), (long)(deadline % 1000000000ULL) };
  enum ctx_acquire_result r;

  pthread_mutex_lock (&c->mu);
  for (;;)
    {
      if (c->deleted)
        {
          r = CTX_GONE;
          break;
        }
      if (!c->busy)
        {
          c->busy = true;
          r = CTX_ACQUIRED;
          break;
        }
      if (deadline == 0)
        pthread_cond_wait (&c->cv, &c->mu);
      else if (pthread_cond_timedwait (&c->cv, &c->mu, &ts) == ETIMEDOUT)
        {
          r = CTX_TIMEOUT;
          break;
        }
    }
  pthread_mutex_unlock (&c->mu);
  return r;
}

void
ctx_release (struct interp_ctx *c)
{
  pthread_mutex_lock (&c->mu);
  c->busy = false;
  pthread_cond_broadcast (&c->cv);
  pthread_mutex_unlock (&c->mu);
}
