#define _GNU_SOURCE
#include "config.h"
#include "libhutch/log.h"
#include "libhutch/util.h"

#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

static const char usage[]
    = "usage: hutchd [OPTIONS]\n"
      "\n"
      "The hutch server: an E2B-compatible API for sandboxes on one port.\n"
      "\n"
      "  --listen HOST:PORT   address to serve (default 127.0.0.1:3000)\n"
      "  --data-dir DIR       state directory (default /var/lib/hutch)\n"
      "  --api-key KEY        API key (default $HUTCH_API_KEY, else DIR/api-key)\n"
      "  --domain DOMAIN      serve {port}-{id}.DOMAIN hosts (default: any domain)\n"
      "  --config FILE        JSON settings (see docs/configuration.md)\n"
      "  --log LEVEL          error, warn, info or debug (default info)\n";

static void
set_str (char **field, const char *value)
{
  free (*field);
  *field = xstrdup (value);
}

static int
parse_listen (struct hutchd_config *c, const char *value, hutch_error_t *err)
{
  const char *colon = strrchr (value, ':');
  unsigned long port;

  if (colon == NULL || colon == value || parse_ulong (colon + 1, 65535, &port) < 0 || port == 0)
    return hutch_make_error (err, EINVAL, "listen address `%s`: expected HOST:PORT", value);
  free (c->listen_host);
  c->listen_host = xstrndup (value, (size_t)(colon - value));
  c->listen_port = (int)port;
  return 0;
}

static int
int_field (json_t *obj, const char *key, long long min, long long max, long long *out,
           hutch_error_t *err)
{
  json_t *v = json_object_get (obj, key);
  if (v == NULL)
    return 0;
  if (!json_is_integer (v) || json_integer_value (v) < min || json_integer_value (v) > max)
    return hutch_make_error (err, EINVAL, "config: `%s` must be an integer from %lld to %lld", key,
                             min, max);
  *out = json_integer_value (v);
  return 0;
}

static int
apply_file (struct hutchd_config *c, const char *path, hutch_error_t *err)
{
  json_error_t jerr;
  json_t *root = json_load_file (path, JSON_REJECT_DUPLICATES, &jerr);
  long long v[7] = { c->max_sandboxes, c->default_timeout_s, c->max_timeout_s,  c->cpu_count,
                     c->memory_mb,     c->disk_mb,           c->spare_sandboxes };
  const char *str;
  int r = 0;

  if (root == NULL || !json_is_object (root))
    {
      json_decref (root);
      return hutch_make_error (err, EINVAL, "config `%s`: line %d: %s", path, jerr.line,
                               root ? "expected an object" : jerr.text);
    }
  if ((str = json_string_value (json_object_get (root, "listen"))))
    r = parse_listen (c, str, err);
  if ((str = json_string_value (json_object_get (root, "dataDir"))))
    set_str (&c->data_dir, str);
  if ((str = json_string_value (json_object_get (root, "apiKey"))))
    set_str (&c->api_key, str);
  if ((str = json_string_value (json_object_get (root, "domain"))))
    set_str (&c->domain, str);
  if (r == 0)
    r = int_field (root, "maxSandboxes", 1, 100000, &v[0], err);
  if (r == 0)
    r = int_field (root, "defaultTimeout", 1, 31536000, &v[1], err);
  if (r == 0)
    r = int_field (root, "maxTimeout", 1, 31536000, &v[2], err);
  if (r == 0)
    r = int_field (root, "cpuCount", 1, 1024, &v[3], err);
  if (r == 0)
    r = int_field (root, "memoryMB", 16, 1 << 24, &v[4], err);
  if (r == 0)
    r = int_field (root, "diskSizeMB", 16, 1 << 24, &v[5], err);
  if (r == 0)
    r = int_field (root, "spareSandboxes", 0, 64, &v[6], err);
  json_decref (root);
  c->max_sandboxes = (int)v[0];
  c->default_timeout_s = v[1];
  c->max_timeout_s = v[2];
  c->cpu_count = (int)v[3];
  c->memory_mb = (int)v[4];
  c->disk_mb = (int)v[5];
  c->spare_sandboxes = (int)v[6];
  return r;
}

static void
defaults (struct hutchd_config *c)
{
  const char *env_key = getenv ("HUTCH_API_KEY");
  const char *env_dir = getenv ("HUTCH_DATA_DIR");

  memset (c, 0, sizeof *c);
  c->listen_host = xstrdup ("127.0.0.1");
  c->listen_port = 3000;
  c->data_dir = xstrdup (env_dir && *env_dir ? env_dir : "/var/lib/hutch");
  if (env_key && *env_key)
    c->api_key = xstrdup (env_key);
  c->max_sandboxes = 500;
  c->spare_sandboxes = 2;
  c->default_timeout_s = 300;
  c->max_timeout_s = 86400;
  c->cpu_count = 2;
  c->memory_mb = 512;
  c->disk_mb = 1024;
  c->log_level = HUTCH_LOG_INFO;
}

