/*
** image_spec.c -- the `image:` key of a template: parsing, the image's
** content address, and binding templates to an image store.
**
** The address of a Debian image hashes everything that decides its
** content: suite, mirror, architecture, variant and the sorted package
** list (so [a, b] and [b, a] are one image). A rootfs image is named by
** its directory, an OCI image by its layout, tag and manifest digest.
*/
#include "image.h"
#include "image_int.h"
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

/* Bumped when the build recipe changes, so old images are not reused. */
#define RECIPE "essential-v2"

static enum ac_code at(const char *file, yaml_node_t *n, struct ac_error *err,
                       const char *msg, const char *arg) {
  char what[300];
  snprintf(what, sizeof what, msg, arg);
  return ac_error_set(err, AC_ECONFIG, "%s:%lu:%lu: %s", file,
                      (unsigned long)n->start_mark.line + 1,
                      (unsigned long)n->start_mark.column + 1, what);
}

static const char *scalar(yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                          : NULL;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A Debian package name: lowercase letters, digits, + - . (policy 5.6.1),
** optionally ":arch" or "=version"; nothing a shell or apt option could
** misread. */
static int valid_package(const char *p) {
  if (!isalnum((unsigned char)p[0]))
    return 0;
  for (; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("+-.:=~_", *p))
      return 0;
  return 1;
}

static int valid_word(const char *p) {
  if (*p == '\0' || *p == '-')
    return 0;
  for (; *p; p++)
    if (isspace((unsigned char)*p) || *p == ',')
      return 0;
  return 1;
}

void img_spec_free(struct img_spec *s) {
  if (s == NULL)
    return;
  free(s->suite);
  free(s->mirror);
  free(s->arch);
  for (size_t i = 0; s->packages && s->packages[i]; i++)
    free(s->packages[i]);
  free(s->packages);
  free(s->dir);
  free(s->tag);
  free(s->store);
  free(s->root);
  free(s->config_path);
  free(s->template_name);
  free(s);
}

static char *dup0(const char *s) {
  return s ? strdup(s) : NULL;
}

struct img_spec *img_spec_dup(const struct img_spec *s) {
  struct img_spec *d;
  size_t n = 0;
  if (s == NULL || (d = calloc(1, sizeof *d)) == NULL)
    return NULL;
  d->kind = s->kind;
  memcpy(d->id, s->id, sizeof d->id);
  d->suite = dup0(s->suite);
  d->mirror = dup0(s->mirror);
  d->arch = dup0(s->arch);
  d->dir = dup0(s->dir);
  d->tag = dup0(s->tag);
  d->store = dup0(s->store);
  d->root = dup0(s->root);
  d->config_path = dup0(s->config_path);
  d->template_name = dup0(s->template_name);
  while (s->packages && s->packages[n])
    n++;
  if (s->packages && (d->packages = calloc(n + 1, sizeof *d->packages)))
    for (size_t i = 0; i < n; i++)
      d->packages[i] = strdup(s->packages[i]);
  return d;
}

void img_spec_describe(const struct img_spec *s, char *buf, size_t size) {
  size_t off;
  switch (s->kind) {
  case IMG_DEBIAN:
    off = (size_t)snprintf(buf, size, "debian %s %s:", s->suite, s->arch);
    for (size_t i = 0; s->packages[i] && off < size; i++)
      off += (size_t)snprintf(buf + off, size - off, " %s", s->packages[i]);
    break;
  case IMG_ROOTFS:
    snprintf(buf, size, "rootfs %s", s->dir);
    break;
  case IMG_OCI:
    snprintf(buf, size, "oci %s:%s", s->dir, s->tag);
    break;
  }
}

/* The deb822 or one-line apt source whose suites include `suite`: the
** mirror the host's apt uses. */
static char *mirror_from_apt(const char *suite) {
  static const char *const files[] = {
    "/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list",
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    FILE *f = fopen(files[i], "r");
    char line[1024], uri[512] = "";
    if (f == NULL)
      continue;
    while (fgets(line, sizeof line, f)) {
      char a[512], b[512], c[256];
      line[strcspn(line, "\r\n")] = '\0';
      if (sscanf(line, "URIs: %511s", a) == 1)
        snprintf(uri, sizeof uri, "%s", a);
      else if (strncmp(line, "Suites:", 7) == 0 && uri[0]) {
        for (char *t = strtok(line + 7, " \t"); t; t = strtok(NULL, " \t"))
          if (strcmp(t, suite) == 0) {
            fclose(f);
            return strdup(uri);
          }
      } else if (line[0] == '\0')
        uri[0] = '\0';
      else if (sscanf(line, "deb %511s %255s", b, c) == 2 && b[0] != '[' &&
               strcmp(c, suite) == 0) {
        fclose(f);
        return strdup(b);
      } else if (sscanf(line, "deb [%*[^]]] %511s %255s", a, c) == 2 &&
                 strcmp(c, suite) == 0) {
        fclose(f);
        return strdup(a);
      }
    }
    fclose(f);
  }
  return strdup("http://deb.debian.org/debian");
}

static char *host_suite(void) {
  FILE *f = fopen("/etc/os-release", "r");
  char line[256], v[64];
  if (f) {
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VERSION_CODENAME=%63[a-z]", v) == 1) {
        fclose(f);
        return strdup(v);
      }
    fclose(f);
  }
  return strdup("bookworm");
}

