/*
** image_cmd.c -- `agentcube image build|ls|rm|prune`.
**
** Exit statuses: 0 ok, 1 a build or removal failed, 2 usage or
** configuration error, 3 refused (the image is in use or being built),
** 130 interrupted (nothing is left under the image's name).
*/
#include "image.h"
#include "image_int.h"
#include "config.h"
#include "serve.h"
#include "agentcube.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
  "usage: agentcube image build [--config FILE] [TEMPLATE...]\n"
  "       agentcube image ls [--config FILE]\n"
  "       agentcube image rm IMAGE|TEMPLATE...\n"
  "       agentcube image prune [--config FILE]\n"
  "\n"
  "Builds and manages the root filesystems of templates with an `image:`\n"
  "(see `agentcube serve --config`). Every command also takes\n"
  "  --state-dir DIR   the server's state (default $AGENTCUBE_HOME or\n"
  "                    ~/.agentcube); images live in DIR/images\n"
  "  --image-dir DIR   the image store, when not DIR/images\n"
  "build: every template of the file that has an image, or the named ones;\n"
  "  an image already built is not built again.\n"
  "ls: each image with its size, build date, the templates of --config that\n"
  "  use it and the sessions using it now.\n"
  "rm: refused while a session uses the image.\n"
  "prune: removes images that no session uses and, with --config, no\n"
  "  template names, and what interrupted builds left.\n";

struct opts {
  const char *config, *state_dir, *image_dir;
  struct ac_config cfg;
  int have_cfg;
};

static void on_signal(int sig) {
  (void)sig;
  img_interrupted = 1;
}

static int parse(int argc, char **argv, struct opts *o) {
  static const struct option longopts[] = {
    { "config", required_argument, NULL, 'c' },
    { "state-dir", required_argument, NULL, 's' },
    { "image-dir", required_argument, NULL, 'I' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  static char home[4096];
  struct ac_error err;
  int c;

  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'c': o->config = optarg; break;
    case 's': o->state_dir = optarg; break;
    case 'I': o->image_dir = optarg; break;
    case 'h': fputs(usage_text, stdout); exit(0);
    default: fputs(usage_text, stderr); return -1;
    }
  }
  if (o->state_dir == NULL) {
    if (ac_local_home(home, sizeof home, &err) != AC_OK) {
      fprintf(stderr, "agentcube image: %s\n", err.msg);
      return -1;
    }
    o->state_dir = home;
  }
  ac_config_defaults(&o->cfg, &err);
  o->have_cfg = 1;
  if (o->config && ac_config_load(&o->cfg, o->config, &err) != AC_OK) {
    fprintf(stderr, "agentcube image: %s\n", err.msg);
    return -1;
  }
  if (img_serve_setup(&o->cfg, o->state_dir, o->image_dir, o->config, 0,
                      &err) != AC_OK) {
    fprintf(stderr, "agentcube image: %s\n", err.msg);
    return -1;
  }
  return 0;
}

static const char *store_of(struct opts *o) {
  static char *store;
  free(store);
  store = o->image_dir ? strdup(o->image_dir)
                       : img_store_default(o->state_dir);
  return store ? store : ".";
}

/* The templates (the default one too) whose image is set. */
static const struct ac_template *tpl_at(struct opts *o, size_t i) {
  return i < o->cfg.ntemplates ? &o->cfg.templates[i] : &o->cfg.fallback;
}

static const struct ac_template *tpl_named(struct opts *o, const char *n) {
  for (size_t i = 0; i <= o->cfg.ntemplates; i++) {
    const struct ac_template *t = tpl_at(o, i);
    if (t->image && !strcmp(t->image->template_name, n))
      return t;
  }
  return NULL;
}

static int build_one(const struct img_spec *s) {
  struct ac_error err;
  int built = 0;
  char what[300];
  time_t t0 = time(NULL);
  enum ac_code rc;

  img_spec_describe(s, what, sizeof what);
  printf("%s: image %s (%s)\n", s->template_name, s->id, what);
  fflush(stdout);
  rc = img_build(s, stderr, isatty(2), &built, &err);
  if (rc == AC_EINTERRUPTED) {
    fprintf(stderr, "agentcube image: interrupted; nothing was kept\n");
    return 130;
  }
  if (rc != AC_OK) {
    fprintf(stderr, "agentcube image: building %s for template '%s': %s\n",
            s->id, s->template_name, err.msg);
    return 1;
  }
  if (built) {
    struct img_info *inf = NULL;
    size_t n = 0;
    unsigned long long size = 0;
    if (img_store_list(s->store, &inf, &n, &err) == AC_OK)
      for (size_t i = 0; i < n; i++)
        if (!strcmp(inf[i].id, s->id))
          size = inf[i].size;
    free(inf);
    printf("%s: built in %lds, %.1f MB\n", s->id, (long)(time(NULL) - t0),
           size / 1e6);
  } else {
    printf("%s: up to date\n", s->id);
  }
  return 0;
}

static int cmd_build(struct opts *o, int argc, char **argv) {
  struct sigaction sa;
  int status = 0, any = 0;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;             /* no SA_RESTART: waits wake up */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  for (int i = optind; i < argc; i++)
    if (tpl_named(o, argv[i]) == NULL) {
      fprintf(stderr, "agentcube image: no template '%s' with an image%s%s\n",
              argv[i], o->config ? " in " : " (give --config FILE)",
              o->config ? o->config : "");
      return 2;
    }
  for (size_t i = 0; i <= o->cfg.ntemplates && status == 0; i++) {
    const struct ac_template *t = tpl_at(o, i);
    int wanted = optind == argc;
    for (int j = optind; j < argc; j++)
      wanted |= t->image && !strcmp(t->image->template_name, argv[j]);
    if (t->image && wanted) {
      any = 1;
      status = build_one(t->image);
    }
  }
  if (!any) {
    fprintf(stderr, "agentcube image: no template has an image%s%s\n",
            o->config ? " in " : " (give --config FILE)",
            o->config ? o->config : "");
    return 2;
  }
  return status;
}

