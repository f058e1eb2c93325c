#define _GNU_SOURCE
#include "netns.h"
#include "libhutch/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

static int host_netns = -1;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void
open_host_netns (void)
{
  host_netns = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
}

int
netns_socket (int netns_fd, int domain, int type, int protocol)
{
  int fd, saved;

  pthread_once (&host_once, open_host_netns);
  if (host_netns < 0)
    return -1;
  if (setns (netns_fd, CLONE_NEWNET) < 0)
    return -1;
  fd = socket (domain, type | SOCK_CLOEXEC, protocol);
  saved = errno;
  /* Returning to the host namespace cannot fail for root; if it did, this
     thread must not serve anything else.  */
  if (setns (host_netns, CLONE_NEWNET) < 0)
    abort ();
  errno = saved;
  return fd;
}

int
netns_connect_loopback (int netns_fd, int port, int timeout_ms)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  struct pollfd p;
  int fd, one = 1, soerr = 0;
  socklen_t len = sizeof soerr;

  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  fd = netns_socket (netns_fd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
    goto fail;
  p = (struct pollfd){ .fd = fd, .events = POLLOUT };
  if (TEMP_FAILURE_RETRY (poll (&p, 1, timeout_ms)) <= 0)
    {
      errno = ETIMEDOUT;
      goto fail;
    }
  if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0)
    {
      errno = soerr ? soerr : errno;
      goto fail;
    }
  if (fcntl (fd, F_SETFL, 0) < 0)
    goto fail;
  return fd;
fail:
  {
    int saved = errno;
    close (fd);
    errno = saved;
    return -1;
  }
}
