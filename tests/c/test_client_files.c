/* File operations where the local side or the answer goes wrong: a
** download whose directory cannot be made or whose name is taken by a
** directory (nothing half-written is left), an upload through a path that
** is not a directory, listings with odd entries and sizes, the transfer
** counters, and the NULL arguments refused before any request. */
#include "agentcube.h"
#include "rec_client.h"
#include "tap.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

static struct recorder rec;
static char tmpdir[] = "/tmp/ac-files-XXXXXX";
static int ready;

static ac_client *mk(void) {
  return rec_client(&rec, NULL);
}

static ac_session *attach(ac_client *c) {
  return rec_attach(c, "sid-f");
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    return -1;
  for (de = readdir(d); de != NULL; de = readdir(d))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f != NULL) {
    fputs(text, f);
    fclose(f);
  }
}

static void test_download_local_errors(void) {
  ac_client *c;
  ac_session *s;
  struct ac_error e;
  char dir[256], file[300], dst[400];
  struct stat st;

  tcase("download: a directory that cannot be made, a name taken by a "
        "directory, a directory that takes no files, a path too long; "
        "nothing half-written is left");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  c = mk();
  s = attach(c);
  snprintf(dir, sizeof dir, "%s/dl", tmpdir);
  mkdir(dir, 0700);
  snprintf(file, sizeof file, "%s/plain", dir);
  put(file, "i am a file\n");

  /* dl/plain is a file: dl/plain/sub/out.txt cannot get its directory */
  snprintf(dst, sizeof dst, "%s/sub/out.txt", file);
  rec_reset(&rec);
  rec_push(&rec, 200, "payload");
  is_int(ac_session_download_file(s, "a.txt", dst, &e), AC_EIO,
         "the directory cannot be made: EIO");
  ok(strstr(e.msg, "cannot create directory") != NULL &&
     strstr(e.msg, "plain/sub") != NULL &&
     strstr(e.msg, "download file a.txt (session sid-f)") != NULL,
     "names the directory, the file and the session: %s", e.msg);
  is_int(count_entries(dir), 1, "nothing left beside the file");

  /* dl/taken is a directory: the download cannot take its name */
  snprintf(dst, sizeof dst, "%s/taken", dir);
  mkdir(dst, 0700);
  rec_reset(&rec);
  rec_push(&rec, 200, "payload");
  is_int(ac_session_download_file(s, "b.txt", dst, &e), AC_EIO,
         "the name is a directory: EIO");
  ok(strstr(e.msg, "cannot rename into") != NULL &&
     strstr(e.msg, dst) != NULL, "says so: %s", e.msg);
  is_int(count_entries(dir), 2, "no temporary file left behind");
  ok(stat(dst, &st) == 0 && S_ISDIR(st.st_mode) && count_entries(dst) == 0,
     "the directory is untouched");

  /* a directory where no file can be made (root cannot either) */
  rec_reset(&rec);
  rec_push(&rec, 200, "payload");
  is_int(ac_session_download_file(s, "c.txt", "/proc/self/c.txt", &e),
         AC_EIO, "a directory that takes no files: EIO");
  ok(strstr(e.msg, "cannot create a file in /proc/self") != NULL,
     "says so: %s", e.msg);
  /* a directory name longer than a path may be */
  {
    char *longdst = malloc(4300);
    size_t n = (size_t)snprintf(longdst, 4300, "%s/", dir);
    memset(longdst + n, 'd', 4200 - n);
    strcpy(longdst + 4200, "/x.txt");
    rec_reset(&rec);
    rec_push(&rec, 200, "payload");
    is_int(ac_session_download_file(s, "d.txt", longdst, &e), AC_EIO,
           "a directory path of 4200 bytes: EIO");
    ok(strstr(e.msg, "cannot create directory") != NULL,
       "says what failed: %.80s...", e.msg);
    free(longdst);
  }
  is_int(count_entries(dir), 2, "still nothing new beside the file and the "
         "directory");

  /* the positive control: the same download to a free name */
  snprintf(dst, sizeof dst, "%s/free.txt", dir);
  rec_reset(&rec);
  rec_push(&rec, 200, "payload");
  is_int(ac_session_download_file(s, "b.txt", dst, &e), AC_OK,
         "a free name: downloaded");
  ok(stat(dst, &st) == 0 && st.st_size == 7, "all 7 bytes");
  ac_session_free(s);
  ac_client_free(c);
}

