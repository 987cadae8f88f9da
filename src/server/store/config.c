/*
** config.c -- templates and server limits from a YAML file (libyaml).
**
** The file is loaded as a libyaml document, then walked with a small set of
** typed accessors that report every problem as "file:line:col: message".
** Unknown keys are errors: a misspelt limit must never be silently ignored
** on a component whose job is to contain untrusted code.
*/
#include "config.h"
#include "config_net.h"
#include "duration.h"
#include "image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#define GiB (1024ULL * 1024 * 1024)
#define MiB (1024ULL * 1024)

/* A walk over one loaded document, with the file name for messages. */
struct walk {
  yaml_document_t *doc;
  const char *file;
  struct ac_error *err;
};

static enum ac_code at(struct walk *w, yaml_node_t *n, const char *fmt,
                       const char *arg) {
  char what[200];
  snprintf(what, sizeof what, fmt, arg);
  return ac_error_set(w->err, AC_ECONFIG, "%s:%lu:%lu: %s", w->file,
                      (unsigned long)n->start_mark.line + 1,
                      (unsigned long)n->start_mark.column + 1, what);
}

static const char *scalar(yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                     : NULL;
}

static enum ac_code want_scalar(struct walk *w, yaml_node_t *n,
                                const char *key, const char **out) {
  if ((*out = scalar(n)) == NULL)
    return at(w, n, "%s must be a scalar", key);
  return AC_OK;
}

static enum ac_code get_bool(struct walk *w, yaml_node_t *n, const char *key,
                             int *out) {
  const char *s;
  enum ac_code rc = want_scalar(w, n, key, &s);
  if (rc)
    return rc;
  if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "on"))
    *out = 1;
  else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") ||
           !strcmp(s, "off"))
    *out = 0;
  else
    return at(w, n, "%s must be true or false", key);
  return AC_OK;
}

static enum ac_code get_bytes(struct walk *w, yaml_node_t *n, const char *key,
                              unsigned long long *out) {
  const char *s;
  enum ac_code rc = want_scalar(w, n, key, &s);
  if (rc)
    return rc;
  if (ac_parse_quantity(s, out) != AC_OK)
    return at(w, n, "%s must be a size such as 512Mi or 1Gi", key);
  return AC_OK;
}

static enum ac_code get_uint(struct walk *w, yaml_node_t *n, const char *key,
                             unsigned *out) {
  const char *s;
  char *end;
  unsigned long v;
  enum ac_code rc = want_scalar(w, n, key, &s);
  if (rc)
    return rc;
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno || end == s || *end || v > 1000000 || s[0] == '-')
    return at(w, n, "%s must be a whole number", key);
  *out = (unsigned)v;
  return AC_OK;
}

/* A non-negative ratio such as 1.5 (0 turns the check off). */
static enum ac_code get_ratio(struct walk *w, yaml_node_t *n, const char *key,
                              double *out) {
  const char *s;
  char *end;
  double v;
  enum ac_code rc = want_scalar(w, n, key, &s);
  if (rc)
    return rc;
  errno = 0;
  v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= 0 && v <= 1000))
    return at(w, n, "%s must be a number such as 1.5", key);
  *out = v;
  return AC_OK;
}

static enum ac_code get_seconds(struct walk *w, yaml_node_t *n,
                                const char *key, long long *out_ns) {
  const char *s;
  struct ac_error derr;
  enum ac_code rc = want_scalar(w, n, key, &s);
  if (rc)
    return rc;
  if (ac_duration_parse(s, out_ns, &derr) != AC_OK || *out_ns <= 0)
    return at(w, n, "%s must be a positive duration such as 90s or 15m",
              key);
  return AC_OK;
}

static enum ac_code dup_str(struct walk *w, yaml_node_t *n, const char *key,
                            char **out) {
  const char *s;
  enum ac_code rc = want_scalar(w, n, key, &s);
  if (rc)
    return rc;
  free(*out);
  if ((*out = strdup(s)) == NULL)
    return ac_error_set(w->err, AC_ENOMEM, "out of memory");
  return AC_OK;
}

