/*
** httpc.c -- a raw HTTP client for the Lua specs (module "httpc").
**
** The server specs must not depend on the client library they will later
** test, so they speak HTTP through this small libcurl binding:
**
**   local status, body, headers = httpc.request{
**     method = "POST", url = "http://...", body = "...",
**     headers = { ["Content-Type"] = "application/json" },
**     form = { {name="path", value="x"}, {name="file", file="/tmp/f"} },
**     output = "/tmp/out",   -- write the body to a file instead
**     timeout = 30 }
**
** headers comes back with lower-cased names. Transport failures return
** nil, message. httpc.readable(fd, ms) waits up to ms for fd to become
** readable (a host loop's poll, for the specs of agentcube.async's fd).
*/
#include <ctype.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>

struct buf {
  char *data;
  size_t len, cap;
};

static int buf_add(struct buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    char *grown;
    while (cap < b->len + n + 1)
      cap *= 2;
    if ((grown = realloc(b->data, cap)) == NULL)
      return -1;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  return buf_add(ud, p, sz * n) ? 0 : sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  struct buf *h = ud;
  /* a new response (after a 100 Continue or a redirect) starts over */
  if (n * sz > 5 && strncmp(p, "HTTP/", 5) == 0)
    h->len = 0;
  return buf_add(h, p, sz * n) ? 0 : sz * n;
}

/* Everything the request owns, so that one cleanup path frees it. */
struct call {
  CURL *curl;
  struct curl_slist *hdrs;
  curl_mime *mime;
  FILE *out;
  struct buf body, head;
};

static void call_free(struct call *c) {
  if (c->curl)
    curl_easy_cleanup(c->curl);
  curl_slist_free_all(c->hdrs);
  curl_mime_free(c->mime);
  if (c->out)
    fclose(c->out);
  free(c->body.data);
  free(c->head.data);
  memset(c, 0, sizeof *c);
}

static int call_gc(lua_State *L) {
  call_free(luaL_checkudata(L, 1, "httpc.call"));
  return 0;
}

static const char *optfield(lua_State *L, const char *k, size_t *len) {
  const char *s = NULL;
  lua_getfield(L, 1, k);
  if (!lua_isnil(L, -1))
    s = luaL_checklstring(L, -1, len);
  lua_pop(L, 1);
  return s;
}

static void push_headers(lua_State *L, const struct buf *h) {
  const char *p = h->data ? h->data : "";
  lua_newtable(L);
  while (*p) {
    const char *eol = strstr(p, "\r\n"), *colon;
    if (eol == NULL)
      break;
    colon = memchr(p, ':', (size_t)(eol - p));
    if (colon) {
      const char *v = colon + 1;
      luaL_Buffer b;
      while (*v == ' ')
        v++;
      luaL_buffinit(L, &b);
      for (const char *k = p; k < colon; k++)
        luaL_addchar(&b, (char)tolower((unsigned char)*k));
      luaL_pushresult(&b);
      lua_pushlstring(L, v, (size_t)(eol - v));
      lua_settable(L, -3);
    }
    p = eol + 2;
  }
}

static int l_request(lua_State *L) {
  struct call *c;
  const char *method, *url, *body, *output;
  size_t blen = 0;
  long status = 0;
  double timeout = 60;
  CURLcode rc;

  luaL_checktype(L, 1, LUA_TTABLE);
  c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, "httpc.call");
  lua_toclose(L, -1);
  method = optfield(L, "method", NULL);
  url = optfield(L, "url", NULL);
  body = optfield(L, "body", &blen);
  output = optfield(L, "output", NULL);
  lua_getfield(L, 1, "timeout");
  if (!lua_isnil(L, -1))
    timeout = luaL_checknumber(L, -1);
  lua_pop(L, 1);
  luaL_argcheck(L, url != NULL, 1, "url is required");
  if ((c->curl = curl_easy_init()) == NULL)
    return luaL_error(L, "curl_easy_init failed");
  curl_easy_setopt(c->curl, CURLOPT_URL, url);
  curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
  curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &c->head);
  if (output) {
    if ((c->out = fopen(output, "wb")) == NULL)
      return luaL_error(L, "cannot open %s", output);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c->out);
  } else {
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->body);
  }
  lua_getfield(L, 1, "headers");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *line = lua_pushfstring(L, "%s: %s", lua_tostring(L, -2),
                                         lua_tostring(L, -1));
      struct curl_slist *n = curl_slist_append(c->hdrs, line);
      if (n == NULL)
        return luaL_error(L, "out of memory");
      c->hdrs = n;
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 1);
  /* curl would add "Expect: 100-continue" to large bodies */
  c->hdrs = curl_slist_append(c->hdrs, "Expect:");
  curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->hdrs);
  lua_getfield(L, 1, "form");
  if (lua_istable(L, -1)) {
    c->mime = curl_mime_init(c->curl);
    for (lua_Integer i = 1; lua_geti(L, -1, i) == LUA_TTABLE; i++) {
      curl_mimepart *part = curl_mime_addpart(c->mime);
      lua_getfield(L, -1, "name");
      curl_mime_name(part, lua_tostring(L, -1));
      lua_getfield(L, -2, "value");
      if (lua_isstring(L, -1)) {
        size_t vl;
        const char *v = lua_tolstring(L, -1, &vl);
        curl_mime_data(part, v, vl);
      }
      lua_getfield(L, -3, "file");
      if (lua_isstring(L, -1))
        curl_mime_filedata(part, lua_tostring(L, -1));
      lua_getfield(L, -4, "filename");
      if (lua_isstring(L, -1))
        curl_mime_filename(part, lua_tostring(L, -1));
      lua_pop(L, 5);
    }
    lua_pop(L, 1);
    curl_easy_setopt(c->curl, CURLOPT_MIMEPOST, c->mime);
  }
  lua_pop(L, 1);
  if (body) {
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)blen);
  }
  if (method)
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
  if (method && strcmp(method, "HEAD") == 0)
    curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
  rc = curl_easy_perform(c->curl);
  if (rc != CURLE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, curl_easy_strerror(rc));
    return 2;
  }
  curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
  lua_pushinteger(L, status);
  lua_pushlstring(L, c->body.data ? c->body.data : "", c->body.len);
  push_headers(L, &c->head);
  return 3;
}

/* httpc.monotonic() -> seconds of CLOCK_MONOTONIC, as a float: timing
** checks must not move with the wall clock, nor round to whole seconds. */
static int l_monotonic(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* httpc.readable(fd, ms) -> whether fd became readable within ms. */
static int l_readable(lua_State *L) {
  struct pollfd p;
  p.fd = (int)luaL_checkinteger(L, 1);
  p.events = POLLIN;
  p.revents = 0;
  lua_pushboolean(L, poll(&p, 1, (int)luaL_checkinteger(L, 2)) == 1);
  return 1;
}

int luaopen_httpc(lua_State *L);
int luaopen_httpc(lua_State *L) {
  static const luaL_Reg fns[] = { { "request", l_request },
                                  { "monotonic", l_monotonic },
                                  { "readable", l_readable },
                                  { NULL, NULL } };
  if (luaL_newmetatable(L, "httpc.call")) {
    lua_pushcfunction(L, call_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, call_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  return 1;
}
