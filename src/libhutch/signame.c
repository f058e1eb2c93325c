#define _GNU_SOURCE
#include "signame.h"
#include "util.h"

#include <signal.h>

static const char *const names[] = {

  [SIGHUP] = "hangup",
  [SIGINT] = "interrupt",
  [SIGQUIT] = "quit",
  [SIGILL] = "illegal instruction",
  [SIGTRAP] = "trace/breakpoint trap",
  [SIGABRT] = "aborted",
  [SIGBUS] = "bus error",
  [SIGFPE] = "floating point exception",
  [SIGKILL] = "killed",
  [SIGUSR1] = "user defined signal 1",
  [SIGSEGV] = "segmentation fault",
  [SIGUSR2] = "user defined signal 2",
  [SIGPIPE] = "broken pipe",
  [SIGALRM] = "alarm clock",
  [SIGTERM] = "terminated",
  [SIGSTKFLT] = "stack fault",
  [SIGCHLD] = "child exited",
  [SIGCONT] = "continued",
  [SIGSTOP] = "stopped (signal)",
  [SIGTSTP] = "stopped",
  [SIGTTIN] = "stopped (tty input)",
  [SIGTTOU] = "stopped (tty output)",
  [SIGURG] = "urgent I/O condition",
  [SIGXCPU] = "CPU time limit exceeded",
  [SIGXFSZ] = "file size limit exceeded",
  [SIGVTALRM] = "virtual timer expired",
  [SIGPROF] = "profiling timer expired",
  [SIGWINCH] = "window changed",
  [SIGIO] = "I/O possible",
  [SIGPWR] = "power failure",
  [SIGSYS] = "bad system call",
};

const char *
hutch_signal_name (int sig)
{
  return sig > 0 && sig < (int)ARRAY_SIZE (names) ? names[sig] : NULL;
}