static enum ac_code env_add(struct walk *w, struct ac_template *t,
                            yaml_node_t *at_node, const char *name,
                            const char *value) {
  size_t n = 0, len;
  char **grown, *entry;

  if (name == NULL || !*name || strchr(name, '='))
    return at(w, at_node, "environment variable name '%s' is invalid",
              name ? name : "");
  while (t->env && t->env[n])
    n++;
  len = strlen(name) + strlen(value ? value : "") + 2;
  if ((entry = malloc(len)) == NULL ||
      (grown = realloc(t->env, (n + 2) * sizeof *grown)) == NULL) {
    free(entry);
    return ac_error_set(w->err, AC_ENOMEM, "out of memory");
  }
  snprintf(entry, len, "%s=%s", name, value ? value : "");
  grown[n] = entry;
  grown[n + 1] = NULL;
  t->env = grown;
  return AC_OK;
}

static enum ac_code get_env(struct walk *w, yaml_node_t *n,
                            struct ac_template *t) {
  enum ac_code rc = AC_OK;
  if (n->type == YAML_MAPPING_NODE) {
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         rc == AC_OK && p < n->data.mapping.pairs.top; p++) {
      yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
      yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
      if (!scalar(k) || !scalar(v))
        return at(w, v, "%s must map names to strings", "environment");
      rc = env_add(w, t, k, scalar(k), scalar(v));
    }
    return rc;
  }
  if (n->type != YAML_SEQUENCE_NODE)
    return at(w, n, "%s must be a list of {name, value} or a map",
              "environment");
  for (yaml_node_item_t *i = n->data.sequence.items.start;
       rc == AC_OK && i < n->data.sequence.items.top; i++) {
    yaml_node_t *e = yaml_document_get_node(w->doc, *i);
    const char *name = NULL, *value = "";
    if (e->type != YAML_MAPPING_NODE)
      return at(w, e, "%s entries must be {name, value}", "environment");
    for (yaml_node_pair_t *p = e->data.mapping.pairs.start;
         p < e->data.mapping.pairs.top; p++) {
      yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
      yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
      const char *ks = scalar(k);
      if (ks && !strcmp(ks, "name") && scalar(v))
        name = scalar(v);
      else if (ks && !strcmp(ks, "value") && scalar(v))
        value = scalar(v);
      else
        return at(w, k, "unknown key '%s' in an environment entry",
                  ks ? ks : "?");
    }
    rc = env_add(w, t, e, name, value);
  }
  return rc;
}

static enum ac_code get_limits(struct walk *w, yaml_node_t *n,
                               struct ac_template *t) {
  enum ac_code rc = AC_OK;
  if (n->type != YAML_MAPPING_NODE)
    return at(w, n, "%s must be a mapping", "resources");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       rc == AC_OK && p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
    const char *ks = scalar(k) ? scalar(k) : "?";
    if (strcmp(ks, "limits") && strcmp(ks, "requests"))
      return at(w, k, "unknown key '%s' in resources", ks);
    if (v->type != YAML_MAPPING_NODE)
      return at(w, v, "resources.%s must be a mapping", ks);
    if (!strcmp(ks, "requests"))
      continue;  /* accepted for CRD compatibility; only limits bind */
    for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
         rc == AC_OK && q < v->data.mapping.pairs.top; q++) {
      yaml_node_t *lk = yaml_document_get_node(w->doc, q->key);
      yaml_node_t *lv = yaml_document_get_node(w->doc, q->value);
      const char *ls = scalar(lk) ? scalar(lk) : "?";
      if (!strcmp(ls, "memory"))
        rc = get_bytes(w, lv, "memory", &t->limits.memory_bytes);
      else if (!strcmp(ls, "pids"))
        rc = get_uint(w, lv, "pids", &t->limits.pids);
      else if (!strcmp(ls, "cpu")) {
        const char *s = scalar(lv);
        if (!s || ac_parse_cpu(s, &t->limits.cpu_millis) != AC_OK)
          return at(w, lv, "%s must be like \"1\", \"0.5\" or \"500m\"",
                    "cpu");
      } else if (!strcmp(ls, "ephemeral-storage"))
        rc = get_bytes(w, lv, "ephemeral-storage", &t->limits.disk_bytes);
      else
        return at(w, lk, "unknown key '%s' in resources.limits", ls);
    }
  }
  return rc;
}

