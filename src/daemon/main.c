/* hutchd: the hutch server.  */
#define _GNU_SOURCE
#include "config.h"
#include "libhutch/log.h"
#include "libhutch/sandbox.h"
#include "libhutch/util.h"
#include "registry.h"
#include "server.h"
#include "spares.h"
#include "zygote.h"

#include <signal.h>
#include <stdio.h>

static int
fail (hutch_error_t *err)
{
  log_error ("%s", (*err)->msg);
  hutch_error_release (err);
  return 1;
}

static void
announce_key (const struct hutchd_config *c, bool generated)
{
  if (!generated)
    return;
  /* Printed once, on the first start; it is kept in DATA_DIR/api-key.  */
  printf ("hutchd: generated API key (saved in %s/api-key):\n%s\n", c->data_dir, c->api_key);
  fflush (stdout);
}

static void
wait_for_signal (void)
{
  sigset_t set;
  int sig;

  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGHUP);
  sigwait (&set, &sig);
  log_info ("received signal %d, stopping", sig);
}

static void
block_signals (void)
{
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGHUP);
  sigprocmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);
}

int
main (int argc, char **argv)
{
  cleanup_error hutch_error_t err = NULL;
  struct hutchd_config config;
  struct hutch_runtime *rt = NULL;
  struct registry_limits limits;
  struct sandbox_spec spares;
  bool generated;
  int r, cleaned;

  hutch_log_init ("hutchd", HUTCH_LOG_INFO);
  r = config_load (argc, argv, &config, &err);
  if (r != 0)
    return r > 0 ? 0 : (fail (&err), 2);
  hutch_log_init ("hutchd", config.log_level);
  if (hutch_runtime_new (config.data_dir, &rt, &err) < 0 || (cleaned = hutch_gc (rt, &err)) < 0
      || config_api_key (&config, &generated, &err) < 0)
    return fail (&err);
  if (cleaned > 0)
    log_info ("removed %d sandbox%s left by a previous run", cleaned, cleaned == 1 ? "" : "es");
  block_signals ();
  /* The zygote must be forked while this process has a single thread.  */
  if (zygote_start (rt, &err) < 0)
    return fail (&err);
  /* Listen once a create is as fast as it will be (Python preloaded).  */
  if (zygote_wait_ready (&err) < 0)
    {
      zygote_stop ();
      return fail (&err);
    }
  limits = (struct registry_limits){ config.max_sandboxes, config.max_timeout_s };
  spares = (struct sandbox_spec){ .cpu_count = config.cpu_count,
                                  .memory_mb = config.memory_mb,
                                  .disk_mb = config.disk_mb };
  if (registry_init (&limits, &err) < 0
      || registry_start_spares (config.spare_sandboxes, &spares, &err) < 0
      || server_start (&config, &err) < 0)
    {
      spares_stop ();
      zygote_stop ();
      return fail (&err);
    }
  announce_key (&config, generated);
  log_info ("listening on %s:%d, data in %s", config.listen_host, config.listen_port,
            config.data_dir);
  wait_for_signal ();
  server_stop ();
  spares_stop ();
  registry_shutdown ();
  zygote_stop ();
  hutch_runtime_free (rt);
  config_release (&config);
  return 0;
}
