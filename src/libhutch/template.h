/* Templates: the read-only root filesystems sandboxes start from.

   The built-in template "host" (also served as "base" and
   "code-interpreter-v1") is the host's /usr, mounted read-only, plus a
   skeleton made by hutch: the /bin, /lib* links of the host, empty mount
   points, and a generated /etc with only what programs need (users root and
   user, hosts, ld.so.cache, alternatives, certificates, ...).  Nothing
   secret from the host's /etc is copied: no shadow, no keys, no machine-id.  */
#pragma once

#include "error.h"

struct hutch_template
{
  char *name;      /* canonical name */
  char *root;      /* absolute path of the overlay lower directory */
  char **ro_binds; /* host directories bind-mounted read-only at the same path */
};

/* Canonical name of template NAME ("base" -> "host"), or NULL if unknown.  */
const char *hutch_template_canonical (const char *name);

/* Find template NAME under DATA_DIR/templates, building it when missing.  */
int hutch_template_open (const char *data_dir, const char *name, struct hutch_template **ret,
                         hutch_error_t *err);

/* Rebuild the "host" template from the host as it is now (atomically).  */
int hutch_template_rebuild_host (const char *data_dir, hutch_error_t *err);

void hutch_template_free (struct hutch_template *t);
