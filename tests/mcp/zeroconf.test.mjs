// zeroconf.test.mjs -- the README's host configuration: `agentcube mcp`
// with no URLs at all starts the local runtime in $AGENTCUBE_HOME and runs
// code there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StdioClientTransport, BIN, payload, sleep, rawStdio }
  from './helpers.mjs';

test('with nothing configured, run_code works on a local runtime it starts',
     async () => {
  const home = mkdtempSync(join(tmpdir(), 'agentcube-mcp-home.'));
  const env = { ...process.env, AGENTCUBE_HOME: home };
  delete env.WORKLOAD_MANAGER_URL;
  delete env.ROUTER_URL;
  let pid;
  try {
    const transport = new StdioClientTransport({ command: BIN,
      args: ['mcp'], env, stderr: 'pipe' });
    const client = new Client({ name: 'host', version: '1' });
    await client.connect(transport);
    const r = await client.callTool({ name: 'run_code', arguments: {
      language: 'python', code: 'print(sum(range(10)))' } });
    assert.equal(r.isError, false, JSON.stringify(r));
    assert.equal(payload(r).output, '45\n');
    const state = JSON.parse(readFileSync(join(home, 'serve.json'), 'utf8'));
    pid = state.pid;
    await client.close();
    const res = await fetch(`${state.url}/v1/code-interpreter/sessions`, {
      headers: { Authorization: 'Bearer '
        + readFileSync(join(home, 'token'), 'utf8').trim() } });
    assert.equal((await res.json()).sessions.length, 0);
  } finally {
    if (pid) {                 // the runtime this test caused to start
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      for (let i = 0; i < 200; i++) {
        try { process.kill(pid, 0); } catch { break; }
        await sleep(100);
      }
    }
    rmSync(home, { recursive: true, force: true });
  }
});

test('starting the runtime writes nothing but MCP messages to stdout',
     async () => {
  const home = mkdtempSync(join(tmpdir(), 'agentcube-mcp-home.'));
  const env = { ...process.env, AGENTCUBE_HOME: home };
  delete env.WORKLOAD_MANAGER_URL;
  delete env.ROUTER_URL;
  const s = rawStdio({ env });         // every stdout line must parse
  let pid;
  try {
    s.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {},
                clientInfo: { name: 'raw', version: '1' } } }));
    assert.equal((await s.next()).id, 1);
    s.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call',
      params: { name: 'execute_command', arguments: { command: 'echo ok' } } }));
    const r = await s.next(60000);
    assert.equal(r.id, 2);
    assert.equal(r.result.structuredContent.output, 'ok\n');
    pid = JSON.parse(readFileSync(join(home, 'serve.json'), 'utf8')).pid;
    assert.equal(await s.close(), 0);
  } finally {
    if (pid) {
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      for (let i = 0; i < 200; i++) {
        try { process.kill(pid, 0); } catch { break; }
        await sleep(100);
      }
    }
    rmSync(home, { recursive: true, force: true });
  }
});
