/* The process service's internals: the table of processes the agent
   started and the reaper (process-table.c), spawning (process-spawn.c) and
   pumping output to the streams that watch a process (process-io.c).  The
   RPC handlers are in process.c and process-start.c.  */
#pragma once

#include "common/http.h"
#include "connect.h"
#include "users.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

/* Exit results stay available to Connect this long.  */
#define PROC_RETAIN_NS (30ULL * 1000000000ULL)

/* A stream watching a process.  The owner is the Start call's stream:
   only it ends with deadline_exceeded when the process lifetime runs out.  */
struct proc_sub
{
  struct connect_stream *stream;
  bool owner;
  struct proc_sub *next;
};

struct proc
{
  int refs;          /* atomic */
  struct proc *next; /* the table's list, under the table lock */
  pid_t pid;
  json_t *config; /* the ProcessConfig as List reports it */
  char *tag;      /* NULL: none */
  bool pty;
  bool started; /* exec succeeded; under the table lock */

  pthread_mutex_t mu; /* guards the fields down to subs */
  bool reaped;        /* the pid may be reused: signal it no more */
  int status;         /* wait status, valid once reaped */
  bool deadline_hit;  /* killed because its lifetime ran out */
  bool finished;      /* the end event was built */
  json_t *end;        /* {"event":{"end":...}} once finished */
  unsigned long long finished_ns;
  struct proc_sub *subs;

  pthread_mutex_t input_mu; /* serialises writes to stdin_fd / pty_fd */
  int stdin_fd;             /* pipe to the process's stdin, or -1 */
  int pty_fd;               /* pty master, or -1 */

  /* Owned by the output thread once it runs.  */
  int out_fd, err_fd;
  int wake_fd;                    /* eventfd: the reaper saw the exit */
  unsigned long long deadline_ns; /* monotonic; 0: none */
};

/* What to run, all prepared by the caller: the child only makes syscalls.  */
struct proc_spec
{
  char **argv;      /* cmd then args */
  char **envp;      /* KEY=VALUE, later entries win */
  const char *path; /* the PATH value execvp-style lookup uses */
  const char *cwd;
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t n_groups;
  bool pty;
  unsigned short cols, rows;
  bool stdin_pipe;
};

/* process.c: helpers shared by the handlers.  */

/* A Connect error on its way to a unary reply or a stream's end.  */
struct rpc_error
{
  const char *code;
  char message[512];
};

/* Fill E; returns -1.  */
int proc_fail (struct rpc_error *e, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Queue STREAM's response, ended with E's error when RESULT < 0, and drop
   the handler's reference.  */
enum MHD_Result proc_respond_stream (struct connect_stream *stream, int result,
                                     const struct rpc_error *e);
json_t *proc_keepalive_event (void);
/* PTY {"size":{"cols","rows"}}; zero or absent sizes mean 80x24.  */
int proc_parse_pty (json_t *pty, unsigned short *cols, unsigned short *rows, struct rpc_error *e);

/* process-table.c */
void proc_ref (struct proc *p);
void proc_unref (struct proc *p);
/* Look a started process up by pid or by tag (TAG non-NULL).  With
   FINISHED false, processes whose end event was built are skipped.
   Returns a reference or NULL.  */
struct proc *proc_find (pid_t pid, const char *tag, bool finished);
/* Call FN on every running process, under the table lock.  */
void proc_for_each_running (void (*fn) (struct proc *p, void *arg), void *arg);
/* Signal the process group (falling back to the process), unless the pid
   was already reaped.  Returns 0 or -1 with errno set.  */
int proc_signal (struct proc *p, int sig);
/* Spawning holds the table lock from before fork until the record is in
   the table, so the reaper finds it however fast the child exits.  */
void proc_table_lock (void);
void proc_table_unlock (void);
/* Add P (taking a reference) and wake the reaper.  */
void proc_table_insert_locked (struct proc *p);
void proc_table_remove (struct proc *p);

/* process-spawn.c */
/* Fork and exec SPEC.  The record is in the table (not yet started) before
   the child can be reaped.  Returns the record with a reference for the
   caller, or NULL with *RET_WHAT naming the failed step and errno set.  */
struct proc *proc_spawn (const struct proc_spec *spec, json_t *config, const char *tag,
                         const char **ret_what);

/* process-io.c */
/* Subscribe STREAM (taking a reference) and send it the start event; a
   finished process gets its retained end event and the stream ends.  */
void proc_attach (struct proc *p, struct connect_stream *stream, bool owner);
/* Start the thread that fans the output out and reports the end.
   Returns 0 or -1 with errno set.  */
int proc_start_output (struct proc *p);
/* The reaper tells the output thread the process was reaped.  */
void proc_notify_exit (struct proc *p, int status);

static inline void
cleanup_jsonp (void *p)
{
  json_decref (*(json_t **)p);
}

static inline void
cleanup_procp (void *p)
{
  proc_unref (*(struct proc **)p);
}

#define cleanup_json __attribute__ ((cleanup (cleanup_jsonp)))
#define cleanup_proc __attribute__ ((cleanup (cleanup_procp)))