/* `network:` -- true/false, or a mapping of public, dns and allow. */
static enum ac_code get_network(struct walk *w, yaml_node_t *n,
                                struct ac_template *t) {
  struct sbx_net_policy *p;
  yaml_node_t *allow = NULL;
  enum ac_code rc = AC_OK;

  ac_net_policy_free(t->netpol);
  t->netpol = NULL;
  t->limits.netpol = NULL;
  if (n->type != YAML_MAPPING_NODE)
    return get_bool(w, n, "network", &t->limits.network);
  if ((p = calloc(1, sizeof *p)) == NULL)
    return ac_error_set(w->err, AC_ENOMEM, "out of memory");
  p->public_ = p->dns = 1;
  t->netpol = p;
  t->limits.netpol = p;
  t->limits.network = 1;
  for (yaml_node_pair_t *q = n->data.mapping.pairs.start;
       rc == AC_OK && q < n->data.mapping.pairs.top; q++) {
    yaml_node_t *k = yaml_document_get_node(w->doc, q->key);
    yaml_node_t *v = yaml_document_get_node(w->doc, q->value);
    const char *ks = scalar(k) ? scalar(k) : "?";
    if (!strcmp(ks, "public"))
      rc = get_bool(w, v, "network.public", &p->public_);
    else if (!strcmp(ks, "dns"))
      rc = get_bool(w, v, "network.dns", &p->dns);
    else if (!strcmp(ks, "allow"))
      allow = v;
    else
      rc = at(w, k, "unknown key '%s' in network (public, dns, allow)", ks);
  }
  if (rc || allow == NULL)
    return rc;
  if (allow->type != YAML_SEQUENCE_NODE)
    return at(w, allow, "%s must be a list", "network.allow");
  {
    size_t count = (size_t)(allow->data.sequence.items.top -
                            allow->data.sequence.items.start);
    if (count > 256)
      return at(w, allow, "%s has more than 256 entries", "network.allow");
    p->allow = calloc(count ? count : 1, sizeof *p->allow);
    if (p->allow == NULL)
      return ac_error_set(w->err, AC_ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
      yaml_node_t *e = yaml_document_get_node(
        w->doc, allow->data.sequence.items.start[i]);
      const char *s = scalar(e), *why;
      char msg[200];
      if (s == NULL)
        return at(w, e, "%s entries must be strings such as 10.0.0.0/8 or "
                  "db.internal:5432", "network.allow");
      if ((rc = ac_net_allow_parse(s, &p->allow[i], &why)) != AC_OK) {
        if (rc == AC_ENOMEM)
          return ac_error_set(w->err, AC_ENOMEM, "out of memory");
        snprintf(msg, sizeof msg, "network.allow entry '%.60s' %s", s, why);
        return at(w, e, "%s", msg);
      }
      p->nallow = i + 1;
    }
  }
  return AC_OK;
}

static enum ac_code template_copy(struct ac_template *dst,
                                  const struct ac_template *src) {
  size_t n = 0;
  int oom;
  *dst = *src;
  dst->name = dst->namespace_ = NULL;
  dst->env = NULL;
  dst->image = NULL;
  dst->netpol = ac_net_policy_dup(src->netpol, &oom);
  dst->limits.netpol = dst->netpol;
  if (oom)
    return AC_ENOMEM;
  if (src->image && (dst->image = img_spec_dup(src->image)) == NULL)
    return AC_ENOMEM;
  while (src->env && src->env[n])
    n++;
  if (n == 0)
    return AC_OK;
  if ((dst->env = calloc(n + 1, sizeof *dst->env)) == NULL)
    return AC_ENOMEM;
  for (size_t i = 0; i < n; i++)
    if ((dst->env[i] = strdup(src->env[i])) == NULL)
      return AC_ENOMEM;
  return AC_OK;
}

