-- luacheck configuration: `make lint` (and `make test`) runs luacheck over
-- the Lua module and every spec.
std = "lua54"
-- lines are kept to 80 columns by review; the linter looks for mistakes
max_line_length = false
-- specs and their helpers run under busted
files["tests"] = { std = "+busted" }
exclude_files = { "build", "build-san" }
-- to-be-closed variables exist for their __close, not to be read
files["tests/lua/fake_spec.lua"] = { ignore = { "211/keep", "211/c" } }
-- results kept for the reader next to the status they come with
files["tests/security/sandbox_spec.lua"] = { ignore = { "311/status",
                                                       "211/j" } }
files["tests/server/control_spec.lua"] = { ignore = { "311/status",
                                                     "311/j" } }
