/* Code of the hidden executions, per language.  Strings are embedded as
   JSON string literals (ASCII-escaped), which Python, JavaScript and R all
   read as the same string; bash gets single quotes.  */
#define _GNU_SOURCE
#include "interp-internal.h"
#include "jupyter.h"
#include "libhutch/util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

enum lang
{
  LANG_OTHER,
  LANG_PYTHON,
  LANG_JS,
  LANG_R,
  LANG_BASH,
};

static enum lang
lang_of (const char *language)
{
  if (strcmp (language, "python") == 0)
    return LANG_PYTHON;
  if (strcmp (language, "javascript") == 0 || strcmp (language, "typescript") == 0)
    return LANG_JS;
  if (strcmp (language, "r") == 0)
    return LANG_R;
  if (strcmp (language, "bash") == 0)
    return LANG_BASH;
  return LANG_OTHER;
}

static char *
literal (const char *s)
{
  json_t *j = json_string (s);
  char *out = json_dumps (j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
  json_decref (j);
  return out ? out : xstrdup ("\"\"");
}

static char *
literal_json (json_t *v)
{
  return json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
}

/* 'S' for bash.  */
static char *
shell_quote (const char *s)
{
  size_t n = 2;
  char *out, *o;

  for (const char *p = s; *p; p++)
    n += *p == '\'' ? 4 : 1;
  out = o = xmalloc (n + 1);
  *o++ = '\'';
  for (const char *p = s; *p; p++)
    if (*p == '\'')
      o = stpcpy (o, "'\\''");
    else
      *o++ = *p;
  *o++ = '\'';
  *o = '\0';
  return out;
}

static bool
shell_name (const char *k)
{
  if (!isalpha ((unsigned char)*k) && *k != '_')
    return false;
  for (; *k; k++)
    if (!isalnum ((unsigned char)*k) && *k != '_')
      return false;
  return true;
}

char *
snippet_chdir (const char *language, const char *path)
{
  cleanup_free char *lit = literal (path), *sq = shell_quote (path);
  char *out = NULL;

  switch (lang_of (language))
    {
    case LANG_PYTHON:
      xasprintf (&out, "__import__('os').chdir(%s)", lit);
      break;
    case LANG_JS:
      xasprintf (&out, "process.chdir(%s)", lit);
      break;
    case LANG_R:
      xasprintf (&out, "setwd(%s)", lit);
      break;
    case LANG_BASH:
      xasprintf (&out, "cd %s", sq);
      break;
    case LANG_OTHER:
      break;
    }
  return out;
}

/* Bash: one export or unset per variable.  */
static char *
bash_env (json_t *set, json_t *unset)
{
  char *out = xstrdup ("");
  const char *k;
  json_t *v;
  size_t i;

  json_object_foreach (set, k, v)
  {
    cleanup_free char *q = shell_quote (json_string_value (v)), *prev = out;
    if (shell_name (k))
      xasprintf (&out, "%sexport %s=%s\n", prev, k, q);
    else
      out = steal_pointer (&prev);
  }
  json_array_foreach (unset, i, v)
  {
    cleanup_free char *prev = out;
    if (shell_name (json_string_value (v)))
      xasprintf (&out, "%sunset %s\n", prev, json_string_value (v));
    else
      out = steal_pointer (&prev);
  }
  return out;
}

static char *
r_env (json_t *set, json_t *unset)
{
  cleanup_free char *names = literal_json (unset);
  char *out = xstrdup ("");
  const char *k;
  json_t *v;

  json_object_foreach (set, k, v)
  {
    cleanup_free char *kl = literal (k), *vl = literal (json_string_value (v)), *prev = out;
    xasprintf (&out, "%sSys.setenv(%s = %s)\n", prev, kl, vl);
  }
  if (json_array_size (unset) > 0)
    {
      cleanup_free char *prev = out;
      /* A JSON array of strings reads as an R vector once [] become c().  */
      names[0] = '(';
      names[strlen (names) - 1] = ')';
      xasprintf (&out, "%sSys.unsetenv(c%s)\n", prev, names);
    }
  return out;
}

/* Set the variables of SET, unset those named in UNSET (an array).  */
static char *
env_code (const char *language, json_t *set, json_t *unset)
{
  cleanup_free char *s = literal_json (set), *u = literal_json (unset);
  char *out = NULL;

  switch (lang_of (language))
    {
    case LANG_PYTHON:
      xasprintf (&out,
                 "__import__('os').environ.update(%s)\n"
                 "[__import__('os').environ.pop(k, None) for k in %s]",
                 s, u);
      break;
    case LANG_JS:
      xasprintf (&out,
                 "Object.assign(process.env, %s);\nfor (const k of %s) delete process.env[k];", s,
                 u);
      break;
    case LANG_R:
      return r_env (set, unset);
    case LANG_BASH:
      return bash_env (set, unset);
    case LANG_OTHER:
      break;
    }
  return out;
}

char *
snippet_setenv (const char *language, json_t *vars)
{
  cleanup_json_t json_t *none = json_array ();
  return env_code (language, vars, none);
}

char *
snippet_restore_env (const char *language, json_t *vars, json_t *globals)
{
  cleanup_json_t json_t *set = json_object (), *unset = json_array ();
  const char *k;
  json_t *v;

  json_object_foreach (vars, k, v)
  {
    json_t *g = json_object_get (globals, k);
    if (json_is_string (g))
      json_object_set (set, k, g);
    else
      json_array_append_new (unset, json_string (k));
  }
  return env_code (language, set, unset);
}

/* Validation.  Each prints one line: {"valid": true} or {"valid": false,
   "error": {"name", "value", "line"}}.  */

static const char python_validate[]
    = "def __hutch_validate(src):\n"
      "    import json\n"
      "    try:\n"
      "        ip = globals().get('get_ipython', lambda: None)()\n"
      "        flags = __import__('ast').PyCF_ALLOW_TOP_LEVEL_AWAIT\n"
      "        compile(ip.transform_cell(src) if ip else src, '<cell>', 'exec', flags)\n"
      "        return json.dumps({'valid': True})\n"
      "    except SyntaxError as e:\n"
      "        return json.dumps({'valid': False, 'error': {'name': type(e).__name__,\n"
      "                           'value': str(e.msg), 'line': e.lineno}})\n"
      "print(__hutch_validate(%s))\n"
      "del __hutch_validate\n";

static const char js_validate[]
    = "(() => {\n"
      "  const vm = require('vm');\n"
      "  const check = (src) => { new vm.Script(src, { filename: '<cell>' }); };\n"
      "  const src = %s;\n"
      "  try {\n"
      "    try { check(src); } catch (e) {\n"
      "      if (!/await/.test(String(e.message))) throw e;\n"
      "      check('(async () => {\\n' + src + '\\n})()');\n"
      "    }\n"
      "    console.log(JSON.stringify({ valid: true }));\n"
      "  } catch (e) {\n"
      "    const m = /<cell>:(\\d+)/.exec(String(e.stack));\n"
      "    console.log(JSON.stringify({ valid: false, error: { name: e.name, value: e.message,\n"
      "      line: m ? Number(m[1]) : null } }));\n"
      "  }\n"
      "})();\n";

/* bash -n reports "bash: line N: message"; quotes and backslashes are
   escaped for JSON, and only the first line is kept.  */
static const char bash_validate[]
    = "__hutch_m=$(bash -n 2>&1 <<'%s'\n"
      "%s\n"
      "%s\n"
      ")\n"
      "if [ -z \"$__hutch_m\" ]; then echo '{\"valid\": true}'; else\n"
      "  __hutch_m=${__hutch_m%%%%$'\\n'*}; __hutch_l=null\n"
      "  if [[ $__hutch_m =~ line\\ ([0-9]+):\\ (.*) ]]; then\n"
      "    __hutch_l=${BASH_REMATCH[1]}; __hutch_m=${BASH_REMATCH[2]}; fi\n"
      "  __hutch_m=${__hutch_m//\\\\/\\\\\\\\}; __hutch_m=${__hutch_m//\\\"/\\\\\\\"}\n"
      "  __hutch_m=${__hutch_m//$'\\t'/ }\n"
      "  printf '{\"valid\": false, \"error\": {\"name\": \"SyntaxError\", \"value\": \"%%s\", "
      "\"line\": %%s}}\\n' \"$__hutch_m\" \"$__hutch_l\"\n"
      "fi\n"
      "unset __hutch_m __hutch_l\n";

/* A here-document delimiter that no line of CODE equals.  */
static void
heredoc_word (const char *code, char *out)
{
  do
    {
      char id[JUPYTER_ID_LEN + 1];
      jupyter_uuid (id);
      snprintf (out, 48, "HUTCH_EOF_%.8s", id);
    }
  while (strstr (code, out));
}

char *
snippet_validate (const char *language, const char *code)
{
  cleanup_free char *lit = literal (code);
  char word[48];
  char *out = NULL;

  switch (lang_of (language))
    {
    case LANG_PYTHON:
      xasprintf (&out, python_validate, lit);
      break;
    case LANG_JS:
      /* Node's parser knows no TypeScript.  */
      if (strcmp (language, "javascript") == 0)
        xasprintf (&out, js_validate, lit);
      break;
    case LANG_BASH:
      heredoc_word (code, word);
      xasprintf (&out, bash_validate, word, code, word);
      break;
    case LANG_R:
    case LANG_OTHER:
      break;
    }
  return out;
}
