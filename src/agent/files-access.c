/* Who may use /files: the access token in X-Access-Token, or a URL signed
   with it for one path, operation and user, optionally until a time.  */
#define _GNU_SOURCE
#include "agent.h"
#include "files-internal.h"
#include "libhutch/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "v1_" + unpadded base64 of sha256("path:op:user:token[:exp]").  */
static char *
make_signature (const char *path, const char *op, const char *user, const char *token,
                const char *exp)
{
  cleanup_free char *input = NULL;
  unsigned char digest[EVP_MAX_MD_SIZE], b64[64];
  unsigned int len = 0;
  char *out;
  int n;

  xasprintf (&input, "%s:%s:%s:%s%s%s", path, op, user, token, exp ? ":" : "", exp ? exp : "");
  EVP_Digest (input, strlen (input), digest, &len, EVP_sha256 (), NULL);
  explicit_bzero (input, strlen (input));
  n = EVP_EncodeBlock (b64, digest, (int)len);
  while (n > 0 && b64[n - 1] == '=')
    n--;
  xasprintf (&out, "v1_%.*s", n, (const char *)b64);
  return out;
}

static bool
parse_unix_time (const char *s, long long *ret, char *canon, size_t canon_size)
{
  char *end;
  errno = 0;
  *ret = strtoll (s, &end, 10);
  if (errno || end == s || *end)
    return false;
  snprintf (canon, canon_size, "%lld", *ret);
  return true;
}

const char *
files_access_denied (struct MHD_Connection *conn, const char *op)
{
  const char *header = http_header (conn, "X-Access-Token");
  const char *sig = http_query (conn, "signature");
  const char *exp = http_query (conn, "signature_expiration");
  const char *path = http_query (conn, "path"), *user = http_query (conn, "username");
  cleanup_free char *token = NULL;
  cleanup_free char *expected = NULL;
  char canon[32];
  long long exp_unix = 0;
  bool ok;

  agent_lock ();
  token = agent.access_token ? xstrdup (agent.access_token) : NULL;
  agent_unlock ();
  if (token == NULL)
    return NULL;
  if (header && *header)
    ok = http_secret_equal (header, token);
  else if (sig == NULL)
    ok = false;
  else if (exp && !parse_unix_time (exp, &exp_unix, canon, sizeof canon))
    ok = false;
  else
    {
      expected = make_signature (path ? path : "", op, user ? user : "", token, exp ? canon : NULL);
      ok = http_secret_equal (sig, expected);
      if (ok && exp && exp_unix < (long long)time (NULL))
        {
          explicit_bzero (token, strlen (token));
          return "signature is already expired";
        }
    }
  explicit_bzero (token, strlen (token));
  if (ok)
    return NULL;
  if (header && *header)
    return "access token present in header but does not match";
  return sig ? "invalid signature" : "missing signature query parameter";
}
