/* Streaming upload and download of a large file (64 MiB by default,
** AC_TEST_BIG_MIB to change it) in constant memory: the peak resident set
** (VmHWM, reset through /proc/self/clear_refs) may grow by far less than the
** file size. The recording server runs in this process too and streams as
** well, so the bound covers both ends. */
#include "agentcube.h"
#include "recorder.h"
#include "tap.h"

#include <fcntl.h>
#include <sys/stat.h>

#define MIB (1024.0 * 1024.0)
#define CHUNK (1024 * 1024)

static struct recorder rec;
static char tmpdir[] = "/tmp/ac-big-XXXXXX";

/* VmRSS or VmHWM in KiB, -1 when unknown. */
static long status_kb(const char *key) {
  char line[256];
  long v = -1;
  size_t kl = strlen(key);
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, key, kl) == 0 && line[kl] == ':')
      v = strtol(line + kl + 1, NULL, 10);
  fclose(f);
  return v;
}

/* Resets VmHWM to the current RSS; returns 0 when the kernel allows it. */
static int reset_peak(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY);
  int ok_ = fd >= 0 && write(fd, "5", 1) == 1;
  if (fd >= 0)
    close(fd);
  return ok_ ? 0 : -1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t stream_hash(uint64_t seed, uint64_t size) {
  static char buf[CHUNK];
  uint64_t h = REC_FNV_INIT;
  for (uint64_t off = 0; off < size; off += CHUNK) {
    size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
    rec_fill(seed, off, buf, n);
    h = rec_fnv(h, buf, n);
  }
  return h;
}

static uint64_t file_hash(const char *path, uint64_t *size) {
  static char buf[CHUNK];
  uint64_t h = REC_FNV_INIT;
  ssize_t n;
  int fd = open(path, O_RDONLY);
  *size = 0;
  if (fd < 0)
    return 0;
  for (n = read(fd, buf, sizeof buf); n > 0; n = read(fd, buf, sizeof buf)) {
    h = rec_fnv(h, buf, (size_t)n);
    *size += (uint64_t)n;
  }
  close(fd);
  return h;
}

static int write_stream(const char *path, uint64_t seed, uint64_t size) {
  static char buf[CHUNK];
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return -1;
  for (uint64_t off = 0; off < size; off += CHUNK) {
    size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
    rec_fill(seed, off, buf, n);
    if (write(fd, buf, n) != (ssize_t)n) {
      close(fd);
      return -1;
    }
  }
  return close(fd);
}

int main(void) {
  plan(2);
  const char *env = getenv("AC_TEST_BIG_MIB");
  long mib = env ? strtol(env, NULL, 10) : 64;
  uint64_t size = (uint64_t)(mib > 0 ? mib : 64) * CHUNK;
  long limit_kb = 24 * 1024;          /* allowed peak growth */
  struct ac_client_config cfg;
  struct ac_error e;
  ac_client *c = NULL;
  ac_session *s = NULL;
  char src[300], dst[300];
  long base, peak;
  double t0, dt;
  uint64_t got, want;
  const struct rec_part *p;
  struct rec_reply rp;
  int have_peak;

  if (ac_global_init(NULL) != AC_OK || mkdtemp(tmpdir) == NULL ||
      rec_start(&rec) != 0) {
    printf("Bail out! setup failed\n");
    return 1;
  }
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  ac_client_config_init(&cfg);
  cfg.workload_manager_url = rec.base;
  cfg.router_url = rec.base;
  cfg.sa_token_path = "";
  ac_client_new(&cfg, &c, &e);
  ac_session_attach(c, "big", NULL, NULL, &s, &e);
  snprintf(src, sizeof src, "%s/src.bin", tmpdir);
  snprintf(dst, sizeof dst, "%s/out/dst.bin", tmpdir);
  if (write_stream(src, 7, size) != 0) {
    printf("Bail out! cannot write %s\n", src);
    return 1;
  }
  want = stream_hash(7, size);

  /* Warm up both paths once with a small body, so that one-time
  ** allocations (handles, TLS-free connection state, server threads) are
  ** not counted as growth. */
  rec_push(&rec, 200, "{}");
  rec_push(&rec, 200, "warm");
  ac_session_write_file(s, "warm", "x", 1, &e);
  ac_session_download_file(s, "warm", dst, &e);
  rec_reset(&rec);

  tcase("upload of a large file: every byte arrives, peak memory bounded");
  /* Upload. */
  have_peak = reset_peak() == 0;
  base = status_kb("VmRSS");
  rec_push(&rec, 200, "{\"path\":\"big.bin\"}");
  t0 = now_s();
  is_int(ac_session_upload_file(s, src, "/workspace/big.bin", &e), AC_OK,
         "upload %.0f MiB", size / MIB);
  dt = now_s() - t0;
  peak = status_kb("VmHWM");
  p = rec_part(rec_get(&rec, 0), "file");
  is_int(p ? (long long)p->size : -1, (long long)size,
         "server received every byte");
  ok(p && p->hash == want, "server received the same bytes");
  printf("# upload: %.0f MiB in %.2f s (%.0f MiB/s), peak RSS growth "
         "%ld KiB (baseline %ld KiB)\n", size / MIB, dt, size / MIB / dt,
         peak - base, base);
  if (have_peak && base > 0 && peak > 0)
    ok(peak - base < limit_kb, "upload: peak RSS growth %ld KiB < %ld KiB",
       peak - base, limit_kb);
  else
    skip_check("upload: peak RSS growth", "no /proc/self/clear_refs");

  tcase("download of a large file: every byte arrives, peak memory bounded");
  /* Download. */
  rec_reset(&rec);
  memset(&rp, 0, sizeof rp);
  rp.status = 200;
  rp.mode = REC_STREAM;
  rp.stream_size = size;
  rp.seed = 11;
  rp.content_type = "application/octet-stream";
  rec_push_reply(&rec, &rp);
  want = stream_hash(11, size);
  have_peak = reset_peak() == 0;
  base = status_kb("VmRSS");
  t0 = now_s();
  is_int(ac_session_download_file(s, "/workspace/big.bin", dst, &e), AC_OK,
         "download %.0f MiB", size / MIB);
  dt = now_s() - t0;
  peak = status_kb("VmHWM");
  ok(file_hash(dst, &got) == want, "downloaded bytes match");
  is_int((long long)got, (long long)size, "downloaded size");
  printf("# download: %.0f MiB in %.2f s (%.0f MiB/s), peak RSS growth "
         "%ld KiB (baseline %ld KiB)\n", size / MIB, dt, size / MIB / dt,
         peak - base, base);
  if (have_peak && base > 0 && peak > 0)
    ok(peak - base < limit_kb, "download: peak RSS growth %ld KiB < %ld KiB",
       peak - base, limit_kb);
  else
    skip_check("download: peak RSS growth", "no /proc/self/clear_refs");

  ac_session_free(s);
  ac_client_free(c);
  rec_stop(&rec);
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      printf("# cleanup failed\n");
  }
  ac_global_cleanup();
  return done_testing();
}
