#define _GNU_SOURCE
#include "watchdog.h"
#include "libhutch/log.h"
#include "libhutch/util.h"

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

struct entry
{
  int fd;
  unsigned long long deadline; /* monotonic ns; 0: none */
  struct entry *prev, *next;
};

static struct entry *entries;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static pthread_t thread;
static unsigned long long timeout_ns;
static bool running;

static struct entry *
entry_of (struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *info
      = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return info ? info->socket_context : NULL;
}

static void
set_deadline (struct MHD_Connection *conn, unsigned long long deadline)
{
  struct entry *e = entry_of (conn);
  if (e == NULL)
    return;
  pthread_mutex_lock (&mu);
  e->deadline = deadline;
  pthread_mutex_unlock (&mu);
}

void
watchdog_disarm (struct MHD_Connection *conn)
{
  set_deadline (conn, 0);
}

void
watchdog_rearm (struct MHD_Connection *conn)
{
  set_deadline (conn, now_ns () + timeout_ns);
}

static void
add (struct MHD_Connection *conn, void **socket_context)
{
  const union MHD_ConnectionInfo *info
      = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  struct entry *e = xzalloc (sizeof *e);

  e->fd = info ? info->connect_fd : -1;
  e->deadline = now_ns () + timeout_ns;
  pthread_mutex_lock (&mu);
  e->next = entries;
  if (entries)
    entries->prev = e;
  entries = e;
  pthread_mutex_unlock (&mu);
  *socket_context = e;
}

static void
remove_entry (void **socket_context)
{
  struct entry *e = *socket_context;
  if (e == NULL)
    return;
  pthread_mutex_lock (&mu);
  if (e->prev)
    e->prev->next = e->next;
  else
    entries = e->next;
  if (e->next)
    e->next->prev = e->prev;
  pthread_mutex_unlock (&mu);
  free (e);
  *socket_context = NULL;
}

void
watchdog_notify (void *cls, struct MHD_Connection *conn, void **socket_context,
                 enum MHD_ConnectionNotificationCode code)
{
  if (code == MHD_CONNECTION_NOTIFY_STARTED)
    add (conn, socket_context);
  else
    remove_entry (socket_context);
}

/* Shut overdue connections down; libmicrohttpd then closes them.  */
static void
sweep_locked (void)
{
  unsigned long long now = now_ns ();
  for (struct entry *e = entries; e; e = e->next)
    if (e->deadline && now > e->deadline && e->fd >= 0)
      {
        log_info ("closing a connection whose request did not arrive in time");
        shutdown (e->fd, SHUT_RDWR);
        e->deadline = 0;
      }
}

static void *
watchdog_main (void *arg)
{
  pthread_mutex_lock (&mu);
  while (running)
    {
      struct timespec ts;
      clock_gettime (CLOCK_MONOTONIC, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait (&cv, &mu, &ts);
      sweep_locked ();
    }
  pthread_mutex_unlock (&mu);
  return NULL;
}

int
watchdog_start (unsigned timeout_s)
{
  pthread_condattr_t attr;

  timeout_ns = (unsigned long long)timeout_s * 1000000000ULL;
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&cv, &attr);
  pthread_condattr_destroy (&attr);
  running = true;
  return -pthread_create (&thread, NULL, watchdog_main, NULL);
}

void
watchdog_stop (void)
{
  pthread_mutex_lock (&mu);
  running = false;
  pthread_cond_signal (&cv);
  pthread_mutex_unlock (&mu);
  pthread_join (thread, NULL);
}
