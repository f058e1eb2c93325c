/* The wire side of the Jupyter client: connection files, sockets, and
   signed multipart messages
   [ids..., "<IDS|MSG>", hmac, header, parent_header, metadata, content,
   buffers...].  */
#define _GNU_SOURCE
#include "jupyter-internal.h"
#include "libhutch/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <zmq.h>

#define DELIMITER "<IDS|MSG>"
#define MAX_FRAMES 64
#define SEND_TIMEOUT_MS 10000

static const char *const port_names[_JUPYTER_CHANNEL_MAX]
    = { "shell_port", "iopub_port", "stdin_port", "control_port", "hb_port" };

static void *zctx;
static pthread_once_t zctx_once = PTHREAD_ONCE_INIT;

static void
zctx_init (void)
{
  zctx = zmq_ctx_new ();
}

void
jupyter_uuid (char *out)
{
  unsigned char b[16];

  random_bytes (b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  snprintf (out, JUPYTER_ID_LEN + 1,
            "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
            b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
            b[15]);
}

/* Connection files.  */

/* The standard way: let the kernel of this machine choose free ports by
   binding to port 0, all five at once so they differ, then release them
   for the kernel to bind.  */
static int
pick_ports (int *ports, hutch_error_t *err)
{
  int fds[_JUPYTER_CHANNEL_MAX];
  int ret = 0, i;

  for (i = 0; i < _JUPYTER_CHANNEL_MAX && ret == 0; i++)
    {
      struct sockaddr_in a = { .sin_family = AF_INET };
      socklen_t len = sizeof a;

      a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
      fds[i] = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fds[i] < 0 || bind (fds[i], (struct sockaddr *)&a, sizeof a) < 0
          || getsockname (fds[i], (struct sockaddr *)&a, &len) < 0)
        ret = hutch_make_error (err, errno, "choose a port for the kernel");
      ports[i] = ntohs (a.sin_port);
    }
  while (i-- > 0)
    if (fds[i] >= 0)
      close (fds[i]);
  return ret;
}

static json_t *
conn_json (const struct jupyter_conn *c)
{
  json_t *j = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "ip", "127.0.0.1", "transport", "tcp",
                         "signature_scheme", "hmac-sha256", "key", c->key, "kernel_name", "");
  for (int i = 0; i < _JUPYTER_CHANNEL_MAX; i++)
    json_object_set_new (j, port_names[i], json_integer (c->ports[i]));
  return j;
}

int
jupyter_conn_write (const char *path, uid_t uid, gid_t gid, struct jupyter_conn *ret,
                    hutch_error_t *err)
{
  cleanup_close int fd = -1;
  cleanup_free char *text = NULL;
  unsigned char raw[32];
  json_t *j;

  random_bytes (raw, sizeof raw);
  for (size_t i = 0; i < sizeof raw; i++)
    snprintf (ret->key + 2 * i, 3, "%02x", raw[i]);
  if (pick_ports (ret->ports, err) < 0)
    return -1;
  j = conn_json (ret);
  text = json_dumps (j, JSON_INDENT (1));
  json_decref (j);
  unlink (path);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return hutch_make_error (err, errno, "create `%s`", path);
  if (fchown (fd, uid, gid) < 0 || write_all (fd, text, strlen (text)) < 0)
    return hutch_make_error (err, errno, "write `%s`", path);
  return 0;
}

/* Sockets.  */

