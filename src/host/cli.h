/*
** cli.h -- the host's subcommands. Each takes its own argv (argv[0] is the
** subcommand's name) and returns the process exit status.
*/
#ifndef AGENTCUBE_CLI_H
#define AGENTCUBE_CLI_H

#define AC_HOST_VERSION "0.1.0"

int ac_cmd_run(int argc, char **argv);
int ac_cmd_check(int argc, char **argv);
int ac_cmd_repl(int argc, char **argv);
int ac_cmd_sessions(int argc, char **argv);

/* lua5.4's command line: [options] [script [args]]. */
int ac_cmd_lua(int argc, char **argv, const char *usage);

#endif
