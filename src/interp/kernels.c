/* Our own kernels, for languages Debian packages no Jupyter kernel for
   (bash, javascript).  They are one Python program speaking the Jupyter
   protocol with pyzmq (kernels/hutch_kernel.py), which runs a persistent
   bash or node (kernels/hutch_node.js) behind it.

   The scripts are embedded in the binary, so a sandbox needs nothing
   installed but python3-zmq and node: the first use writes them under
   interp_dir()/kernels.  Paths in .incbin are relative to the directory
   the compiler runs in, the top of the tree, as the Makefile does it.  */
#define _GNU_SOURCE
#include "interp-internal.h"
#include "libhutch/util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PYTHON "/usr/bin/python3"

#define EMBED(sym, file)                                                                           \
  __asm__(".pushsection .rodata, \"a\"\n"                                                          \
          ".globl " #sym "\n"                                                                      \
          ".hidden " #sym "\n" #sym ":\n"                                                          \
          ".incbin \"" file "\"\n"                                                                 \
          ".globl " #sym "_end\n"                                                                  \
          ".hidden " #sym "_end\n" #sym "_end:\n"                                                  \
          ".popsection\n")

EMBED (interp_kernel_py, "src/interp/kernels/hutch_kernel.py");
EMBED (interp_node_js, "src/interp/kernels/hutch_node.js");
extern const char interp_kernel_py[], interp_kernel_py_end[];
extern const char interp_node_js[], interp_node_js_end[];

static const struct
{
  const char *name;
  const char *start, *end;
} files[] = {
  { "hutch_kernel.py", interp_kernel_py, interp_kernel_py_end },
  { "hutch_node.js", interp_node_js, interp_node_js_end },
};

static pthread_once_t extract_once = PTHREAD_ONCE_INIT;
static int extract_errno;

const char *
interp_dir (void)
{
  const char *dir = getenv ("HUTCH_INTERP_DIR");
  return dir && *dir ? dir : INTERP_DEFAULT_DIR;
}

/* Write atomically: a kernel starting meanwhile never reads half a file.  */
static int
write_one (const char *dir, const char *name, const char *data, size_t len)
{
  cleanup_free char *tmp = NULL, *path = NULL;
  int fd, r;

  xasprintf (&tmp, "%s/.%s.tmp", dir, name);
  xasprintf (&path, "%s/%s", dir, name);
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return -1;
  r = write_all (fd, data, len);
  if (r == 0)
    r = fchmod (fd, 0644);
  close (fd);
  if (r == 0)
    r = rename (tmp, path);
  return r;
}

static void
extract (void)
{
  cleanup_free char *dir = NULL;

  xasprintf (&dir, "%s/kernels", interp_dir ());
  if (mkdir_p_at (AT_FDCWD, dir, 0755) < 0)
    {
      extract_errno = errno;
      return;
    }
  for (size_t i = 0; i < ARRAY_SIZE (files); i++)
    if (write_one (dir, files[i].name, files[i].start, (size_t)(files[i].end - files[i].start)) < 0)
      {
        extract_errno = errno;
        return;
      }
}

json_t *
builtin_kernel_argv (const char *language, hutch_error_t *err)
{
  cleanup_free char *script = NULL;

  pthread_once (&extract_once, extract);
  if (extract_errno)
    return hutch_make_error (err, extract_errno, "write our kernels under `%s`", interp_dir ()),
           NULL;
  xasprintf (&script, "%s/kernels/hutch_kernel.py", interp_dir ());
  return json_pack ("[s, s, s, s, s, s]", PYTHON, script, "--language", language, "-f",
                    "{connection_file}");
}
