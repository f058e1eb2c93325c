/* The error contract of libhutch.

   A function that can fail takes `hutch_error_t *err` as its last argument
   and returns an int (< 0 on failure) or a pointer (NULL on failure).  On
   success `*err` is untouched.  On failure `*err` is set to an allocated
   error carrying an errno-style status and a message, made at the place the
   syscall failed.  Callers add context with hutch_error_wrap() and the
   program converts the error exactly once at its edge (an exit code, an
   HTTP status), then releases it with hutch_error_release().  */
#pragma once

#include <stdarg.h>

struct hutch_error_s
{
  int status; /* errno value, or 0 when there is none */
  char *msg;
};
typedef struct hutch_error_s *hutch_error_t;

/* Set *ERR and return -STATUS - 1 (always negative).  When STATUS is
   non-zero the message gets ": strerror(STATUS)" appended.  */
int hutch_make_error (hutch_error_t *err, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* Prefix the message of *ERR with "context: ".  Returns the same negative
   value as hutch_make_error would for its status.  */
int hutch_error_wrap (hutch_error_t *err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Free *ERR (NULL is fine) and set it to NULL.  */
void hutch_error_release (hutch_error_t *err);

#define cleanup_error __attribute__ ((cleanup (hutch_error_release)))
