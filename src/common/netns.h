/* Sockets inside a sandbox's network namespace, made from the host.  */
#pragma once

/* Create a socket in the network namespace NETNS_FD: the calling thread
   enters it, makes the socket, and returns to the host namespace (a socket
   stays in the namespace it was made in).  Returns the fd or -1 (errno).  */
int netns_socket (int netns_fd, int domain, int type, int protocol);

/* Connect a TCP socket to 127.0.0.1:PORT inside NETNS_FD.  TIMEOUT_MS
   bounds the connect.  Returns the fd, or -1 with errno (ECONNREFUSED when
   nothing listens).  */
int netns_connect_loopback (int netns_fd, int port, int timeout_ms);
