// http.test.mjs -- `agentcube mcp --transport http` (Streamable HTTP),
// driven by the official MCP TypeScript SDK client and by raw requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRuntime, startHttp, httpClient, payload, sleep, types }
  from './helpers.mjs';

let rt, srv, mcp;

before(async () => {
  rt = await startRuntime();
  srv = await startHttp(rt);
  mcp = await httpClient(srv.url);
});

after(async () => {
  await mcp?.client.close();
  if (srv) assert.equal(await srv.stop(), 0);
  await rt?.stop();
});

const post = (body, headers = {}) => fetch(srv.url, {
  method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
  headers: { 'Content-Type': 'application/json',
             Accept: 'application/json, text/event-stream', ...headers } });

test('initialize gives an Mcp-Session-Id; tools are listed', async () => {
  assert.match(mcp.transport.sessionId, /^[0-9a-f-]{36}$/);
  assert.equal(mcp.transport.protocolVersion, '2025-11-25');
  assert.equal(mcp.client.getServerVersion().name, 'agentcube');
  const { tools } = await mcp.client.listTools();
  for (const n of ['run_code', 'execute_command', 'write_file', 'list_files',
                   'stop_session', 'read_file', 'create_session'])
    assert.ok(tools.some((t) => t.name === n), n);
  await mcp.client.ping();
});

test('run_code and execute_command over HTTP', async () => {
  const r = await mcp.client.callTool({ name: 'run_code', arguments: {
    language: 'python', code: 'print(3+1)' } });
  assert.equal(payload(r).output, '4\n');
  const e = await mcp.client.callTool({ name: 'execute_command', arguments: {
    command: 'false' } });
  assert.equal(e.isError, true);
  assert.equal(e.structuredContent.exit_code, 1);
});

test('a stateful sequence: run_code does not keep variables, files stay',
     async () => {
  const r1 = payload(await mcp.client.callTool({ name: 'run_code',
    arguments: { language: 'python', code: "x = 10\nopen('v','w').write('10')",
                 session_reuse: true } }));
  const sid = r1.session_id;
  const r2 = await mcp.client.callTool({ name: 'run_code', arguments: {
    language: 'python', code: 'print(x)', session_id: sid,
    session_reuse: true } });
  assert.equal(r2.isError, true);
  assert.match(r2.content[0].text, /NameError/);
  const r3 = payload(await mcp.client.callTool({ name: 'run_code',
    arguments: { language: 'python', code: "print(open('v').read())",
                 session_id: sid, session_reuse: true } }));
  assert.equal(r3.output, '10\n');
  const st = payload(await mcp.client.callTool({ name: 'stop_session',
    arguments: { session_id: sid } }));
  assert.equal(st.status, 'stopped');
});

test('progress notifications arrive on the SSE stream of the call',
     async () => {
  const seen = [];
  const r = await mcp.client.callTool(
    { name: 'execute_command', arguments: { command: 'sleep 2.5' } },
    types.CallToolResultSchema, { onprogress: (p) => seen.push(p) });
  assert.equal(r.isError, false);
  assert.ok(seen.length >= 1, `progress notifications: ${seen.length}`);
});

test('a cancelled call ends promptly; the server goes on', async () => {
  const ac = new AbortController();
  const t0 = Date.now();
  const call = mcp.client.callTool(
    { name: 'execute_command', arguments: { command: 'sleep 30' } },
    types.CallToolResultSchema, { signal: ac.signal });
  await sleep(1000);
  ac.abort('no longer needed');
  await assert.rejects(call);
  const r = await mcp.client.callTool({ name: 'execute_command',
                                        arguments: { command: 'true' } });
  assert.equal(r.isError, false);
  assert.ok(Date.now() - t0 < 20000);
  for (let i = 0; i < 100 && (await rt.sessions()).length; i++)
    await sleep(100);
  assert.equal((await rt.sessions()).length, 0);
});

test('malformed requests: parse error, no session, unknown session, GET, '
     + 'foreign Origin, bad protocol version', async () => {
  let r = await post('{not json');
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.code, -32700);
  r = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.code, -32600);
  r = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' },
                 { 'Mcp-Session-Id': 'no-such-session' });
  assert.equal(r.status, 404);
  r = await fetch(srv.url, { method: 'GET',
                             headers: { Accept: 'text/event-stream' } });
  assert.equal(r.status, 405);
  r = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {
    protocolVersion: '2025-11-25', capabilities: {},
    clientInfo: { name: 'x', version: '1' } } },
                 { Origin: 'http://evil.example' });
  assert.equal(r.status, 403);
  const sid = mcp.transport.sessionId;
  r = await post({ jsonrpc: '2.0', id: 1, method: 'ping' },
                 { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '1999-01-01' });
  assert.equal(r.status, 400);
  // inside a valid session, a bad message is a JSON-RPC error, not a crash
  r = await post('[]', { 'Mcp-Session-Id': sid });
  assert.equal((await r.json()).error.code, -32600);
  r = await post({ jsonrpc: '2.0', id: 9, method: 'nope' },
                 { 'Mcp-Session-Id': sid });
  assert.equal((await r.json()).error.code, -32601);
  r = await post({ jsonrpc: '2.0', method: 'notifications/initialized' },
                 { 'Mcp-Session-Id': sid });
  assert.equal(r.status, 202);
  // the positive control: the same session with a good request works
  r = await post({ jsonrpc: '2.0', id: 10, method: 'ping' },
                 { 'Mcp-Session-Id': sid });
  assert.equal(r.status, 200);
  assert.deepEqual((await r.json()).result, {});
});

test('ending the MCP session (DELETE) deletes its sandbox sessions',
     async () => {
  const m = await httpClient(srv.url);
  await m.client.callTool({ name: 'create_session', arguments: {} });
  await m.client.callTool({ name: 'execute_command', arguments: {
    command: 'true', session_reuse: true } });
  assert.equal((await rt.sessions()).length, 2);
  await m.transport.terminateSession();
  await m.client.close();
  assert.equal((await rt.sessions()).length, 0);
});

test('an MCP session idle past --idle-timeout ends the same way',
     async () => {
  const s2 = await startHttp(rt, ['--idle-timeout', '2']);
  try {
    const m = await httpClient(s2.url);
    await m.client.callTool({ name: 'create_session', arguments: {} });
    assert.equal((await rt.sessions()).length, 1);
    await m.client.close();             // gone without DELETE
    for (let i = 0; i < 100 && (await rt.sessions()).length; i++)
      await sleep(100);
    assert.equal((await rt.sessions()).length, 0);
  } finally {
    await s2.stop();
  }
});

test('stopping the server (SIGTERM) deletes what its clients left',
     async () => {
  const s3 = await startHttp(rt);
  const m = await httpClient(s3.url);
  await m.client.callTool({ name: 'create_session', arguments: {} });
  assert.equal((await rt.sessions()).length, 1);
  assert.equal(await s3.stop(), 0);
  assert.equal((await rt.sessions()).length, 0);
});