static int
parse_level (const char *s)
{
  static const char *const names[] = { "error", "warn", "info", "debug" };
  for (size_t i = 0; i < ARRAY_SIZE (names); i++)
    if (strcmp (s, names[i]) == 0)
      return (int)i;
  return -1;
}

int
config_load (int argc, char **argv, struct hutchd_config *c, hutch_error_t *err)
{
  static const struct option opts[]
      = { { "listen", required_argument, NULL, 'l' },  { "data-dir", required_argument, NULL, 'd' },
          { "api-key", required_argument, NULL, 'k' }, { "domain", required_argument, NULL, 'D' },
          { "config", required_argument, NULL, 'c' },  { "log", required_argument, NULL, 'L' },
          { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 } };
  int ch, r = 0;

  defaults (c);
  /* The config file first, so that options given on the command line win.  */
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp (argv[i], "--config") == 0 && (r = apply_file (c, argv[i + 1], err)) < 0)
      return r;
  while ((ch = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (ch)
      {
      case 'l':
        if ((r = parse_listen (c, optarg, err)) < 0)
          return r;
        break;
      case 'd':
        set_str (&c->data_dir, optarg);
        break;
      case 'k':
        set_str (&c->api_key, optarg);
        break;
      case 'D':
        set_str (&c->domain, optarg);
        break;
      case 'c':
        break;
      case 'L':
        if ((c->log_level = parse_level (optarg)) < 0)
          return hutch_make_error (err, EINVAL, "--log: unknown level `%s`", optarg);
        break;
      case 'h':
        fputs (usage, stdout);
        return 1;
      default:
        return hutch_make_error (err, EINVAL, "invalid command line (see hutchd --help)");
      }
  if (optind < argc)
    return hutch_make_error (err, EINVAL, "unexpected argument `%s`", argv[optind]);
  if (c->default_timeout_s > c->max_timeout_s)
    c->default_timeout_s = c->max_timeout_s;
  return 0;
}

void
config_release (struct hutchd_config *c)
{
  free (c->listen_host);
  free (c->data_dir);
  free (c->api_key);
  free (c->domain);
}

static bool
key_valid (const char *key)
{
  size_t n = strlen (key);
  if (n < 8 || n > 256)
    return false;
  for (size_t i = 0; i < n; i++)
    if (key[i] <= ' ' || key[i] > '~')
      return false;
  return true;
}

static int
generate_key (const char *path, char **ret, hutch_error_t *err)
{
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[20];
  char key[64], line[80];
  int fd;

  if (getrandom (raw, sizeof raw, 0) != sizeof raw)
    return hutch_make_error (err, errno, "getrandom");
  strcpy (key, "e2b_");
  for (size_t i = 0; i < sizeof raw; i++)
    {
      key[4 + 2 * i] = hex[raw[i] >> 4];
      key[5 + 2 * i] = hex[raw[i] & 15];
    }
  key[44] = '\0';
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return hutch_make_error (err, errno, "create `%s`", path);
  snprintf (line, sizeof line, "%s\n", key);
  if (write_all (fd, line, strlen (line)) < 0)
    {
      int e = errno;
      close (fd);
      return hutch_make_error (err, e, "write `%s`", path);
    }
  close (fd);
  *ret = xstrdup (key);
  return 0;
}

int
config_api_key (struct hutchd_config *c, bool *ret_new, hutch_error_t *err)
{
  cleanup_free char *path = NULL;
  char *buf = NULL;

  *ret_new = false;
  if (c->api_key)
    return key_valid (c->api_key)
               ? 0
               : hutch_make_error (err, EINVAL,
                                   "the API key must be 8 to 256 printable characters");
  xasprintf (&path, "%s/api-key", c->data_dir);
  if (read_file_at (AT_FDCWD, path, &buf, NULL) == 0)
    {
      buf[strcspn (buf, "\r\n")] = '\0';
      c->api_key = buf;
      return key_valid (buf) ? 0 : hutch_make_error (err, EINVAL, "`%s` holds no valid key", path);
    }
  if (errno != ENOENT)
    return hutch_make_error (err, errno, "read `%s`", path);
  *ret_new = true;
  return generate_key (path, &c->api_key, err);
}
