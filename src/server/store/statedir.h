/*
** statedir.h -- checks the server's state directory before trusting it.
**
** The directory (--state-dir or $AGENTCUBE_HOME) is created 0700 when
** absent. When it exists it must be a real directory (not a symlink) owned
** by the server's uid and writable by nobody else; every directory above
** it must belong to root or to that uid and be writable by nobody else
** unless sticky (/tmp); and the entries the server uses (token, serve.json,
** serve.lock, serve.log, sessions, boxes) must not be symlinks nor belong
** to another user. Files there are then opened with O_NOFOLLOW.
*/
#ifndef AGENTCUBE_STATEDIR_H
#define AGENTCUBE_STATEDIR_H

#include "ac_error.h"

#include <sys/types.h>

/* AC_OK, or AC_EACCESS with a message naming the path and what is wrong
** (AC_ESYSTEM when it cannot be created or checked). */
enum ac_code ac_statedir_prepare(const char *path, struct ac_error *err);

/* open(dir/name) that never follows a symlink (O_NOFOLLOW|O_CLOEXEC are
** added to flags). */
int ac_statedir_open(const char *dir, const char *name, int flags,
                     mode_t mode);

#endif
