/* Pid 1 of a hutchd sandbox: the envd server and the process reaper.  */
#define _GNU_SOURCE
#include "agent.h"
#include "common/http.h"
#include "connect.h"
#include "interp/interp.h"
#include "libhutch/sandbox.h"
#include "libhutch/util.h"
#include "services.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define UPLOAD_MAX (1ULL << 62)

/* Apply an /init message: token, sandbox-wide variables, default user.  */
static void
apply_init (json_t *init)
{
  json_t *token = json_object_get (init, "accessToken");
  json_t *env = json_object_get (init, "envVars");
  json_t *user = json_object_get (init, "defaultUser");

  agent_lock ();
  if (json_is_string (token))
    {
      free (agent.access_token);
      agent.access_token = xstrdup (json_string_value (token));
    }
  if (json_is_object (env))
    json_object_update (agent.env_vars, env);
  if (json_is_string (user) && *json_string_value (user))
    {
      free (agent.default_user);
      agent.default_user = xstrdup (json_string_value (user));
    }
  agent_unlock ();
}

static enum MHD_Result
health (struct http_req *req)
{
  return http_send_empty (req->conn, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result
init (struct http_req *req)
{
  json_t *body = http_body_json (req);
  if (body == NULL)
    return MHD_YES;
  apply_init (body);
  json_decref (body);
  return http_send_empty (req->conn, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result
envs (struct http_req *req)
{
  json_t *copy;
  agent_lock ();
  copy = json_deep_copy (agent.env_vars);
  agent_unlock ();
  return http_send_json (req->conn, 200, copy);
}

#define RPC(service, method, fn)                                                                   \
  {                                                                                                \
    "POST", "/" service "/" method, fn, NULL, 0, false                                             \
  }

static const struct http_route envd_routes[] = {
  { "GET", "/health", health, NULL, 0, true },
  { "POST", "/init", init, NULL, 0, false },
  { "GET", "/envs", envs, NULL, 0, false },
  { "GET", "/files", files_get, NULL, 0, true },
  { "POST", "/files", files_post, files_post_upload, UPLOAD_MAX, true },
  RPC ("process.Process", "Start", process_start),
  RPC ("process.Process", "Connect", process_connect),
  RPC ("process.Process", "List", process_list),
  RPC ("process.Process", "SendInput", process_send_input),
  RPC ("process.Process", "StreamInput", process_stream_input),
  RPC ("process.Process", "SendSignal", process_send_signal),
  RPC ("process.Process", "Update", process_update),
  RPC ("process.Process", "CloseStdin", process_close_stdin),
  RPC ("filesystem.Filesystem", "Stat", fs_stat),
  RPC ("filesystem.Filesystem", "MakeDir", fs_make_dir),
  RPC ("filesystem.Filesystem", "Move", fs_move),
  RPC ("filesystem.Filesystem", "ListDir", fs_list_dir),
  RPC ("filesystem.Filesystem", "Remove", fs_remove),
  RPC ("filesystem.Filesystem", "WatchDir", fs_watch_dir),
  RPC ("filesystem.Filesystem", "CreateWatcher", fs_create_watcher),
  RPC ("filesystem.Filesystem", "GetWatcherEvents", fs_get_watcher_events),
  RPC ("filesystem.Filesystem", "RemoveWatcher", fs_remove_watcher),
  { NULL, NULL, NULL, NULL, 0, false },
};

static bool
authorize (struct MHD_Connection *conn, const struct http_route *route)
{
  const char *given = http_header (conn, "X-Access-Token");
  bool ok;

  agent_lock ();
  ok = agent.access_token == NULL || http_secret_equal (given, agent.access_token);
  agent_unlock ();
  if (!ok)
    http_send_json (conn, MHD_HTTP_UNAUTHORIZED,
                    json_pack ("{s:i, s:s}", "code", 401, "message",
                               "unauthorized access, please provide a valid access token or "
                               "method signing if supported"));
  return ok;
}

static const struct http_server envd_server = { envd_routes, http_not_found, authorize };

static enum MHD_Result
envd_handler (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
              const char *version, const char *upload_data, size_t *upload_data_size,
              void **con_cls)
{
  return http_dispatch (&envd_server, conn, url, method, upload_data, upload_data_size, con_cls);
}

static struct MHD_Daemon *
start_envd (void)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (AGENT_ENVD_PORT) };

  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  return MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
                               | MHD_USE_POLL | MHD_USE_ERROR_LOG,
                           0, NULL, NULL, envd_handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                           MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL,
                           MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024,
                           MHD_OPTION_NOTIFY_COMPLETED, http_request_completed, NULL,
                           MHD_OPTION_CONNECTION_LIMIT, 4096, MHD_OPTION_END);
}

/* Returns whether the default Python kernel is wanted at once.  */
static bool
load_args (const struct agent_args *args)
{
  json_error_t jerr;
  json_t *init = args->init_json ? json_loads (args->init_json, 0, &jerr) : NULL;
  bool warm = json_is_true (json_object_get (init, "warmInterpreter"));

  agent.sandbox_id = xstrdup (args->sandbox_id);
  agent.env_vars = json_object ();
  agent.default_user = xstrdup ("user");
  if (init)
    apply_init (init);
  json_decref (init);
  return warm;
}

int
agent_main (void *arg)
{
  struct MHD_Daemon *envd;
  sigset_t set;
  int sig;
  bool warm = load_args (arg);

  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);
  process_init ();
  envd = start_envd ();
  if (envd == NULL)
    {
      fprintf (stderr, "hutch agent: cannot listen on port %d\n", AGENT_ENVD_PORT);
      return 125;
    }
  /* Without the code interpreter, commands and files still work.  */
  if (interp_start (warm) < 0)
    fprintf (stderr, "hutch agent: the code interpreter did not start\n");
  hutch_sandbox_notify_ready ();
  sigwait (&set, &sig);
  MHD_stop_daemon (envd);
  return 0;
}