static void fmt_size(unsigned long long b, char *out, size_t n) {
  if (b >= 1000ULL * 1000 * 1000)
    snprintf(out, n, "%.1fG", b / 1e9);
  else
    snprintf(out, n, "%.1fM", b / 1e6);
}

static int cmd_ls(struct opts *o) {
  struct img_info *inf = NULL;
  size_t n = 0;
  struct ac_error err;
  const char *store = store_of(o);

  if (img_store_list(store, &inf, &n, &err) != AC_OK) {
    fprintf(stderr, "agentcube image: %s\n", err.msg);
    return 1;
  }
  printf("%-24s %7s  %-16s %8s  %-20s %s\n", "IMAGE", "SIZE", "BUILT",
         "SESSIONS", "TEMPLATES", "SOURCE");
  for (size_t i = 0; i < n; i++) {
    char size[32], when[32], tpls[256] = "";
    struct tm tm;
    localtime_r(&inf[i].built_at, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    fmt_size(inf[i].size, size, sizeof size);
    for (size_t j = 0; j <= o->cfg.ntemplates; j++) {
      const struct ac_template *t = tpl_at(o, j);
      if (t->image && !strcmp(t->image->id, inf[i].id))
        snprintf(tpls + strlen(tpls), sizeof tpls - strlen(tpls), "%s%s",
                 tpls[0] ? "," : "", t->image->template_name);
    }
    printf("%-24s %7s  %-16s %8u  %-20s %s\n", inf[i].id, size, when,
           inf[i].users, tpls[0] ? tpls : "-", inf[i].source);
  }
  /* what the configuration names but is not built */
  for (size_t j = 0; j <= o->cfg.ntemplates; j++) {
    const struct ac_template *t = tpl_at(o, j);
    char what[300];
    if (t->image == NULL || img_is_built(t->image))
      continue;
    img_spec_describe(t->image, what, sizeof what);
    printf("%-24s %7s  %-16s %8s  %-20s %s\n", t->image->id, "-",
           "(not built)", "-", t->image->template_name, what);
  }
  free(inf);
  return 0;
}

static int cmd_rm(struct opts *o, int argc, char **argv) {
  const char *store = store_of(o);
  int status = 0;
  if (optind == argc) {
    fputs(usage_text, stderr);
    return 2;
  }
  for (int i = optind; i < argc; i++) {
    const struct ac_template *t = tpl_named(o, argv[i]);
    const char *id = t ? t->image->id : argv[i];
    struct ac_error err;
    enum ac_code rc = img_store_remove(store, id, &err);
    if (rc == AC_OK) {
      printf("removed %s\n", id);
      continue;
    }
    fprintf(stderr, "agentcube image: %s\n", err.msg);
    if (rc == AC_EBUSY)
      status = 3;
    else if (status == 0)
      status = 1;
  }
  return status;
}

static int cmd_prune(struct opts *o) {
  struct img_info *inf = NULL;
  size_t n = 0;
  struct ac_error err;
  const char *store = store_of(o);
  int status = 0;

  img_store_sweep(store);
  if (img_store_list(store, &inf, &n, &err) != AC_OK) {
    fprintf(stderr, "agentcube image: %s\n", err.msg);
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    int named = 0;
    for (size_t j = 0; j <= o->cfg.ntemplates; j++) {
      const struct ac_template *t = tpl_at(o, j);
      named |= t->image && !strcmp(t->image->id, inf[i].id);
    }
    if (named || inf[i].users > 0)
      continue;
    if (img_store_remove(store, inf[i].id, &err) == AC_OK) {
      printf("removed %s\n", inf[i].id);
    } else {
      fprintf(stderr, "agentcube image: %s\n", err.msg);
      status = 1;
    }
  }
  free(inf);
  return status;
}

int ac_cmd_image(int argc, char **argv) {
  struct opts o;
  const char *sub = argc > 1 ? argv[1] : NULL;
  int status;

  memset(&o, 0, sizeof o);
  if (sub == NULL || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
    fputs(usage_text, sub ? stdout : stderr);
    return sub ? 0 : 2;
  }
  if (strcmp(sub, "build") && strcmp(sub, "ls") && strcmp(sub, "rm") &&
      strcmp(sub, "prune")) {
    fprintf(stderr, "agentcube image: unknown command '%s'\n%s", sub,
            usage_text);
    return 2;
  }
  if (parse(argc - 1, argv + 1, &o) != 0) {
    if (o.have_cfg)
      ac_config_free(&o.cfg);
    return 2;
  }
  argc -= 1;
  argv += 1;
  if (!strcmp(sub, "build"))
    status = cmd_build(&o, argc, argv);
  else if (!strcmp(sub, "ls"))
    status = optind < argc ? (fputs(usage_text, stderr), 2) : cmd_ls(&o);
  else if (!strcmp(sub, "rm"))
    status = cmd_rm(&o, argc, argv);
  else
    status = optind < argc ? (fputs(usage_text, stderr), 2) : cmd_prune(&o);
  ac_config_free(&o.cfg);
  return status;
}
