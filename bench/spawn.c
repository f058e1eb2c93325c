/* bench-spawn: how long a throwaway sandbox takes, end to end.

   usage: bench-spawn [ITERATIONS [DATA_DIR]]

   Each sample is one whole life of a sandbox that runs /bin/true:
   create -> run -> exit -> destroy, timed with CLOCK_MONOTONIC.  Three
   variants run round-robin (one sample of each per round, the starting
   variant rotating from round to round) so that the noise of a shared
   machine hits them alike:

     hutch (library)      hutch_sandbox_create + hutch_sandbox_wait +
                          hutch_sandbox_destroy in this process, one runtime
                          for all samples (as the daemon uses it), with the
                          limits `hutch run` applies by default.
     hutch run (CLI)      the whole `hutch run` process: exec, runtime (data
                          directory, seccomp compilation), gc, sandbox.
     bwrap --unshare-all  Debian's bubblewrap doing the same.

   A child that does not exit 0 aborts the benchmark: a broken variant must
   never look fast.  ITERATIONS defaults to 300; DATA_DIR to a fresh
   directory under /tmp, removed at the end.  The hutch binary is the one
   next to this program unless $HUTCH_BIN says otherwise; bwrap is looked up
   in PATH.  With $BENCH_SPAWN_RAW set, every sample is also written to that
   file ("round<TAB>variant<TAB>nanoseconds", in the order taken) to look
   for drift over a run.  */
#define _GNU_SOURCE
#include "libhutch/init.h"
#include "libhutch/log.h"
#include "libhutch/sandbox.h"
#include "libhutch/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ITERATIONS 300
#define WARMUP_ROUNDS 5

extern char **environ;

enum
{
  V_LIB,
  V_CLI,
  V_BWRAP,
  NVARIANTS
};

static const char *const variant_names[NVARIANTS] = {
  [V_LIB] = "hutch (library)",
  [V_CLI] = "hutch run (CLI)",
  [V_BWRAP] = "bwrap --unshare-all",
};

/* What pid 1 runs in the library variant, with the environment `hutch run`
   gives a command by default.  */
static char *true_argv[] = { (char *)"/bin/true", NULL };
static char *sandbox_env[] = {
  (char *)"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  (char *)"HOME=/home/user",
  (char *)"USER=user",
  (char *)"LOGNAME=user",
  (char *)"LANG=C.UTF-8",
  NULL,
};

static char *bwrap_argv[] = {
  (char *)"bwrap",     (char *)"--unshare-all", (char *)"--die-with-parent",
  (char *)"--ro-bind", (char *)"/usr",          (char *)"/usr",
  (char *)"--symlink", (char *)"usr/bin",       (char *)"/bin",
  (char *)"--symlink", (char *)"usr/lib",       (char *)"/lib",
  (char *)"--symlink", (char *)"usr/lib64",     (char *)"/lib64",
  (char *)"--symlink", (char *)"usr/sbin",      (char *)"/sbin",
  (char *)"--proc",    (char *)"/proc",         (char *)"--dev",
  (char *)"/dev",      (char *)"--tmpfs",       (char *)"/tmp",
  (char *)"--",        (char *)"/bin/true",     NULL,
};

static char *cli_argv[7]; /* HUTCH run --data-dir DIR -- /bin/true */

static struct hutch_runtime *rt;
static char *data_dir;
static bool remove_data_dir;