static void test_upload_and_transfer(void) {
  ac_client *c;
  ac_session *s;
  struct ac_error e;
  char path[300];
  long long done = -5, total = -5;

  tcase("upload through a path that is not a directory; the transfer "
        "counters");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  c = mk();
  s = attach(c);
  snprintf(path, sizeof path, "%s/up.txt", tmpdir);
  put(path, "0123456789");
  rec_reset(&rec);
  {
    char bad[340];
    snprintf(bad, sizeof bad, "%s/x", path);
    is_int(ac_session_upload_file(s, bad, "x", &e), AC_EIO,
           "a local path through a file: EIO");
    ok(strstr(e.msg, "upload file") != NULL && strstr(e.msg, bad) != NULL &&
       strstr(e.msg, "Not a directory") != NULL, "names it and why: %s",
       e.msg);
  }
  is_int(rec_count(&rec), 0, "nothing sent");

  ac_session_transfer(s, &done, &total);
  is_int(done, 0, "no transfer yet: 0 bytes");
  is_int(total, -1, "of an unknown size");
  rec_push(&rec, 200, "{}");
  is_int(ac_session_upload_file(s, path, "up.txt", &e), AC_OK, "uploaded");
  ac_session_transfer(s, &done, &total);
  is_int(total, 10, "the last transfer's size");
  is_int(done, 10, "all of it moved");
  ac_session_transfer(s, NULL, NULL);
  ac_session_transfer(NULL, &done, &total);
  is_int(done, 0, "no session: 0 bytes");
  is_int(total, -1, "no session: unknown size");
  ac_session_free(s);
  ac_client_free(c);
}

static void test_listing_answers(void) {
  ac_client *c;
  ac_session *s;
  struct ac_error e;
  struct ac_file_list l;

  tcase("list files: entries that are not objects, sizes as floats or out "
        "of range, an answer that is not an object");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  c = mk();
  s = attach(c);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"files\": [{\"name\": \"a\", \"size\": 12.0, "
           "\"is_dir\": false}, {\"name\": \"d\", \"size\": \"big\", "
           "\"is_dir\": true}]}");
  is_int(ac_session_list_files(s, "/workspace", &l, &e), AC_OK,
         "a listing with a float size and a string size");
  is_int(l.count, 2, "two entries");
  if (l.count == 2) {
    is_int(l.items[0].size, 12, "12.0 is 12");
    is_int(l.items[1].size, 0, "a size that is not a number is 0");
    ok(l.items[1].is_dir && !l.items[0].is_dir, "is_dir as given");
    is_str(l.items[0].mode, "", "an absent mode is \"\"");
  }
  ac_file_list_free(&l);

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"files\": [{\"name\": \"a\"}, 7]}");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_EPROTO,
         "an entry that is not an object");
  is_str(e.msg, "list files: entry 1 is not an object", "names which");
  ok(l.items == NULL && l.count == 0, "nothing half-filled is returned");
  ac_file_list_free(&l);

  rec_reset(&rec);
  rec_push(&rec, 200, "{\"files\": [{\"name\": \"a\", \"size\": 1e300}]}");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_EPROTO,
         "a size of 1e300");
  ok(strstr(e.msg, "entry 0 has size 1e+300") != NULL, "says so: %s", e.msg);
  ac_file_list_free(&l);
  rec_reset(&rec);
  rec_push(&rec, 200, "{\"files\": [{\"name\": \"a\", \"size\": -1.5}]}");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_EPROTO,
         "a negative size");
  ac_file_list_free(&l);

  rec_reset(&rec);
  rec_push(&rec, 200, "[]");
  is_int(ac_session_list_files(s, NULL, &l, &e), AC_EPROTO,
         "an answer that is an array");
  is_str(e.msg, "list files: malformed JSON response", "says so");
  ac_file_list_free(&l);
  ac_file_list_free(NULL);
  ac_session_free(s);
  ac_client_free(c);
}

