-- The Lua module `agentcube` (the SDK-shaped client, the workflow engine
-- and its C part agentcube.core) for luarocks:
--
--   luarocks --lua-version 5.4 make            (in this directory)
--
-- The C part is built by the project's Makefile against the system's
-- libcurl, jansson, OpenSSL and libyaml (Debian: make deps).
rockspec_format = "3.0"
package = "agentcube"
version = "scm-1"
source = {
  url = "git+https://github.com/volcano-sh/agentcube",
}
description = {
  summary = "AgentCube code-interpreter sandboxes from Lua: client and workflows",
  detailed = [[
The official Python SDK's CodeInterpreterClient for Lua 5.4, with sessions
that delete themselves, asynchronous jobs, and the workflow engine of the
agentcube tool (YAML or Lua workflows over several sandbox sessions).]],
  license = "Apache-2.0",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
-- libcurl, jansson, libcrypto and libyaml are found by the Makefile through
-- pkg-config (Debian's multiarch headers are not where luarocks looks)
build = {
  type = "make",
  build_target = "rock",
  install_target = "rock-install",
  build_variables = {
    BUILD = "build-rock",
    CC = "$(CC)",
  },
  install_variables = {
    BUILD = "build-rock",
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
}
