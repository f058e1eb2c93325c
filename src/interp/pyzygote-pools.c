/* Fill the free blocks of pymalloc's partly used pools in the zygote.

   A forked kernel allocates its small objects from the pools that have
   room first.  In the zygote those pools are spread over the pages of the
   preloaded interpreter, so each object a kernel makes there copies a
   shared page (up to a 16 KiB pool) into the kernel's private memory.
   Once the zygote has taken every free block itself, kernels take fresh
   pools instead, and the shared pages stay shared.  The blocks cost the
   zygote a few hundred KiB, once.  */
#define _GNU_SOURCE
#include <Python.h>

#include "pyzygote-internal.h"

#include <stdio.h>
#include <stdlib.h>

#define SIZE_CLASSES 64

/* Exported by libpython (what sys._debugmallocstats() prints), declared
   only in its internal headers.  */
PyAPI_FUNC (int) _PyObject_DebugMallocStats (FILE *out);

/* Free blocks per size class, from pymalloc's statistics table:
   "class size pools in-use available".  Returns the number of classes
   read.  */
static int
read_free_blocks (long sizes[SIZE_CLASSES], long free_blocks[SIZE_CLASSES])
{
  char *text = NULL, *line, *save = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&text, &len);
  int n = 0;

  if (f == NULL)
    return 0;
  _PyObject_DebugMallocStats (f);
  fclose (f);
  for (line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      int cls;
      long size, pools, used, avail;

      if (sscanf (line, " %d %ld %ld %ld %ld", &cls, &size, &pools, &used, &avail) == 5 && cls >= 0
          && cls < SIZE_CLASSES && size > 0)
        {
          sizes[n] = size;
          free_blocks[n] = avail;
          n++;
        }
    }
  free (text);
  return n;
}

size_t
pyzygote_fill_pools (void)
{
  long sizes[SIZE_CLASSES], free_blocks[SIZE_CLASSES];
  int n = read_free_blocks (sizes, free_blocks);
  size_t filled = 0;

  for (int i = 0; i < n; i++)
    for (long b = 0; b < free_blocks[i]; b++)
      {
        /* Never freed: the blocks belong to the zygote for good.  */
        if (PyObject_Malloc ((size_t)sizes[i]) == NULL)
          return filled;
        filled += (size_t)sizes[i];
      }
  return filled;
}