static enum ac_code get_template(struct walk *w, yaml_node_t *n,
                                 struct ac_template *t) {
  enum ac_code rc = AC_OK;
  long long ns;

  if (n->type != YAML_MAPPING_NODE)
    return at(w, n, "%s must be a mapping", "a template");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       rc == AC_OK && p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
    const char *ks = scalar(k) ? scalar(k) : "?";
    if (!strcmp(ks, "name"))
      rc = dup_str(w, v, ks, &t->name);
    else if (!strcmp(ks, "namespace"))
      rc = dup_str(w, v, ks, &t->namespace_);
    else if (!strcmp(ks, "sessionTimeout")) {
      if ((rc = get_seconds(w, v, ks, &ns)) == AC_OK)
        t->session_timeout_s = ns / 1000000000LL ? ns / 1000000000LL : 1;
    } else if (!strcmp(ks, "maxSessionDuration")) {
      if ((rc = get_seconds(w, v, ks, &ns)) == AC_OK)
        t->max_duration_s = ns / 1000000000LL ? ns / 1000000000LL : 1;
    } else if (!strcmp(ks, "commandTimeout"))
      rc = get_seconds(w, v, ks, &t->command_timeout_ns);
    else if (!strcmp(ks, "warmPoolSize"))
      rc = get_uint(w, v, ks, &t->warm_pool);
    else if (!strcmp(ks, "maxOutputBytes")) {
      unsigned long long b;
      if ((rc = get_bytes(w, v, ks, &b)) == AC_OK)
        t->max_output = (size_t)b;
    } else if (!strcmp(ks, "processOutputBytes"))
      rc = get_bytes(w, v, ks, &t->limits.proc_output_bytes);
    else if (!strcmp(ks, "network"))
      rc = get_network(w, v, t);
    else if (!strcmp(ks, "disk"))
      rc = get_bytes(w, v, ks, &t->limits.disk_bytes);
    else if (!strcmp(ks, "maxFileSize"))
      rc = get_bytes(w, v, ks, &t->limits.fsize_bytes);
    else if (!strcmp(ks, "openFiles"))
      rc = get_uint(w, v, ks, &t->limits.nofile);
    else if (!strcmp(ks, "ptys"))
      rc = get_uint(w, v, ks, &t->limits.ptys);
    else if (!strcmp(ks, "resources"))
      rc = get_limits(w, v, t);
    else if (!strcmp(ks, "environment"))
      rc = get_env(w, v, t);
    else if (!strcmp(ks, "image")) {
      img_spec_free(t->image);
      t->image = NULL;
      rc = img_spec_parse(w->doc, v, w->file, &t->image, w->err);
    } else
      rc = at(w, k, "unknown template key '%s'", ks);
  }
  if (rc == AC_OK && t->name == NULL)
    rc = at(w, n, "%s", "a template needs a name");
  return rc;
}

static enum ac_code get_templates(struct walk *w, yaml_node_t *n,
                                  struct ac_config *cfg) {
  size_t count;
  if (n->type != YAML_SEQUENCE_NODE)
    return at(w, n, "%s must be a list", "templates");
  count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  cfg->templates = calloc(count ? count : 1, sizeof *cfg->templates);
  if (cfg->templates == NULL)
    return ac_error_set(w->err, AC_ENOMEM, "out of memory");
  for (size_t i = 0; i < count; i++) {
    yaml_node_t *e =
      yaml_document_get_node(w->doc, n->data.sequence.items.start[i]);
    enum ac_code rc;
    if (template_copy(&cfg->templates[i], &cfg->fallback) != AC_OK)
      return ac_error_set(w->err, AC_ENOMEM, "out of memory");
    cfg->ntemplates = i + 1;
    if ((rc = get_template(w, e, &cfg->templates[i])) != AC_OK)
      return rc;
  }
  return AC_OK;
}

