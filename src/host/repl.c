/*
** repl.c -- the read-eval-print loop, following lua.c: "return <line>" is
** tried first so that expressions print their values; a leading '=' means
** return; a chunk whose syntax error ends at <eof> continues on the next
** line. Input comes through libedit (history, Tab completion).
*/
#include "repl.h"
#include "lua_host.h"
#include "agentcube.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <editline/readline.h>

#define EOFMARK "<eof>"
#define HISTORY_LINES 1000

/* {====================================================== completion */

/* Completion needs the state while libedit calls back; readline's API has
** no user-data pointer, so it lives here for the duration of one read. */
static lua_State *completion_state;
static char **completion_words;
static size_t completion_count, completion_next;

static void words_free(void) {
  for (size_t i = 0; i < completion_count; i++)
    free(completion_words[i]);
  free(completion_words);
  completion_words = NULL;
  completion_count = completion_next = 0;
}

static void words_add(const char *prefix, size_t plen, const char *sep,
                      const char *key, size_t klen, const char *partial) {
  char **grown;
  char *w;
  if (strncmp(key, partial, strlen(partial)) != 0)
    return;
  for (size_t i = 0; i < completion_count; i++)  /* no duplicates */
    if (strlen(completion_words[i]) == plen + strlen(sep) + klen &&
        !strncmp(completion_words[i] + plen + strlen(sep), key, klen))
      return;
  if ((grown = realloc(completion_words,
                       (completion_count + 1) * sizeof *grown)) == NULL)
    return;
  completion_words = grown;
  if ((w = malloc(plen + strlen(sep) + klen + 1)) == NULL)
    return;
  memcpy(w, prefix, plen);
  memcpy(w + plen, sep, strlen(sep));
  memcpy(w + plen + strlen(sep), key, klen);
  w[plen + strlen(sep) + klen] = '\0';
  completion_words[completion_count++] = w;
}

/* Adds the string keys of the table at the top (raw: completion never
** runs a metamethod), then those of its metatable's __index table. */
static void keys_of(lua_State *L, const char *prefix, size_t plen,
                    const char *sep, const char *partial, int depth) {
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen);
        words_add(prefix, plen, sep, k, klen, partial);
      }
      lua_pop(L, 1);
    }
  }
  if (depth < 4 && lua_getmetatable(L, -1)) {
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    keys_of(L, prefix, plen, sep, partial, depth + 1);
    lua_pop(L, 2);
  }
}

/* Completes "a.b.c:par" by walking a, b, c with raw lookups. */
static void complete(lua_State *L, const char *text) {
  const char *last = NULL, *p;
  int top = lua_gettop(L);

  for (p = text; *p; p++)
    if (*p == '.' || *p == ':')
      last = p;
  lua_pushglobaltable(L);
  if (last) {
    const char *seg = text;
    while (seg <= last) {
      const char *end = seg + strcspn(seg, ".:");
      if (end > last)
        break;
      if (lua_type(L, -1) != LUA_TTABLE) {
        /* a userdata or string: look through its metatable's __index */
        if (!lua_getmetatable(L, -1))
          goto out;
        lua_pushliteral(L, "__index");
        lua_rawget(L, -2);
        lua_remove(L, -2);
        if (lua_type(L, -1) != LUA_TTABLE)
          goto out;
      }
      lua_pushlstring(L, seg, (size_t)(end - seg));
      lua_rawget(L, -2);
      lua_remove(L, -2);
      seg = end + 1;
    }
    keys_of(L, text, (size_t)(last - text), *last == ':' ? ":" : ".",
            last + 1, 0);
  } else {
    keys_of(L, "", 0, "", text, 0);
  }
out:
  lua_settop(L, top);
}

static char *next_word(const char *text, int state) {
  (void)text;
  if (state == 0)
    completion_next = 0;
  if (completion_next < completion_count)
    return strdup(completion_words[completion_next++]);
  return NULL;
}

static char **on_complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  words_free();
  if (completion_state)
    complete(completion_state, text);
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, next_word);
}

/* }====================================================== */

/* {====================================================== the loop */

static const char *prompt(lua_State *L, int first) {
  const char *p;
  lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
  p = lua_tostring(L, -1);
  if (p == NULL)
    p = first ? "> " : ">> ";
  lua_pop(L, 1);
  return p;
}

static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= sizeof(EOFMARK) - 1 &&
        strcmp(msg + lmsg - (sizeof(EOFMARK) - 1), EOFMARK) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* Reads one line; NULL at end of input. The result is malloc'd. */
static char *read_line(lua_State *L, int first) {
  char *line;
  completion_state = L;
  line = readline(prompt(L, first));
  completion_state = NULL;
  return line;
}

