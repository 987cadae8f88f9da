/*
** shown.h -- text from a server, a sandbox or a file, written for a person:
** control characters (escape sequences that retitle a window, write the
** clipboard or erase lines; a carriage return that overwrites a line) are
** written as visible \xHH escapes, C1 controls as \u00HH. Newlines and
** tabs stay. Machine output (--json, files) never goes through here.
*/
#ifndef AGENTCUBE_SHOWN_H
#define AGENTCUBE_SHOWN_H

#include <stdio.h>

/* Writes s to f with its control characters neutralised. */
void ac_shown_fputs(const char *s, FILE *f);

#endif