static void __attribute__ ((noreturn, format (printf, 1, 2))) die (const char *fmt, ...)
{
  va_list ap;

  fflush (stdout);
  fputs ("bench-spawn: FAILED: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  if (data_dir)
    fprintf (stderr, "bench-spawn: data directory left for inspection: %s\n", data_dir);
  exit (1);
}

static unsigned long long
mono_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static const char *
describe_status (int status, char *buf, size_t len)
{
  if (WIFEXITED (status))
    snprintf (buf, len, "exit status %d", WEXITSTATUS (status));
  else if (WIFSIGNALED (status))
    snprintf (buf, len, "killed by signal %d (%s)", WTERMSIG (status),
              strsignal (WTERMSIG (status)));
  else
    snprintf (buf, len, "wait status 0x%x", status);
  return buf;
}

static void
check_status (int v, int status)
{
  char buf[64];

  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    die ("%s: the run of /bin/true ended with %s (expected exit status 0)", variant_names[v],
         describe_status (status, buf, sizeof buf));
}

/* One sandbox through the library: create, wait for pid 1, destroy.  */
static unsigned long long
run_library (void)
{
  struct hutch_exec_spec spec = { .argv = true_argv, .envp = sandbox_env };
  struct hutch_sandbox_config config = {
    /* The defaults of `hutch run`.  */
    .memory_bytes = 512ULL << 20,
    .cpu_millis = 1000,
    .pids = 512,
    .disk_bytes = 1ULL << 30,
    .stdio = { -1, -1, -1 },
    .init = hutch_init_exec,
    .init_arg = &spec,
  };
  hutch_error_t err = NULL;
  struct hutch_sandbox *sb = NULL;
  unsigned long long t0, t1;
  int status;

  t0 = mono_ns ();
  if (hutch_sandbox_create (rt, &config, &sb, &err) < 0)
    die ("%s: %s", variant_names[V_LIB], err->msg);
  if (hutch_sandbox_wait (sb, -1, &err) != 1)
    die ("%s: wait: %s", variant_names[V_LIB], err ? err->msg : "no exit");
  status = sb->wait_status;
  if (hutch_sandbox_destroy (sb, &err) < 0)
    die ("%s: destroy: %s", variant_names[V_LIB], err->msg);
  t1 = mono_ns ();
  check_status (V_LIB, status);
  return t1 - t0;
}

/* One child process running ARGV to completion, stdin and stdout on
   /dev/null, stderr inherited (so that a failure explains itself).  */
static unsigned long long
run_process (int v, char **argv)
{
  posix_spawn_file_actions_t fa;
  unsigned long long t0, t1;
  pid_t pid;
  int status, r;

  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);

  t0 = mono_ns ();
  r = posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ);
  if (r != 0)
    die ("%s: cannot start `%s`: %s", variant_names[v], argv[0], strerror (r));
  if (TEMP_FAILURE_RETRY (waitpid (pid, &status, 0)) < 0)
    die ("%s: waitpid: %s", variant_names[v], strerror (errno));
  t1 = mono_ns ();
  posix_spawn_file_actions_destroy (&fa);
  check_status (v, status);
  return t1 - t0;
}

static unsigned long long
run_variant (int v)
{
  switch (v)
    {
    case V_LIB:
      return run_library ();
    case V_CLI:
      return run_process (v, cli_argv);
    default:
      return run_process (v, bwrap_argv);
    }
}