/* Compiles the next chunk: "return LINE" first, then LINE with as many
** continuation lines as the parser needs. Leaves the function (or an
** error message) on the stack and the load status in *status; *chunk
** receives the text for history. Returns 0 at the end of input (nothing
** read, nothing to free), 1 otherwise: the end is not a load status. */
static int load_chunk(lua_State *L, char **chunk, int *status_out) {
  char *line = read_line(L, 1), *text;
  int status;

  if (line == NULL)
    return 0;
  text = line;
  if (line[0] == '=') {                /* lua 5.2-style "=expr" */
    const char *ret = lua_pushfstring(L, "return %s;", line + 1);
    *status_out = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    lua_remove(L, -2);
    *chunk = text;                     /* history keeps what was typed */
    return 1;
  }
  {
    const char *ret = lua_pushfstring(L, "return %s;", text);
    status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    lua_remove(L, -2);
    if (status == LUA_OK) {
      *chunk = text;
      *status_out = LUA_OK;
      return 1;
    }
    lua_pop(L, 1);
  }
  for (;;) {
    char *more, *joined;
    status = luaL_loadbuffer(L, text, strlen(text), "=stdin");
    if (!incomplete(L, status))
      break;
    if ((more = read_line(L, 0)) == NULL)
      break;
    size_t n = strlen(text) + strlen(more) + 2;
    joined = malloc(n);
    if (joined == NULL) {
      free(more);
      break;
    }
    snprintf(joined, n, "%s\n%s", text, more);
    free(text);
    free(more);
    text = joined;
  }
  if (status != LUA_OK && incomplete(L, status)) {
    /* end of input inside a chunk: report it as an error */
    status = luaL_loadbuffer(L, text, strlen(text), "=stdin");
  }
  *chunk = text;
  *status_out = status;
  return 1;
}

static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n > 0) {
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
      ac_host_report(L, "error calling 'print'");
  }
}

/* The history file in the client's state directory (the same one the
** rest of the client uses: $AGENTCUBE_HOME, else the home directory of
** $HOME or the passwd entry, never a shared path). libedit opens it by
** name, so the name must be safe to follow: the directory is ours and
** writable by us only, and the file is a regular file of ours, mode 0600,
** opened once here with O_NOFOLLOW. Returns 1 with the path in buf, or 0
** (history off, said on stderr when something is wrong). */
static int history_path(char *buf, size_t len) {
  char dir[4096];
  struct ac_error err;
  struct stat st;
  int fd;
  if (ac_local_home(dir, sizeof dir, &err) != AC_OK) {
    fprintf(stderr, "agentcube repl: history off: %s\n", err.msg);
    return 0;
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "agentcube repl: history off: %s: %s\n", dir,
            strerror(errno));
    return 0;
  }
  if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
      st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
    fprintf(stderr, "agentcube repl: history off: %s is not a directory "
            "of this user that only it can write\n", dir);
    return 0;
  }
  if ((size_t)snprintf(buf, len, "%s/history", dir) >= len)
    return 0;
  fd = open(buf, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_uid != geteuid() || fchmod(fd, 0600) != 0) {
    fprintf(stderr, "agentcube repl: history off: %s is not a regular "
            "file of this user%s\n", buf,
            fd < 0 && errno == ELOOP ? " (it is a symbolic link)" : "");
    if (fd >= 0)
      close(fd);
    return 0;
  }
  close(fd);
  return 1;
}

int ac_repl_loop(lua_State *L) {
  char hist[4096], *chunk = NULL;
  int status;

  rl_readline_name = "agentcube";
  rl_attempted_completion_function = on_complete;
  /* '.' and ':' are part of a completion word: "ci:exe<Tab>" */
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
  int keep = history_path(hist, sizeof hist);
  using_history();
  if (keep)
    read_history(hist);
  lua_settop(L, 0);
  while (load_chunk(L, &chunk, &status)) {
    if (chunk && *chunk) {
      add_history(chunk);
      if (keep) {
        write_history(hist);
        history_truncate_file(hist, HISTORY_LINES);
      }
    }
    free(chunk);
    chunk = NULL;
    if (status == LUA_OK) {
      ac_host_interrupted = 0;
      status = ac_host_docall(L, 0, LUA_MULTRET);
    }
    if (status == LUA_OK)
      print_results(L);
    else
      ac_host_report(L, NULL);
    lua_settop(L, 0);
  }
  words_free();
  fputc('\n', stdout);
  fflush(stdout);
  return 0;
}

int ac_repl_stdin(lua_State *L) {
  int status = luaL_loadfilex(L, NULL, "t");
  if (status == LUA_OK)
    status = ac_host_docall(L, 0, 0);
  if (status != LUA_OK) {
    int st = ac_host_error_status(L, -1);
    ac_host_report(L, "agentcube");
    return st;
  }
  return 0;
}

/* }====================================================== */
