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
#include <poll.h>
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

/* libedit's readline API has no user-data pointer: the state and the
** words of the current completion live here while it runs. */
static lua_State *completion_state;
static char **completion_words;
static size_t completion_next;

static void words_free(void) {
  for (size_t i = 0; completion_words && completion_words[i]; i++)
    free(completion_words[i]);
  free(completion_words);
  completion_words = NULL;
  completion_next = 0;
}

static char *next_word(const char *text, int state) {
  (void)text;
  if (state == 0)
    completion_next = 0;
  if (completion_words && completion_words[completion_next])
    return strdup(completion_words[completion_next++]);
  return NULL;
}

static char **on_complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  words_free();
  if (completion_state)
    completion_words = ac_repl_complete(completion_state, text);
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, next_word);
}

/* }====================================================== */

/* {====================================================== Ctrl-C at the prompt */

/* While a line is read, SIGINT is blocked except inside the wait for a
** key, and its handler only sets this flag; the key reader then answers
** end of input, and the loop, seeing the flag, drops the line instead of
** ending. libedit's own signal handling is off (it re-sends the signal to
** the whole process group). */
static volatile sig_atomic_t prompt_interrupted;

static void on_prompt_sigint(int sig) {
  (void)sig;
  prompt_interrupted = 1;
}

/* A SIGINT that came while blocked (ppoll returns a ready key rather
** than the signal when both are there) is taken here, never left
** pending for the default action once the prompt is gone. */
static int sigint_pending(void) {
  static const struct timespec zero = { 0, 0 };
  sigset_t pending, only;
  if (sigpending(&pending) != 0 || !sigismember(&pending, SIGINT))
    return prompt_interrupted;
  sigemptyset(&only);
  sigaddset(&only, SIGINT);
  sigtimedwait(&only, NULL, &zero);
  prompt_interrupted = 1;
  return 1;
}

static int read_key(FILE *in) {
  sigset_t during;
  unsigned char c;
  sigprocmask(SIG_SETMASK, NULL, &during);
  sigdelset(&during, SIGINT);
  for (;;) {
    struct pollfd p = { fileno(in), POLLIN, 0 };
    ssize_t n;
    if (prompt_interrupted || sigint_pending())
      return EOF;
    if (ppoll(&p, 1, NULL, &during) < 0) {
      if (errno == EINTR)
        continue;
      return EOF;
    }
    if (sigint_pending())
      return EOF;
    n = read(fileno(in), &c, 1);
    if (n == 1)
      return c;
    if (n == 0 || (errno != EINTR && errno != EAGAIN))
      return EOF;
  }
}

/* Between the prompt and the call (showing a result, writing history)
** a Ctrl-C is dropped rather than ending the REPL with its sessions. A
** handler, not SIG_IGN: an ignored signal would stay ignored in the
** programs the REPL starts. */
static void on_idle_sigint(int sig) {
  (void)sig;
}

static void idle_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_idle_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
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

/* Reads one line; NULL at end of input or after Ctrl-C (then
** prompt_interrupted is set). The result is malloc'd. */
static char *read_line(lua_State *L, int first) {
  struct sigaction sa, old_sa;
  sigset_t block, old_mask;
  char *line;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_prompt_sigint;
  sigemptyset(&sa.sa_mask);
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  prompt_interrupted = 0;
  sigprocmask(SIG_BLOCK, &block, &old_mask);
  sigaction(SIGINT, &sa, &old_sa);
  completion_state = L;
  line = readline(prompt(L, first));
  completion_state = NULL;
  sigint_pending();
  sigaction(SIGINT, &old_sa, NULL);
  sigprocmask(SIG_SETMASK, &old_mask, NULL);
  if (prompt_interrupted) {
    free(line);
    line = NULL;
  }
  return line;
}

/* Compiles the next chunk: "return LINE" first, then LINE with as many
** continuation lines as the parser needs. Leaves the function (or an
** error message) on the stack and the load status in *status; *chunk
** receives the text for history. Returns 0 at the end of input (nothing
** read, nothing to free), -1 when Ctrl-C dropped what was typed (nothing
** on the stack), 1 otherwise: the end is not a load status. */
static int load_chunk(lua_State *L, char **chunk, int *status_out) {
  char *line = read_line(L, 1), *text;
  int status;

  if (line == NULL)
    return prompt_interrupted ? -1 : 0;
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
    if ((more = read_line(L, 0)) == NULL) {
      if (prompt_interrupted) {        /* the whole chunk is dropped */
        free(text);
        return -1;
      }
      break;
    }
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

/* Shows the results (see repl_print.c); a __tostring that raises is
** reported, not fatal. */
static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n > 0) {
    luaL_checkstack(L, LUA_MINSTACK, "too many results to show");
    lua_pushcfunction(L, ac_repl_show);
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
      ac_host_report(L, "error showing the result");
  }
}

/* An interrupted call (Ctrl-C: agentcube.Error EINTERRUPTED, or the
** interrupt hook's error) is said in one line, without the traceback. */
static void report(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  const char *tb = msg ? strstr(msg, "\nstack traceback:") : NULL;
  if (tb != NULL && (!strncmp(msg, "agentcube: EINTERRUPTED:", 24) ||
                     strstr(msg, "interrupted!") != NULL)) {
    lua_pushlstring(L, msg, (size_t)(tb - msg));
    lua_remove(L, -2);
  }
  ac_host_report(L, NULL);
}

/* The history file in the state directory (libagentcube's ac_local_home,
** the one the server and the Lua module use; made 0700 when missing and
** checked by ac_local_home_check: a real directory of this user that
** nobody else can write). libedit opens the file by name, so the file
** must be safe to follow too: a regular file of ours, mode 0600, opened
** once here with O_NOFOLLOW. Returns 1 with the path in buf, or 0 (history
** off, said on stderr when something is wrong). */
static int history_path(char *buf, size_t len) {
  char dir[4096];
  struct ac_error err;
  struct stat st;
  int fd;
  if (ac_local_home(dir, sizeof dir, &err) != AC_OK ||
      ac_local_home_check(dir, 1, &err) != AC_OK) {
    fprintf(stderr, "agentcube repl: history off: %s\n", err.msg);
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
  int status, got;

  rl_readline_name = "agentcube";
  rl_attempted_completion_function = on_complete;
  rl_getc_function = read_key;
  rl_catch_signals = 0;
  /* '.' and ':' are part of a completion word: "ci:exe<Tab>" */
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
  int keep = history_path(hist, sizeof hist);
  using_history();
  if (keep)
    read_history(hist);
  ac_repl_stream_install(L);
  idle_sigint();
  lua_settop(L, 0);
  while ((got = load_chunk(L, &chunk, &status)) != 0) {
    if (got < 0) {                     /* Ctrl-C: a fresh prompt */
      fputs("^C\n", stdout);
      fflush(stdout);
      continue;
    }
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
      idle_sigint();                   /* docall left the default */
    }
    if (ac_repl_stream_midline())
      fputc('\n', stdout);            /* the result on a line of its own */
    if (status == LUA_OK)
      print_results(L);
    else
      report(L);
    lua_settop(L, 0);
  }
  words_free();
  signal(SIGINT, SIG_DFL);
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
