/*
** curl_exec_client.c -- the baseline of bench_lua_client.sh: the smallest
** libcurl program that sends the requests the Lua module sends for
** execute_command("true"), so that the ratio between the two shows what
** the module (Lua, the binding, libagentcube) adds to the HTTP exchange.
**
**   usage: curl_exec_client EXECUTE_URL SESSION_ID N
**
** EXECUTE_URL is the data-plane .../invocations/api/execute URL.
**
** One easy handle reused for all N requests (keep-alive, as the module's
** handle pool does), the same headers and body. Prints the elapsed seconds.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

struct sink {
  char buf[65536];
  size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct sink *s = ud;
  size_t bytes = size * n;
  size_t take = bytes < sizeof s->buf - 1 - s->len
              ? bytes : sizeof s->buf - 1 - s->len;
  memcpy(s->buf + s->len, p, take);
  s->len += take;
  s->buf[s->len] = '\0';
  return bytes;
}

/* The answer says exit code 0 (compact or spaced JSON). */
static int exit_zero(const char *body) {
  const char *p = strstr(body, "\"exit_code\"");
  if (p == NULL)
    return 0;
  p += strlen("\"exit_code\"");
  while (*p == ' ' || *p == ':')
    p++;
  return p[0] == '0' && (p[1] == ',' || p[1] == '}' || p[1] == ' ');
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  static const char body[] = "{\"command\": [\"true\"], \"timeout\": "
                             "\"120s\"}";
  struct curl_slist *h = NULL;
  char hdr[512];
  struct sink s;
  CURL *e;
  long n, i, status = 0;
  double t0;
  int rc = 0;

  if (argc != 4) {
    fprintf(stderr, "usage: %s EXECUTE_URL SESSION_ID N\n", argv[0]);
    return 2;
  }
  n = strtol(argv[3], NULL, 10);
  snprintf(hdr, sizeof hdr, "x-agentcube-session-id: %s", argv[2]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  h = curl_slist_append(h, hdr);
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(e, CURLOPT_URL, argv[1]);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  t0 = now();
  for (i = 0; i < n; i++) {
    s.len = 0;
    if (curl_easy_perform(e) != CURLE_OK ||
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
        status != 200 || !exit_zero(s.buf)) {
      fprintf(stderr, "request %ld failed: status %ld: %.200s\n", i, status,
              s.buf);
      rc = 1;
      break;
    }
  }
  printf("%.3f\n", now() - t0);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  curl_global_cleanup();
  return rc;
}
