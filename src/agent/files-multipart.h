/* multipart/form-data (RFC 7578), parsed as it streams (files-multipart.c):
   part bodies are handed over as they arrive, never held whole.  Used by
   POST /files (files-upload.c).  */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define MP_HEADERS_MAX (16 * 1024)
#define MP_BOUNDARY_MAX 200

/* What a parser tells its owner.  Each returns false when the owner has
   failed: the parser then stops at the end of its current step.  */
struct mp_handler
{
  /* A part starts; NAME and FILENAME are the decoded Content-Disposition
     parameters, NULL when absent.  */
  bool (*part_begin) (void *cls, const char *name, const char *filename);
  /* The next bytes of the current part's body.  */
  bool (*part_data) (void *cls, const char *data, size_t size);
  /* The current part's body has ended.  */
  bool (*part_end) (void *cls);
};

enum mp_state
{
  MP_PREAMBLE,
  MP_AFTER_DELIM,
  MP_HEADERS,
  MP_BODY,
  MP_END,
};

struct mp_parser
{
  const struct mp_handler *handler;
  void *cls;
  const char *error; /* why the body is malformed, NULL while it is not */
  bool stopped;      /* a handler failed */
  enum mp_state state;
  char *delim; /* "\r\n--" boundary */
  size_t dlen, matched;
  int after; /* position in what follows a delimiter */
  char headers[MP_HEADERS_MAX];
  size_t hlen;
};

/* Start parsing a body of CONTENT_TYPE ("multipart/...; boundary=...").
   Returns false when it has no valid boundary.  */
bool mp_init (struct mp_parser *mp, const char *content_type, const struct mp_handler *handler,
              void *cls);

void mp_free (struct mp_parser *mp);

/* Parse the next N bytes of the body.  Returns false once the body is
   malformed (MP->error says how) or a handler failed.  */
bool mp_feed (struct mp_parser *mp, const char *p, size_t n);

/* Whether the closing boundary was seen.  */
bool mp_done (const struct mp_parser *mp);
