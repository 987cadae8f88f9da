/*
** yaml_load.h -- agentcube.yaml, the YAML loader of the workflow engine:
** YAML text to Lua values, with the position of every node kept for
** error messages. See yaml_load.c for the value mapping.
*/
#ifndef AGENTCUBE_YAML_LOAD_H
#define AGENTCUBE_YAML_LOAD_H

#include <lua.h>

/* Nesting deeper than this is an error (cjson's limit, STYLE rule 11). */
#define ACYAML_MAX_DEPTH 1000

/* More nodes than this, counting every alias as a copy of what it names,
** is an error: the guard against "billion laughs" documents. */
#define ACYAML_MAX_NODES 1000000

/* Opens module agentcube.yaml: { load = fn, null = lightuserdata }.
** [-0, +1, m]. Not exported by agentcube.core's shared object; the core
** module registers it in package.preload. */
int luaopen_agentcube_yaml(lua_State *L);

#endif
