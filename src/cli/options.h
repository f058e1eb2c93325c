/* Parsing of option values shared by the commands.  Each returns 0, or
   prints a clear message naming OPTION and returns -1.  */
#pragma once

int opt_size (const char *option, const char *value, unsigned long long *ret);
int opt_cpus (const char *option, const char *value, unsigned long *ret_millis);
int opt_count (const char *option, const char *value, unsigned long max, unsigned long *ret);