static enum ac_code get_root(struct walk *w, yaml_node_t *n,
                             struct ac_config *cfg) {
  enum ac_code rc = AC_OK;
  yaml_node_t *templates = NULL, *deflt = NULL;

  if (n == NULL)
    return AC_OK;  /* an empty file keeps the defaults */
  if (n->type != YAML_MAPPING_NODE)
    return at(w, n, "%s", "the configuration must be a mapping");
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
       rc == AC_OK && p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
    const char *ks = scalar(k) ? scalar(k) : "?";
    if (!strcmp(ks, "strict"))
      rc = get_bool(w, v, ks, &cfg->strict);
    else if (!strcmp(ks, "maxUploadBytes"))
      rc = get_bytes(w, v, ks, &cfg->max_upload_bytes);
    else if (!strcmp(ks, "maxJsonBytes"))
      rc = get_bytes(w, v, ks, &cfg->max_json_bytes);
    else if (!strcmp(ks, "maxInflight"))
      rc = get_uint(w, v, ks, &cfg->max_inflight);
    else if (!strcmp(ks, "maxConnections")) {
      if ((rc = get_uint(w, v, ks, &cfg->max_connections)) == AC_OK &&
          cfg->max_connections == 0)
        rc = at(w, v, "%s must be at least 1", ks);
    }
    else if (!strcmp(ks, "maxConnectionsPerAddress"))
      rc = get_uint(w, v, ks, &cfg->max_connections_per_addr);
    else if (!strcmp(ks, "workerThreads"))
      rc = get_uint(w, v, ks, &cfg->worker_threads);
    else if (!strcmp(ks, "headerTimeout") || !strcmp(ks, "idleTimeout")) {
      long long ns = 0;
      if ((rc = get_seconds(w, v, ks, &ns)) == AC_OK &&
          (ns < 1000000LL || ns > 86400 * 1000000000LL))
        rc = at(w, v, "%s must be between 1ms and 24h", ks);
      if (rc == AC_OK && ks[0] == 'h')
        cfg->header_timeout_ms = (unsigned)(ns / 1000000);
      else if (rc == AC_OK)
        cfg->idle_timeout_s = ns < 1000000000LL ? 1
                                                : (unsigned)(ns / 1000000000);
    }
    else if (!strcmp(ks, "maxExecuteBytes"))
      rc = get_bytes(w, v, ks, &cfg->max_execute_bytes);
    else if (!strcmp(ks, "maxControlBytes"))
      rc = get_bytes(w, v, ks, &cfg->max_control_bytes);
    else if (!strcmp(ks, "maxJsonDepth"))
      rc = get_uint(w, v, ks, &cfg->max_json_depth);
    else if (!strcmp(ks, "maxJsonNodes"))
      rc = get_uint(w, v, ks, &cfg->max_json_nodes);
    else if (!strcmp(ks, "maxRequestMemory"))
      rc = get_bytes(w, v, ks, &cfg->max_request_memory);
    else if (!strcmp(ks, "maxSessions"))
      rc = get_uint(w, v, ks, &cfg->max_sessions);
    else if (!strcmp(ks, "maxLoopDevices"))
      rc = get_uint(w, v, ks, &cfg->max_loop_devices);
    else if (!strcmp(ks, "memoryOvercommit"))
      rc = get_ratio(w, v, ks, &cfg->memory_overcommit);
    else if (!strcmp(ks, "diskOvercommit"))
      rc = get_bool(w, v, ks, &cfg->disk_overcommit);
    else if (!strcmp(ks, "minFreeDisk"))
      rc = get_bytes(w, v, ks, &cfg->min_free_disk);
    else if (!strcmp(ks, "templates"))
      templates = v;
    else if (!strcmp(ks, "default"))
      deflt = v;
    else
      rc = at(w, k, "unknown key '%s'", ks);
  }
  /* The default template first: listed templates inherit from it. */
  if (rc == AC_OK && deflt) {
    char *name = strdup("default");
    if (name == NULL)
      return ac_error_set(w->err, AC_ENOMEM, "out of memory");
    cfg->fallback.name = name;   /* get_template wants a name */
    rc = get_template(w, deflt, &cfg->fallback);
    free(cfg->fallback.name);
    cfg->fallback.name = NULL;
    free(cfg->fallback.namespace_);
    cfg->fallback.namespace_ = NULL;
  }
  if (rc == AC_OK && templates)
    rc = get_templates(w, templates, cfg);
  return rc;
}

enum ac_code ac_config_defaults(struct ac_config *cfg, struct ac_error *err) {
  (void)err;
  memset(cfg, 0, sizeof *cfg);
  cfg->max_upload_bytes = 16 * GiB;
  cfg->max_json_bytes = 64 * MiB;
  cfg->max_inflight = 1000;
  cfg->max_connections = 1024;
  cfg->max_connections_per_addr = 256;
  cfg->header_timeout_ms = 30000;
  cfg->idle_timeout_s = 60;
  cfg->worker_threads = 4;
  cfg->max_execute_bytes = 8 * MiB;
  cfg->max_control_bytes = 64 * 1024;
  cfg->max_json_depth = 64;
  cfg->max_json_nodes = 100000;
  cfg->max_request_memory = 1 * GiB;
  cfg->max_sessions = 256;
  cfg->max_loop_devices = 256;
  cfg->memory_overcommit = 4.0;
  cfg->disk_overcommit = 0;
  cfg->min_free_disk = 1 * GiB;
  cfg->fallback.session_timeout_s = 15 * 60;
  cfg->fallback.max_duration_s = 8 * 3600;
  cfg->fallback.command_timeout_ns = 60 * 1000000000LL;
  cfg->fallback.warm_pool = 2;
  cfg->fallback.max_output = 16 * MiB;
  cfg->fallback.limits.memory_bytes = 1 * GiB;
  cfg->fallback.limits.disk_bytes = 1 * GiB;
  cfg->fallback.limits.fsize_bytes = 1 * GiB;
  cfg->fallback.limits.pids = 256;
  cfg->fallback.limits.cpu_millis = 1000;
  cfg->fallback.limits.nofile = 1024;
  cfg->fallback.limits.ptys = 64;
  cfg->fallback.limits.network = 0;
  return AC_OK;
}

