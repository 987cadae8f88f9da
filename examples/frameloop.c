/*
** frameloop.c -- a 60 Hz host loop (a game or tool) that drives
** libagentcube without ever blocking a frame: one event descriptor, polled
** with a zero timeout once per frame, and callbacks on this thread.
**
** It creates a session, then streams a long command while uploading a
** file, then deletes the session; every frame it measures the time spent
** in the library and counts frames that started late.
**
**   cc frameloop.c $(pkg-config --cflags --libs agentcube) -o frameloop
**   ./frameloop [upload MiB] [command seconds]
**
** With WORKLOAD_MANAGER_URL and ROUTER_URL unset it uses the local
** runtime (starting `agentcube serve` if none runs, before the loop).
** Prints one summary line; exits 0 when everything succeeded.
*/
#include <agentcube.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FRAME_NS (1000000000L / 60)

struct app {
  ac_engine *e;
  ac_client *c;
  ac_session *s;
  ac_job *create, *cmd, *upload, *stop;
  long long chunks, bytes, uploaded;
  int failed;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this thread: what the library's work cost, without the
** time the scheduler gave to other processes meanwhile. */
static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_output(void *ud, ac_job *j, enum ac_stream st,
                      const char *data, size_t len) {
  struct app *a = ud;
  (void)j;
  (void)st;
  (void)data;
  a->chunks++;
  a->bytes += (long long)len;
}

static void on_progress(void *ud, ac_job *j, long long done,
                        long long total) {
  struct app *a = ud;
  (void)j;
  (void)total;
  a->uploaded = done;
}

/* Reports a finished job; returns 1 when it succeeded. */
static int finished(struct app *a, ac_job *j, const char *what) {
  struct ac_error err;
  if (ac_job_result(j, &err) == AC_OK)
    return 1;
  fprintf(stderr, "frameloop: %s: %s\n", what, err.msg);
  a->failed = 1;
  return 0;
}

int main(int argc, char **argv) {
  struct app a;
  struct ac_client_config cfg;
  struct ac_job_callbacks cb;
  struct ac_error err;
  struct ac_exec_opts o;
  struct timespec next;
  char path[] = "/tmp/frameloop-XXXXXX", cmd[128];
  long mib = argc > 1 ? atol(argv[1]) : 8;
  int secs = argc > 2 ? atoi(argv[2]) : 2;
  long long frames = 0, late = 0;
  double worst = 0, worst_cpu = 0;
  int fd, done = 0;

  memset(&a, 0, sizeof a);
  if (ac_global_init(&err) != AC_OK)
    return 1;
  /* the file to upload, written out (in the page cache, as a file the
  ** host just produced would be: a sparse file would make each read
  ** zero-fill pages, and reading from a cold disk is file I/O a frame
  ** loop should not do either) */
  fd = mkstemp(path);
  if (fd < 0) {
    perror("frameloop: temporary file");
    return 1;
  }
  {
    static char block[1 << 20];
    memset(block, 'x', sizeof block);
    for (long i = 0; i < mib; i++)
      if (write(fd, block, sizeof block) != (ssize_t)sizeof block) {
        perror("frameloop: temporary file");
        close(fd);
        unlink(path);
        return 1;
      }
  }
  close(fd);

  ac_client_config_init(&cfg);
  if (ac_client_new(&cfg, &a.c, &err) != AC_OK ||
      ac_engine_new(&a.e, &err) != AC_OK) {
    fprintf(stderr, "frameloop: %s\n", err.msg);
    unlink(path);
    return 1;
  }
  memset(&cb, 0, sizeof cb);
  cb.on_output = on_output;
  cb.on_progress = on_progress;
  cb.ud = &a;
  if (ac_start_session_create(a.e, a.c, NULL, &cb, &a.create, &err)
      != AC_OK) {
    fprintf(stderr, "frameloop: %s\n", err.msg);
    return 1;
  }

  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!done) {
    struct pollfd p = { ac_engine_fd(a.e), POLLIN, 0 };
    struct timespec now;
    double t0 = now_ms(), c0 = cpu_ms(), work;

    /* --- the frame's library work --- */
    if (poll(&p, 1, 0) > 0)
      ac_engine_poll(a.e, 0);
    if (a.create != NULL && ac_job_done(a.create)) {
      if (finished(&a, a.create, "create session")) {
        a.s = ac_job_take_session(a.create);
        memset(&o, 0, sizeof o);
        o.stream = 1;
        snprintf(cmd, sizeof cmd, "for i in $(seq 1 %d); do echo tick $i; "
                 "sleep 0.1; done", secs * 10);
        {
          const char *av[] = { "sh", "-c", cmd };
          if (ac_start_exec(a.e, a.s, av, 3, &o, &cb, &a.cmd, &err) != AC_OK
              || ac_start_upload_file(a.e, a.s, path, "frameloop.bin", &cb,
                                      &a.upload, &err) != AC_OK) {
            fprintf(stderr, "frameloop: %s\n", err.msg);
            a.failed = 1;
          }
        }
      }
      ac_job_free(a.create);
      a.create = NULL;
      if (a.failed)
        done = 1;
    }
    if (a.cmd != NULL && a.upload != NULL && ac_job_done(a.cmd) &&
        ac_job_done(a.upload) && a.stop == NULL) {
      finished(&a, a.cmd, "command");
      finished(&a, a.upload, "upload");
      if (ac_start_session_stop(a.e, a.s, NULL, &a.stop, &err) != AC_OK)
        done = 1;
    }
    if (a.stop != NULL && ac_job_done(a.stop)) {
      finished(&a, a.stop, "delete session");
      done = 1;
    }
    work = now_ms() - t0;
    if (cpu_ms() - c0 > worst_cpu)
      worst_cpu = cpu_ms() - c0;
    if (work > worst) {
      worst = work;
      if (getenv("FRAMELOOP_DEBUG") != NULL)
        fprintf(stderr, "frame %lld: %.3f ms (create %d cmd %d upload %d "
                "stop %d, uploaded %lld)\n", frames, work, a.create != NULL,
                a.cmd != NULL, a.upload != NULL, a.stop != NULL, a.uploaded);
    }
    frames++;

    /* --- wait for the next frame (the rest of the frame is the host's) */
    next.tv_nsec += FRAME_NS;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_sec++;
      next.tv_nsec -= 1000000000L;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > next.tv_sec ||
        (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec + FRAME_NS))
      late++;                          /* more than a whole frame behind */
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }

  printf("frames %lld late %lld worst_work_ms %.3f worst_work_cpu_ms %.3f "
         "chunks %lld output_bytes %lld uploaded %lld ok %d\n", frames, late,
         worst, worst_cpu, a.chunks, a.bytes, a.uploaded, !a.failed);
  ac_job_free(a.cmd);
  ac_job_free(a.upload);
  ac_job_free(a.stop);
  ac_session_free(a.s);
  ac_engine_free(a.e);
  ac_client_free(a.c);
  ac_global_cleanup();
  unlink(path);
  return a.failed ? 1 : 0;
}