static int
cmp_ull (const void *a, const void *b)
{
  unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted S[0..N-1].  */
static double
pct_ms (const unsigned long long *s, size_t n, double q)
{
  size_t rank = (size_t)(q * (double)n + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return (double)s[rank - 1] / 1e6;
}

static void
print_command (const char *label, char *const *argv)
{
  printf ("  %-20s", label);
  for (size_t i = 0; argv[i]; i++)
    printf (" %s", argv[i]);
  putchar ('\n');
}

static void
print_header (unsigned long iterations)
{
  struct utsname u;
  double load[3] = { 0 };
  long ncpu = sysconf (_SC_NPROCESSORS_ONLN);

  uname (&u);
  if (getloadavg (load, 3) < 0)
    load[0] = load[1] = load[2] = -1;
  printf ("bench-spawn: create -> run /bin/true -> destroy, %lu samples per variant\n", iterations);
  printf ("  kernel %s %s, %ld cpus, load average %.2f %.2f %.2f at start\n", u.release, u.machine,
          ncpu, load[0], load[1], load[2]);
  printf ("  round-robin: one sample of each variant per round, %d warm-up rounds discarded\n",
          WARMUP_ROUNDS);
  printf ("  data directory %s\n", data_dir);
  printf ("commands:\n");
  printf ("  %-20s hutch_sandbox_create(init = hutch_init_exec {/bin/true}, memory 512M, 1 cpu,"
          " pids 512, disk 1G, stdio /dev/null) + hutch_sandbox_wait + hutch_sandbox_destroy"
          " (one runtime)\n",
          variant_names[V_LIB]);
  print_command (variant_names[V_CLI], cli_argv);
  print_command (variant_names[V_BWRAP], bwrap_argv);
  fflush (stdout);
}

static void
write_raw (const char *path, unsigned long long *samples[NVARIANTS], size_t n)
{
  FILE *f = fopen (path, "we");

  if (f == NULL)
    die ("open `%s`: %s", path, strerror (errno));
  for (size_t round = 0; round < n; round++)
    for (int k = 0; k < NVARIANTS; k++)
      {
        int v = (int)((round + (size_t)k) % NVARIANTS);
        fprintf (f, "%zu\t%s\t%llu\n", round, variant_names[v], samples[v][round]);
      }
  if (fclose (f) != 0)
    die ("write `%s`: %s", path, strerror (errno));
}

static void
print_results (unsigned long long *samples[NVARIANTS], size_t n)
{
  double p50[NVARIANTS];

  for (int v = 0; v < NVARIANTS; v++)
    {
      qsort (samples[v], n, sizeof samples[v][0], cmp_ull);
      p50[v] = pct_ms (samples[v], n, 0.50);
    }
  printf ("\n%-20s %6s %8s %8s %8s %8s %8s %10s\n", "variant (ms)", "n", "min", "p50", "p90", "p99",
          "max", "p50/bwrap");
  for (int v = 0; v < NVARIANTS; v++)
    {
      const unsigned long long *s = samples[v];
      printf ("%-20s %6zu %8.3f %8.3f %8.3f %8.3f %8.3f %9.2fx\n", variant_names[v], n,
              (double)s[0] / 1e6, p50[v], pct_ms (s, n, 0.90), pct_ms (s, n, 0.99),
              (double)s[n - 1] / 1e6, p50[v] / p50[V_BWRAP]);
    }
}

static void
setup_cli_argv (void)
{
  const char *bin = getenv ("HUTCH_BIN");
  static char path[PATH_MAX];

  if (bin == NULL || *bin == '\0')
    {
      char self[PATH_MAX];
      ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
      if (n < 0)
        die ("readlink /proc/self/exe: %s", strerror (errno));
      self[n] = '\0';
      snprintf (path, sizeof path, "%s/hutch", dirname (self));
      bin = path;
    }
  if (access (bin, X_OK) < 0)
    die ("hutch binary `%s`: %s (build it with `make all`, or set HUTCH_BIN)", bin,
         strerror (errno));
  cli_argv[0] = (char *)bin;
  cli_argv[1] = (char *)"run";
  cli_argv[2] = (char *)"--data-dir";
  cli_argv[3] = data_dir;
  cli_argv[4] = (char *)"--";
  cli_argv[5] = (char *)"/bin/true";
  cli_argv[6] = NULL;
}

int
main (int argc, char **argv)
{
  unsigned long long *samples[NVARIANTS];
  unsigned long iterations = DEFAULT_ITERATIONS;
  hutch_error_t err = NULL;
  char *end;

  hutch_log_init ("bench-spawn", HUTCH_LOG_WARN);
  if (argc > 3 || (argc > 1 && (strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "--help") == 0)))
    {
      fprintf (stderr,
               "usage: %s [ITERATIONS (default %d) [DATA_DIR (default: a new one in /tmp)]]\n",
               argv[0], DEFAULT_ITERATIONS);
      return 2;
    }
  if (argc > 1)
    {
      errno = 0;
      iterations = strtoul (argv[1], &end, 10);
      if (errno || *end || iterations == 0 || iterations > 1000000)
        {
          fprintf (stderr, "bench-spawn: bad iteration count `%s`\n", argv[1]);
          return 2;
        }
    }
  if (argc > 2)
    data_dir = argv[2];
  else
    {
      static char tmpl[] = "/tmp/hutch-bench-XXXXXX";
      data_dir = mkdtemp (tmpl);
      if (data_dir == NULL)
        die ("mkdtemp: %s", strerror (errno));
      remove_data_dir = true;
    }
  setup_cli_argv ();

  /* Outside the timed loop: the data directory and the host template are
     made here once, as a long-running daemon would.  */
  if (hutch_runtime_new (data_dir, &rt, &err) < 0)
    die ("%s", err->msg);

  print_header (iterations);
  for (int v = 0; v < NVARIANTS; v++)
    samples[v] = xzalloc (iterations * sizeof samples[v][0]);

  for (int round = 0; round < WARMUP_ROUNDS; round++)
    for (int v = 0; v < NVARIANTS; v++)
      (void)run_variant (v);

  for (unsigned long round = 0; round < iterations; round++)
    for (int k = 0; k < NVARIANTS; k++)
      {
        int v = (int)((round + (unsigned long)k) % NVARIANTS);
        samples[v][round] = run_variant (v);
      }

  if (getenv ("BENCH_SPAWN_RAW") && *getenv ("BENCH_SPAWN_RAW"))
    write_raw (getenv ("BENCH_SPAWN_RAW"), samples, iterations);
  print_results (samples, iterations);

  hutch_runtime_free (rt);
  if (remove_data_dir && rm_rf_at (AT_FDCWD, data_dir) < 0)
    fprintf (stderr, "bench-spawn: warning: cannot remove `%s`: %s\n", data_dir, strerror (errno));
  for (int v = 0; v < NVARIANTS; v++)
    free (samples[v]);
  return 0;
}
