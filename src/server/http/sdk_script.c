/*
** sdk_script.c -- the SDK's run_code leaves no script_<ms> file behind.
**
** The official SDK (and libagentcube, which sends the same requests) runs
** code by writing it to "script_<ms>.py" or ".sh" in the workspace (POST
** api/files, JSON) and executing ["python3" | "bash", that name]. A
** cluster keeps the file; here it is removed once the command has ended,
** but only when everything says it is that script and nothing else:
**
**   - the write was a JSON write of exactly "script_<13+ digits>.py|.sh"
**     (relative, in /workspace itself), and the last such write of the
**     session;
**   - the execute came within SCRIPT_WINDOW_MS of it, with the command
**     exactly [interpreter, name] for that extension;
**   - when the command has ended, the file still has the size and
**     modification time the write gave it.
**
** A user who writes a file of that name and runs it that way sees it
** removed; anything else (another name, another command, a changed file,
** a late execute) is left alone.
*/
#include "sdk_script.h"

#include "reply.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SCRIPT_SLOTS 64
#define SCRIPT_WINDOW_MS 30000

struct script {
  char sid[37];
  char name[64];
  long long size;
  struct timespec mtime;
  long long written_ms;
  const struct req *owner;            /* the execute running it, or NULL */
};

static struct script slots[SCRIPT_SLOTS];
static unsigned next_slot;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static long long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "script_<13 or more digits>.py" or ".sh": the interpreter, or NULL. */
static const char *interpreter_of(const char *name) {
  size_t digits;
  if (strncmp(name, "script_", 7) != 0)
    return NULL;
  digits = strspn(name + 7, "0123456789");
  if (digits < 13 || strlen(name) >= sizeof slots[0].name)
    return NULL;
  if (strcmp(name + 7 + digits, ".py") == 0)
    return "python3";
  if (strcmp(name + 7 + digits, ".sh") == 0)
    return "bash";
  return NULL;
}

static struct script *find(const char *sid) {
  for (size_t i = 0; i < SCRIPT_SLOTS; i++)
    if (slots[i].sid[0] != '\0' && strcmp(slots[i].sid, sid) == 0)
      return &slots[i];
  return NULL;
}

void sdk_script_written(struct req *r, const char *client_path,
                        const struct fapi_info *fi) {
  struct script *s;
  if (interpreter_of(client_path) == NULL || !S_ISREG(fi->mode))
    return;
  pthread_mutex_lock(&mu);
  s = find(r->sid);
  if (s == NULL)
    s = &slots[next_slot++ % SCRIPT_SLOTS];   /* the oldest goes */
  snprintf(s->sid, sizeof s->sid, "%s", r->sid);
  snprintf(s->name, sizeof s->name, "%s", client_path);
  s->size = fi->size;
  s->mtime = fi->mtime;
  s->written_ms = mono_ms();
  s->owner = NULL;
  pthread_mutex_unlock(&mu);
}

void sdk_script_exec_start(struct req *r, const char *const *argv) {
  struct script *s;
  const char *interp;
  if (argv == NULL || argv[0] == NULL || argv[1] == NULL || argv[2] != NULL)
    return;
  pthread_mutex_lock(&mu);
  s = find(r->sid);
  if (s != NULL && s->owner == NULL && strcmp(argv[1], s->name) == 0 &&
      (interp = interpreter_of(s->name)) != NULL &&
      strcmp(argv[0], interp) == 0 &&
      mono_ms() - s->written_ms <= SCRIPT_WINDOW_MS)
    s->owner = r;
  pthread_mutex_unlock(&mu);
}

void sdk_script_exec_done(struct req *r) {
  struct script *s, mine;
  struct fapi_root root;
  struct fapi_info now;
  struct ac_error err;
  unsigned long long removed;
  pthread_mutex_lock(&mu);
  s = find(r->sid);
  if (s == NULL || s->owner != r) {
    pthread_mutex_unlock(&mu);
    return;
  }
  mine = *s;
  memset(s, 0, sizeof *s);            /* claimed once */
  pthread_mutex_unlock(&mu);
  req_fapi_root(r, &root);
  if (fapi_stat(&root, mine.name, &now, &err) == AC_OK &&
      S_ISREG(now.mode) && now.size == mine.size &&
      now.mtime.tv_sec == mine.mtime.tv_sec &&
      now.mtime.tv_nsec == mine.mtime.tv_nsec)
    fapi_remove(&root, mine.name, 0, &removed, &err);
}