static void *
open_socket (int type, int port, hutch_error_t *err)
{
  char endpoint[64];
  int zero = 0, timeout = SEND_TIMEOUT_MS;
  void *s = zmq_socket (zctx, type);

  if (s == NULL)
    return hutch_make_error (err, errno, "zmq socket"), NULL;
  int reconnect_ms = 1, reconnect_max_ms = 64;

  zmq_setsockopt (s, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt (s, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
  /* Never drop iopub messages: a lost status idle would hang an
     execution.  The HTTP side reads them at the client's pace.  */
  if (type == ZMQ_SUB)
    {
      zmq_setsockopt (s, ZMQ_RCVHWM, &zero, sizeof zero);
      zmq_setsockopt (s, ZMQ_SUBSCRIBE, "", 0);
    }
  /* The kernel binds its ports a few milliseconds after this connects;
     libzmq's default 100 ms reconnect interval would be paid in full.  */
  zmq_setsockopt (s, ZMQ_RECONNECT_IVL, &reconnect_ms, sizeof reconnect_ms);
  zmq_setsockopt (s, ZMQ_RECONNECT_IVL_MAX, &reconnect_max_ms, sizeof reconnect_max_ms);
  snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
  if (zmq_connect (s, endpoint) < 0)
    {
      int saved = errno;
      zmq_close (s);
      return hutch_make_error (err, saved, "connect to %s", endpoint), NULL;
    }
  return s;
}

struct jupyter_client *
jupyter_client_new (const struct jupyter_conn *conn, pid_t pid, int pidfd,
                    bool interrupt_by_message, hutch_error_t *err)
{
  static const int types[_JUPYTER_CHANNEL_MAX] = { ZMQ_DEALER, ZMQ_SUB, -1, ZMQ_DEALER, -1 };
  struct jupyter_client *c = xzalloc (sizeof *c);

  pthread_once (&zctx_once, zctx_init);
  c->pid = pid;
  c->pidfd = pidfd;
  c->dead = pidfd < 0;
  c->interrupt_by_message = interrupt_by_message;
  memcpy (c->key, conn->key, sizeof c->key);
  jupyter_uuid (c->session);
  if (zctx == NULL)
    {
      hutch_make_error (err, errno, "zmq context");
      jupyter_client_free (c);
      return NULL;
    }
  for (int i = 0; i < _JUPYTER_CHANNEL_MAX; i++)
    if (types[i] >= 0 && (c->sock[i] = open_socket (types[i], conn->ports[i], err)) == NULL)
      {
        jupyter_client_free (c);
        return NULL;
      }
  return c;
}

void
jupyter_client_free (struct jupyter_client *c)
{
  if (c == NULL)
    return;
  for (int i = 0; i < _JUPYTER_CHANNEL_MAX; i++)
    if (c->sock[i])
      zmq_close (c->sock[i]);
  if (c->pidfd >= 0)
    close (c->pidfd);
  free (c);
}

/* Signatures.  */

/* Hex HMAC-SHA256 of the four JSON parts, in OUT (65 bytes).  */
static void
sign (const char *key, zmq_msg_t *const parts[4], char *out)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  size_t total = 0, off = 0;
  cleanup_free unsigned char *buf = NULL;

  for (int i = 0; i < 4; i++)
    total += zmq_msg_size (parts[i]);
  buf = xmalloc (total);
  for (int i = 0; i < 4; i++)
    {
      memcpy (buf + off, zmq_msg_data (parts[i]), zmq_msg_size (parts[i]));
      off += zmq_msg_size (parts[i]);
    }
  HMAC (EVP_sha256 (), key, (int)strlen (key), buf, total, md, &md_len);
  for (unsigned i = 0; i < md_len; i++)
    snprintf (out + 2 * i, 3, "%02x", md[i]);
}

/* Sending.  */

static void
msg_from_json (zmq_msg_t *m, json_t *j)
{
  char *text = json_dumps (j, JSON_COMPACT | JSON_ENCODE_ANY);
  size_t n = strlen (text);

  zmq_msg_init_size (m, n);
  memcpy (zmq_msg_data (m), text, n);
  free (text);
}

static json_t *
new_header (struct jupyter_client *c, const char *type, char *id)
{
  char date[64];
  struct timespec ts;
  struct tm tm;

  jupyter_uuid (id);
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  snprintf (date, sizeof date, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
  return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "msg_id", id, "username", "hutch", "session",
                    c->session, "date", date, "msg_type", type, "version", "5.3");
}

/* Sent frames belong to ZeroMQ; the others are ours to close.  */
static int
send_frames (void *sock, zmq_msg_t *frames, int n)
{
  int ret = 0, saved = 0;

  for (int i = 0; i < n; i++)
    {
      if (ret == 0 && zmq_msg_send (&frames[i], sock, i + 1 < n ? ZMQ_SNDMORE : 0) >= 0)
        continue;
      if (ret == 0)
        saved = errno;
      ret = -1;
      zmq_msg_close (&frames[i]);
    }
  errno = saved;
  return ret;
}

int
jupyter_send (struct jupyter_client *c, enum jupyter_channel channel, const char *type,
              json_t *content, char *ret_id, hutch_error_t *err)
{
  char id[JUPYTER_ID_LEN + 1], sig[65];
  json_t *header = new_header (c, type, id), *empty = json_object ();
  zmq_msg_t f[6];

  zmq_msg_init_size (&f[0], strlen (DELIMITER));
  memcpy (zmq_msg_data (&f[0]), DELIMITER, strlen (DELIMITER));
  msg_from_json (&f[2], header);
  msg_from_json (&f[3], empty);
  msg_from_json (&f[4], empty);
  msg_from_json (&f[5], content);
  json_decref (header);
  json_decref (empty);
  json_decref (content);
  sign (c->key, (zmq_msg_t *const[4]){ &f[2], &f[3], &f[4], &f[5] }, sig);
  zmq_msg_init_size (&f[1], 64);
  memcpy (zmq_msg_data (&f[1]), sig, 64);
  if (send_frames (c->sock[channel], f, 6) < 0)
    return hutch_make_error (err, errno, "send %s to the kernel", type);
  if (ret_id)
    memcpy (ret_id, id, sizeof id);
  return 0;
}

/* Receiving.  */

void
jupyter_msg_free (struct jupyter_msg *m)
{
  if (m == NULL)
    return;
  json_decref (m->header);
  json_decref (m->parent);
  json_decref (m->metadata);
  json_decref (m->content);
  free (m);
}

/* Read one multipart message.  Frames past MAX_FRAMES (binary buffers,
   which we do not use) are read and dropped.  */
static int
recv_frames (void *sock, zmq_msg_t *frames, int *n)
{
  int more = 1;
  size_t len = sizeof more;

  *n = 0;
  while (more)
    {
      zmq_msg_t scratch, *f = *n < MAX_FRAMES ? &frames[*n] : &scratch;

      zmq_msg_init (f);
      if (zmq_msg_recv (f, sock, ZMQ_DONTWAIT) < 0)
        {
          zmq_msg_close (f);
          return -1;
        }
      if (f == &scratch)
        zmq_msg_close (f);
      else
        (*n)++;
      if (zmq_getsockopt (sock, ZMQ_RCVMORE, &more, &len) < 0)
        more = 0;
    }
  return 0;
}

static json_t *
frame_json (zmq_msg_t *f)
{
  return json_loadb (zmq_msg_data (f), zmq_msg_size (f), 0, NULL);
}

static bool
signature_ok (const char *key, zmq_msg_t *frames)
{
  char want[65];

  if (zmq_msg_size (&frames[0]) != 64)
    return false;
  sign (key, (zmq_msg_t *const[4]){ &frames[1], &frames[2], &frames[3], &frames[4] }, want);
  return CRYPTO_memcmp (want, zmq_msg_data (&frames[0]), 64) == 0;
}

/* Parse FRAMES[0..N) into a message, or NULL when it is malformed or
   badly signed.  */
static struct jupyter_msg *
parse (struct jupyter_client *c, zmq_msg_t *frames, int n)
{
  struct jupyter_msg *m;
  json_t *msg_id;
  int d = 0;

  while (d < n
         && !(zmq_msg_size (&frames[d]) == strlen (DELIMITER)
              && memcmp (zmq_msg_data (&frames[d]), DELIMITER, strlen (DELIMITER)) == 0))
    d++;
  if (n - d < 6 || !signature_ok (c->key, &frames[d + 1]))
    return NULL;
  m = xzalloc (sizeof *m);
  m->header = frame_json (&frames[d + 2]);
  m->parent = frame_json (&frames[d + 3]);
  m->metadata = frame_json (&frames[d + 4]);
  m->content = frame_json (&frames[d + 5]);
  m->type = json_string_value (json_object_get (m->header, "msg_type"));
  if (m->type == NULL || !json_is_object (m->content) || !json_is_object (m->parent))
    {
      jupyter_msg_free (m);
      return NULL;
    }
  msg_id = json_object_get (m->parent, "msg_id");
  m->parent_id = json_is_string (msg_id) ? json_string_value (msg_id) : "";
  m->date = json_string_value (json_object_get (m->header, "date"));
  return m;
}

static struct jupyter_msg *
read_message (struct jupyter_client *c, enum jupyter_channel channel)
{
  zmq_msg_t frames[MAX_FRAMES];
  struct jupyter_msg *m = NULL;
  int n;

  if (recv_frames (c->sock[channel], frames, &n) == 0)
    m = parse (c, frames, n);
  for (int i = 0; i < n; i++)
    zmq_msg_close (&frames[i]);
  if (m)
    m->channel = channel;
  return m;
}

static void
mark_dead (struct jupyter_client *c)
{
  c->dead = true;
  close (c->pidfd);
  c->pidfd = -1;
}

int
jupyter_recv (struct jupyter_client *c, unsigned long long deadline, int watch_fd,
              struct jupyter_msg **ret, hutch_error_t *err)
{
  static const enum jupyter_channel order[] = { JUPYTER_IOPUB, JUPYTER_SHELL, JUPYTER_CONTROL };

  for (;;)
    {
      zmq_pollitem_t items[5] = {
        { c->sock[JUPYTER_IOPUB], 0, ZMQ_POLLIN, 0 },
        { c->sock[JUPYTER_SHELL], 0, ZMQ_POLLIN, 0 },
        { c->sock[JUPYTER_CONTROL], 0, ZMQ_POLLIN, 0 },
        { NULL, watch_fd, ZMQ_POLLIN, 0 },
        { NULL, c->pidfd, ZMQ_POLLIN, 0 },
      };
      int n = zmq_poll (items, c->pidfd >= 0 ? 5 : 4, ms_until (deadline));

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return hutch_make_error (err, errno, "poll the kernel's sockets");
      for (int i = 0; i < 3; i++)
        if (items[i].revents & ZMQ_POLLIN)
          {
            /* Messages the kernel sent before dying are still delivered.  */
            *ret = read_message (c, order[i]);
            if (*ret)
              return JUPYTER_GOT;
          }
      if (c->pidfd >= 0 && (items[4].revents & ZMQ_POLLIN))
        mark_dead (c);
      if (c->dead)
        return JUPYTER_DEAD;
      if (watch_fd >= 0 && (items[3].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
        return JUPYTER_WATCH;
      if (n == 0)
        return JUPYTER_TIMEOUT;
    }
}

bool
jupyter_alive (struct jupyter_client *c)
{
  struct pollfd p = { .fd = c->pidfd, .events = POLLIN };

  if (!c->dead && poll (&p, 1, 0) == 1)
    mark_dead (c);
  return !c->dead;
}