static const char *host_arch(void) {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "i386";
#elif defined(__arm__)
  return "armhf";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64el";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

/* The digest of the manifest tagged `tag` in an OCI layout, or "" when the
** layout cannot be read yet (the build then says why). */
static void oci_digest(const char *dir, const char *tag, char *out,
                       size_t size) {
  char path[4200];
  json_t *idx, *m;
  size_t i;
  out[0] = '\0';
  snprintf(path, sizeof path, "%s/index.json", dir);
  if ((idx = json_load_file(path, 0, NULL)) == NULL)
    return;
  json_array_foreach(json_object_get(idx, "manifests"), i, m) {
    const char *name = json_string_value(json_object_get(
      json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
    const char *d = json_string_value(json_object_get(m, "digest"));
    if (name && d && strcmp(name, tag) == 0) {
      snprintf(out, size, "%s", d);
      break;
    }
  }
  json_decref(idx);
}

static void feed(EVP_MD_CTX *ctx, const char *v) {
  if (v == NULL)
    v = "";
  EVP_DigestUpdate(ctx, v, strlen(v) + 1);     /* the NUL separates */
}

void img_spec_address(struct img_spec *s) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  char digest[256] = "";
  static const char *const kinds[] = { "debian", "rootfs", "oci" };
  const char *kind = kinds[s->kind];

#define FEED(str) feed(ctx, str)
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  FEED(RECIPE);
  FEED(kind);
  if (s->kind == IMG_DEBIAN) {
    FEED(s->suite);
    FEED(s->mirror);
    FEED(s->arch);
    for (size_t i = 0; s->packages[i]; i++)
      FEED(s->packages[i]);
  } else {
    FEED(s->dir);
    if (s->kind == IMG_OCI) {
      oci_digest(s->dir, s->tag, digest, sizeof digest);
      FEED(s->tag);
      FEED(digest);
    }
  }
#undef FEED
  EVP_DigestFinal_ex(ctx, md, &mdlen);
  EVP_MD_CTX_free(ctx);
  snprintf(s->id, sizeof s->id, "%s-", kind);
  for (unsigned i = 0; i < 8; i++)
    snprintf(s->id + strlen(s->id), 3, "%02x", md[i]);
}

static char *abs_dir(const char *d) {
  char *r = realpath(d, NULL);
  if (r)
    return r;
  if (d[0] == '/')
    return strdup(d);
  char *cwd = realpath(".", NULL), *out = NULL;
  if (cwd && (out = malloc(strlen(cwd) + strlen(d) + 2)))
    sprintf(out, "%s/%s", cwd, d);
  free(cwd);
  return out;
}

static enum ac_code parse_packages(const char *file, yaml_document_t *doc,
                                   yaml_node_t *v, struct img_spec *s,
                                   struct ac_error *err) {
  size_t n, k = 0;
  if (v->type != YAML_SEQUENCE_NODE)
    return at(file, v, err, "%s must be a list of package names",
              "image.packages");
  n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
  if ((s->packages = calloc(n + 1, sizeof *s->packages)) == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *e = yaml_document_get_node(doc,
                                            v->data.sequence.items.start[i]);
    const char *p = scalar(e);
    if (p == NULL || !valid_package(p))
      return at(file, e, err, "'%s' is not a Debian package name",
                p ? p : "?");
    if ((s->packages[k++] = strdup(p)) == NULL)
      return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  qsort(s->packages, k, sizeof *s->packages, cmp_str);
  /* duplicates name the same image */
  for (size_t i = 1; i < k;) {
    if (strcmp(s->packages[i], s->packages[i - 1]) == 0) {
      free(s->packages[i]);
      memmove(&s->packages[i], &s->packages[i + 1],
              (k - i) * sizeof *s->packages);
      k--;
    } else {
      i++;
    }
  }
  return AC_OK;
}

enum ac_code img_spec_parse(yaml_document_t *doc, yaml_node_t *n,
                            const char *file, struct img_spec **out,
                            struct ac_error *err) {
  struct img_spec *s;
  yaml_node_t *pk = NULL, *where = n;
  const char *suite = NULL, *mirror = NULL, *rootfs = NULL, *oci = NULL;
  enum ac_code rc = AC_OK;

  *out = NULL;
  if (n->type == YAML_SCALAR_NODE && n->data.scalar.style ==
      YAML_PLAIN_SCALAR_STYLE && (!strcmp(scalar(n), "null") ||
                                  !strcmp(scalar(n), "~") || !*scalar(n)))
    return AC_OK;        /* image: null -- the host's /usr (overrides) */
  if (n->type != YAML_MAPPING_NODE)
    return at(file, n, err, "%s must be a mapping: { packages: [...] }, "
              "{ rootfs: DIR } or { oci: DIR[:TAG] }", "image");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key);
    yaml_node_t *v = yaml_document_get_node(doc, p->value);
    const char *ks = scalar(k) ? scalar(k) : "?";
    const char **slot = NULL;
    if (!strcmp(ks, "packages")) {
      pk = v;
      continue;
    }
    if (!strcmp(ks, "suite"))
      slot = &suite;
    else if (!strcmp(ks, "mirror"))
      slot = &mirror;
    else if (!strcmp(ks, "rootfs"))
      slot = &rootfs;
    else if (!strcmp(ks, "oci"))
      slot = &oci;
    else
      return at(file, k, err, "unknown key '%s' in image (packages, suite, "
                "mirror, rootfs or oci)", ks);
    if ((*slot = scalar(v)) == NULL || !valid_word(*slot))
      return at(file, v, err, "image.%s must be a single word", ks);
    where = k;
  }
  if ((pk != NULL) + (rootfs != NULL) + (oci != NULL) != 1)
    return at(file, n, err, "%s needs exactly one of packages, rootfs or oci",
              "image");
  if ((suite || mirror) && pk == NULL)
    return at(file, where, err, "%s: suite and mirror go with packages",
              "image");
  if ((s = calloc(1, sizeof *s)) == NULL)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  if (pk) {
    s->kind = IMG_DEBIAN;
    rc = parse_packages(file, doc, pk, s, err);
    if (rc == AC_OK) {
      s->suite = suite ? strdup(suite) : host_suite();
      s->mirror = mirror ? strdup(mirror) : mirror_from_apt(s->suite);
      s->arch = strdup(host_arch());
      if (!s->suite || !s->mirror || !s->arch)
        rc = ac_error_set(err, AC_ENOMEM, "out of memory");
    }
  } else if (rootfs) {
    s->kind = IMG_ROOTFS;
    if ((s->dir = abs_dir(rootfs)) == NULL)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  } else {
    /* DIR[:TAG]: the tag is what follows the last ':' after the last '/' */
    const char *slash = strrchr(oci, '/'), *colon = strrchr(oci, ':');
    char *d;
    s->kind = IMG_OCI;
    if (colon && (slash == NULL || colon > slash) && colon[1]) {
      d = strndup(oci, (size_t)(colon - oci));
      s->tag = strdup(colon + 1);
    } else {
      d = strdup(oci);
      s->tag = strdup("latest");
    }
    s->dir = d ? abs_dir(d) : NULL;
    free(d);
    if (!s->dir || !s->tag)
      rc = ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  if (rc != AC_OK) {
    img_spec_free(s);
    return rc;
  }
  img_spec_address(s);
  *out = s;
  return AC_OK;
}

char *img_store_default(const char *state_dir) {
  char *p = malloc(strlen(state_dir) + sizeof "/images");
  if (p)
    sprintf(p, "%s/images", state_dir);
  return p;
}

static enum ac_code bind_one(struct ac_template *t, const char *store,
                             const char *config_path, struct ac_error *err) {
  struct img_spec *s = t->image;
  if (s == NULL)
    return AC_OK;
  free(s->store);
  free(s->root);
  free(s->config_path);
  free(s->template_name);
  s->store = strdup(store);
  s->root = malloc(strlen(store) + strlen(s->id) + sizeof "//rootfs");
  s->config_path = dup0(config_path);
  s->template_name = dup0(t->name ? t->name : "default");
  if (!s->store || !s->root || (config_path && !s->config_path) ||
      !s->template_name)
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  sprintf(s->root, "%s/%s/rootfs", store, s->id);
  t->limits.image_root = s->root;
  return AC_OK;
}

enum ac_code img_config_bind(struct ac_config *cfg, const char *store,
                             const char *config_path, struct ac_error *err) {
  enum ac_code rc = bind_one(&cfg->fallback, store, config_path, err);
  for (size_t i = 0; rc == AC_OK && i < cfg->ntemplates; i++)
    rc = bind_one(&cfg->templates[i], store, config_path, err);
  return rc;
}

/* An absolute form of path (which need not exist); malloc'd. */
static char *absolute(const char *path) {
  return abs_dir(path);
}

enum ac_code img_serve_setup(struct ac_config *cfg, const char *state_dir,
                             const char *image_dir, const char *config_path,
                             int build_on_demand, struct ac_error *err) {
  char *store = image_dir ? absolute(image_dir) : NULL, *cfgp = NULL;
  enum ac_code rc;
  if (store == NULL) {
    char *d = img_store_default(state_dir);
    store = d ? absolute(d) : NULL;
    free(d);
  }
  if (config_path)
    cfgp = absolute(config_path);
  if (store == NULL || (config_path && cfgp == NULL)) {
    free(store);
    free(cfgp);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  rc = img_config_bind(cfg, store, cfgp, err);
  img_set_build_on_demand(build_on_demand);
  /* --build-images: what is missing is built now, in the foreground
  ** (before --daemon detaches), with its progress on the terminal. */
  for (size_t i = 0; rc == AC_OK && build_on_demand && i <= cfg->ntemplates;
       i++) {
    const struct ac_template *t =
      i < cfg->ntemplates ? &cfg->templates[i] : &cfg->fallback;
    int built;
    if (t->image && !img_is_built(t->image)) {
      fprintf(stderr, "agentcube serve: building image %s of template "
              "'%s'\n", t->image->id, t->image->template_name);
      rc = img_build(t->image, stderr, isatty(2), &built, err);
    }
  }
  free(store);
  free(cfgp);
  return rc;
}