enum ac_code ac_config_load(struct ac_config *cfg, const char *path,
                            struct ac_error *err) {
  yaml_parser_t parser;
  yaml_document_t doc;
  struct walk w = { &doc, path, err };
  enum ac_code rc;
  FILE *f = fopen(path, "rb");

  if (f == NULL)
    return ac_error_errno(err, AC_ECONFIG, errno, "cannot open %s", path);
  if (!yaml_parser_initialize(&parser)) {
    fclose(f);
    return ac_error_set(err, AC_ENOMEM, "out of memory");
  }
  yaml_parser_set_input_file(&parser, f);
  if (!yaml_parser_load(&parser, &doc)) {
    rc = ac_error_set(err, AC_ECONFIG, "%s:%lu:%lu: %s", path,
                      (unsigned long)parser.problem_mark.line + 1,
                      (unsigned long)parser.problem_mark.column + 1,
                      parser.problem ? parser.problem : "invalid YAML");
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
  }
  rc = get_root(&w, yaml_document_get_root_node(&doc), cfg);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  fclose(f);
  return rc;
}

const struct ac_template *ac_config_find(const struct ac_config *cfg,
                                         const char *namespace_,
                                         const char *name) {
  for (size_t i = 0; i < cfg->ntemplates; i++) {
    const struct ac_template *t = &cfg->templates[i];
    if (strcmp(t->name, name) == 0 &&
        (t->namespace_ == NULL || strcmp(t->namespace_, namespace_) == 0))
      return t;
  }
  return cfg->strict ? NULL : &cfg->fallback;
}

static void template_free(struct ac_template *t) {
  free(t->name);
  free(t->namespace_);
  for (size_t i = 0; t->env && t->env[i]; i++)
    free(t->env[i]);
  free(t->env);
  img_spec_free(t->image);
  ac_net_policy_free(t->netpol);
}

void ac_config_free(struct ac_config *cfg) {
  for (size_t i = 0; i < cfg->ntemplates; i++)
    template_free(&cfg->templates[i]);
  free(cfg->templates);
  template_free(&cfg->fallback);
  memset(cfg, 0, sizeof *cfg);
}

/* strtod for the numbers of quantities: decimal digits, a point and an
** exponent only. strtod alone also takes "nan", "inf" and hex floats, and
** a NaN passes every range check and then overflows a cast. 0 on success
** (*end after the number), -1 otherwise. */
static int parse_decimal(const char *s, double *v, char **end) {
  const char *p = s;
  if (!((*p >= '0' && *p <= '9') || *p == '.'))
    return -1;
  errno = 0;
  *v = strtod(s, end);
  if (errno || *end == s || *v != *v)
    return -1;
  for (p = s; p < *end; p++)
    if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
          *p == '+' || *p == '-'))
      return -1;
  return 0;
}

enum ac_code ac_parse_quantity(const char *s, unsigned long long *out) {
  static const struct { const char *suffix; unsigned long long mul; } sfx[] =
  { { "Ki", 1ULL << 10 }, { "Mi", 1ULL << 20 }, { "Gi", 1ULL << 30 },
    { "Ti", 1ULL << 40 }, { "k", 1000ULL }, { "K", 1000ULL },
    { "M", 1000000ULL }, { "G", 1000000000ULL }, { "T", 1000000000000ULL },
    { "", 1 } };
  char *end;
  double v;

  if (s == NULL || parse_decimal(s, &v, &end) != 0 || v < 0)
    return AC_EINVAL;
  for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
    if (strcmp(end, sfx[i].suffix) == 0) {
      long double b = (long double)v * sfx[i].mul;
      if (b > 1.8e19L)
        return AC_EINVAL;
      *out = (unsigned long long)b;
      return AC_OK;
    }
  }
  return AC_EINVAL;
}

enum ac_code ac_parse_cpu(const char *s, unsigned *millis) {
  char *end;
  double v;
  if (s == NULL || parse_decimal(s, &v, &end) != 0 || v <= 0)
    return AC_EINVAL;
  if (strcmp(end, "m") == 0)
    v /= 1000;
  else if (*end)
    return AC_EINVAL;
  if (v * 1000 < 1 || v > 1024)
    return AC_EINVAL;
  *millis = (unsigned)(v * 1000 + 0.5);
  return AC_OK;
}