static void test_null_arguments(void) {
  ac_client *c;
  ac_session *s;
  ac_engine *eng = NULL;
  ac_job *j = NULL;
  struct ac_error e;
  struct ac_file_list l;
  char *data = NULL;
  size_t len = 1;

  tcase("file operations refuse NULL arguments before any request");
  REQUIRE(ready, "the library, a temporary directory, the recorder");
  REQUIRE(ac_engine_new(&eng, &e) == AC_OK, "an engine");
  c = mk();
  s = attach(c);
  rec_reset(&rec);
  is_int(ac_session_write_file(NULL, "a", "x", 1, &e), AC_EINVAL,
         "write: no session");
  is_int(ac_start_write_file(eng, s, NULL, "x", 1, NULL, &j, &e), AC_EINVAL,
         "write: no path");
  is_int(ac_start_write_file(eng, s, "a", NULL, 3, NULL, &j, &e), AC_EINVAL,
         "write: no data but a length");
  is_str(e.msg, "write file: NULL argument", "says so");
  is_int(ac_session_read_file(NULL, "a", 0, &data, &len, &e), AC_EINVAL,
         "read: no session");
  ok(data == NULL && len == 0, "nothing returned");
  is_int(ac_start_read_file(eng, s, NULL, 0, NULL, &j, &e), AC_EINVAL,
         "read: no path");
  is_int(ac_session_list_files(NULL, ".", &l, &e), AC_EINVAL,
         "list: no session");
  is_int(ac_start_list_files(eng, NULL, ".", NULL, &j, &e), AC_EINVAL,
         "list: no session (job)");
  is_int(ac_session_upload_file(NULL, "/etc/hostname", "a", &e), AC_EINVAL,
         "upload: no session");
  is_int(ac_start_upload_file(eng, s, NULL, "a", NULL, &j, &e), AC_EINVAL,
         "upload: no local path");
  is_int(ac_session_download_file(NULL, "a", "/tmp/x", &e), AC_EINVAL,
         "download: no session");
  is_int(ac_start_download_file(eng, s, "a", NULL, NULL, &j, &e), AC_EINVAL,
         "download: no local path");
  ok(j == NULL, "no job was made");
  is_int(rec_count(&rec), 0, "nothing was sent");
  /* the positive control: a write with an empty body is fine */
  rec_push(&rec, 200, "{}");
  is_int(ac_session_write_file(s, "empty", NULL, 0, &e), AC_OK,
         "writing 0 bytes from NULL");
  is_int(rec_count(&rec), 1, "is sent");
  ac_engine_free(eng);
  ac_session_free(s);
  ac_client_free(c);
}

int main(void) {
  plan(4);
  ready = ac_global_init(NULL) == AC_OK && mkdtemp(tmpdir) != NULL &&
          rec_start(&rec) == 0;
  if (!ready)
    printf("# setup failed: every case fails its precondition\n");
  signal(SIGPIPE, SIG_IGN);
  unsetenv("WORKLOAD_MANAGER_URL");
  unsetenv("ROUTER_URL");
  test_download_local_errors();
  test_upload_and_transfer();
  test_listing_answers();
  test_null_arguments();
  if (ready)
    rec_stop(&rec);
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      printf("# cleanup failed\n");
  }
  return done_testing();
}
