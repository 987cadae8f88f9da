/*
** lockfile.h -- the exclusive locks of a running server (serve.lock in the
** state directory, the lock of its session uid block).
**
** A lock is an flock on a file that names its holder ("PID ...\n"). A
** server killed with SIGKILL can leave, for a moment, a child it was
** starting (cloned, not yet exec'd or killed by its parent-death signal)
** that shares the locked file description: the lock outlives the server
** by that moment. A restart then waits for it (up to 2 s) instead of
** reporting another server, but only while the holder the file names is
** dead; a live holder is refused at once.
*/
#ifndef AGENTCUBE_LOCKFILE_H
#define AGENTCUBE_LOCKFILE_H

/* Takes the exclusive flock of fd and writes "<our pid> <note>\n" into the
** file. 0, or -1 with errno (EWOULDBLOCK: another live holder). */
int ac_lock_take(int fd, const char *note);

#endif
