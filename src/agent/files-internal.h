/* GET and POST /files, shared between their files: error replies, the
   query's checks and its user (files.c), access by token or signed URL
   (files-access.c).  Downloads are in files-download.c, uploads in
   files-upload.c, their multipart parser in files-multipart.c.  */
#pragma once

#include "common/http.h"
#include "users.h"

#include <stdbool.h>

/* Reply {"code": STATUS, "message": "..."} as envd does.  */
enum MHD_Result files_error (struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* NULL when the request may use /files for OP ("read", "write"), else
   why not.  */
const char *files_access_denied (struct MHD_Connection *conn, const char *op);

/* Whether a query argument holds a NUL ("path=/x%00y"), which every C
   string use would cut short.  */
bool files_query_has_nul (struct MHD_Connection *conn);

/* The ?username= user, else the default user.  Returns 0, or -1 when
   there is no such user.  */
int files_user (struct MHD_Connection *conn, struct agent_user *ret);

/* The ?username= name for messages.  */
const char *files_user_name (struct MHD_Connection *conn);

/* The last component of PATH (PATH itself when it ends in a slash).  */
const char *files_base_of (const char *path);
