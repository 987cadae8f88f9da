/*
** fuzz_noagent.h -- for harnesses that link the server's routes: the
** sandbox's agent binary is embedded at build time (build/gen) and the
** routes pull in the sandbox, which never starts in a harness. Include
** once per harness.
*/
#ifndef AGENTCUBE_FUZZ_NOAGENT_H
#define AGENTCUBE_FUZZ_NOAGENT_H

const unsigned char sbx_agent_bin[1];
const unsigned long sbx_agent_bin_len = 0;

#endif
