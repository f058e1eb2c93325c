/* agent-dev: start one sandbox running the agent and forward a host port
   to its envd port, byte for byte.  For developing and debugging the agent
   without hutchd:

     build/agent-dev DATA_DIR PORT [ACCESS_TOKEN]
     curl -s -X POST -H 'Content-Type: application/json' -d '{}' \
          http://127.0.0.1:PORT/process.Process/List

   Ctrl-C destroys the sandbox.  */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "common/netns.h"
#include "libhutch/sandbox.h"
#include "libhutch/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int netns_fd = -1;

static void *
relay (void *arg)
{
  int client = (int)(long)arg;
  int upstream = netns_connect_loopback (netns_fd, AGENT_ENVD_PORT, 5000);
  struct pollfd p[2] = { { .fd = client, .events = POLLIN }, { .fd = upstream, .events = POLLIN } };
  char buf[65536];

  if (upstream < 0)
    {
      perror ("agent-dev: connect to envd");
      close (client);
      return NULL;
    }
  while (poll (p, 2, -1) > 0)
    {
      int from = (p[0].revents & (POLLIN | POLLHUP)) ? 0 : 1;
      ssize_t n = read (p[from].fd, buf, sizeof buf);
      if (n <= 0 || write_all (p[1 - from].fd, buf, (size_t)n) < 0)
        break;
    }
  close (client);
  close (upstream);
  return NULL;
}

static int
listen_on (int port)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  int one = 1, fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen (fd, 128) < 0)
    return -1;
  return fd;
}

int
main (int argc, char **argv)
{
  cleanup_error hutch_error_t err = NULL;
  struct hutch_runtime *rt = NULL;
  struct hutch_sandbox *sb = NULL;
  struct hutch_sandbox_config config = { .stdio = { -1, -1, 2 },
                                         .wait_ready = true,
                                         .memory_bytes = 1ULL << 30,
                                         .pids = 1024,
                                         .cpu_millis = 2000,
                                         .root = true };
  char init[512], path[64];
  struct agent_args args = { .init_json = init };
  int lfd;

  if (argc < 3)
    {
      fprintf (stderr, "usage: agent-dev DATA_DIR PORT [ACCESS_TOKEN]\n");
      return 2;
    }
  snprintf (init, sizeof init, "{\"accessToken\": %s%s%s}", argc > 3 ? "\"" : "",
            argc > 3 ? argv[3] : "null", argc > 3 ? "\"" : "");
  config.init = agent_main;
  config.init_arg = &args;
  args.sandbox_id = "agentdev";
  config.id = "agentdev";
  if (hutch_runtime_new (argv[1], &rt, &err) < 0 || hutch_gc (rt, &err) < 0
      || hutch_sandbox_create (rt, &config, &sb, &err) < 0)
    {
      fprintf (stderr, "agent-dev: %s\n", err->msg);
      return 1;
    }
  snprintf (path, sizeof path, "/proc/%d/ns/net", (int)sb->pid);
  netns_fd = open (path, O_RDONLY | O_CLOEXEC);
  lfd = listen_on (atoi (argv[2]));
  if (netns_fd < 0 || lfd < 0)
    {
      perror ("agent-dev");
      hutch_sandbox_destroy (sb, &err);
      return 1;
    }
  fprintf (stderr, "agent-dev: sandbox %s, envd on 127.0.0.1:%s\n", sb->id, argv[2]);
  signal (SIGPIPE, SIG_IGN);
  for (;;)
    {
      struct pollfd p[2]
          = { { .fd = lfd, .events = POLLIN }, { .fd = sb->pidfd, .events = POLLIN } };
      if (ppoll (p, 2, NULL, NULL) < 0 || (p[1].revents & POLLIN))
        break;
      if (p[0].revents & POLLIN)
        {
          pthread_t t;
          int c = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
          if (c >= 0 && pthread_create (&t, NULL, relay, (void *)(long)c) == 0)
            pthread_detach (t);
        }
    }
  fprintf (stderr, "agent-dev: stopping\n");
  hutch_sandbox_destroy (sb, &err);
  hutch_runtime_free (rt);
  return 0;
}
