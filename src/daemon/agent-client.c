#define _GNU_SOURCE
#include "agent-client.h"
#include "agent/agent.h"
#include "common/netns.h"
#include "libhutch/util.h"

#include <errno.h>
#include <http_parser.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define AGENT_CLIENT_TIMEOUT_MS 5000

static int
on_message_complete (http_parser *p)
{
  *(bool *)p->data = true;
  return 0;
}

/* Read the response on FD until it is complete; its status in *RET.  */
static int
read_status (int fd, unsigned *ret, hutch_error_t *err)
{
  http_parser_settings settings = { .on_message_complete = on_message_complete };
  http_parser parser;
  bool done = false;
  char buf[4096];

  http_parser_init (&parser, HTTP_RESPONSE);
  parser.data = &done;
  while (!done)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      ssize_t n;

      if (TEMP_FAILURE_RETRY (poll (&p, 1, AGENT_CLIENT_TIMEOUT_MS)) == 0)
        return hutch_make_error (err, ETIMEDOUT, "the agent did not answer /init");
      n = TEMP_FAILURE_RETRY (recv (fd, buf, sizeof buf, 0));
      if (n < 0)
        return hutch_make_error (err, errno, "read the agent's answer to /init");
      if (http_parser_execute (&parser, &settings, buf, (size_t)n) != (size_t)n
          || HTTP_PARSER_ERRNO (&parser) != HPE_OK)
        return hutch_make_error (err, EPROTO, "the agent's answer to /init: %s",
                                 http_errno_description (HTTP_PARSER_ERRNO (&parser)));
      if (n == 0 && !done)
        return hutch_make_error (err, EPIPE, "the agent closed the connection during /init");
    }
  *ret = parser.status_code;
  return 0;
}

int
agent_client_init (int netns_fd, const char *init_json, hutch_error_t *err)
{
  cleanup_free char *request = NULL;
  cleanup_close int fd = -1;
  size_t len = strlen (init_json);
  unsigned status = 0;
  int n;

  fd = netns_connect_loopback (netns_fd, AGENT_ENVD_PORT, AGENT_CLIENT_TIMEOUT_MS);
  if (fd < 0)
    return hutch_make_error (err, errno, "connect to the agent");
  n = asprintf (&request,
                "POST /init HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                AGENT_ENVD_PORT, len, init_json);
  if (n < 0)
    return hutch_make_error (err, ENOMEM, "format /init");
  if (write_all (fd, request, (size_t)n) < 0) /* hutchd ignores SIGPIPE */
    return hutch_make_error (err, errno, "send /init to the agent");
  if (read_status (fd, &status, err) < 0)
    return -1;
  if (status != 204)
    return hutch_make_error (err, EPROTO, "the agent answered /init with status %u", status);
  return 0;
}
