// protocol.test.mjs -- malformed and out-of-order messages over stdio, raw:
// each gets the JSON-RPC error it deserves and the server stays up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRuntime, rawStdio } from './helpers.mjs';

let rt, s;
const init = (id, version) => JSON.stringify({
  jsonrpc: '2.0', id, method: 'initialize', params: {
    protocolVersion: version, capabilities: {},
    clientInfo: { name: 'raw', version: '1' } } });

before(async () => { rt = await startRuntime(); s = rawStdio(rt); });
after(async () => { await s?.close(); await rt?.stop(); });

test('a request before initialize is refused; ping is allowed', async () => {
  s.send('{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
  const r = await s.next();
  assert.equal(r.id, 1);
  assert.equal(r.error.code, -32600);
  s.send('{"jsonrpc":"2.0","id":2,"method":"ping"}');
  assert.deepEqual((await s.next()).result, {});
});

test('initialize with an unknown version gets our latest', async () => {
  s.send(init(3, '1999-01-01'));
  const r = await s.next();
  assert.equal(r.result.protocolVersion, '2025-11-25');
  assert.equal(r.result.serverInfo.name, 'agentcube');
  s.send(init(4, '2025-06-18'));        // a second initialize
  assert.equal((await s.next()).error.code, -32600);
  s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
});

test('version negotiation: a version we speak is echoed', async () => {
  for (const v of ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']) {
    const t = rawStdio(rt);
    t.send(init(1, v));
    assert.equal((await t.next()).result.protocolVersion, v);
    await t.close();
  }
});

test('malformed messages get the right error codes', async () => {
  const cases = [
    ['{"jsonrpc":"2.0","id":5,"method":', null, -32700],   // not JSON
    ['[{"jsonrpc":"2.0","id":6,"method":"ping"}]', null, -32600], // batch
    ['"just a string"', null, -32600],
    ['{"jsonrpc":"1.0","id":7,"method":"ping"}', 7, -32600],
    ['{"jsonrpc":"2.0","id":8}', 8, -32600],                // no method
    ['{"jsonrpc":"2.0","id":9,"method":42}', 9, -32600],
    ['{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}', null, -32600],
    ['{"jsonrpc":"2.0","id":10,"method":"ping","params":[1]}', 10, -32602],
    ['{"jsonrpc":"2.0","id":11,"method":"no/such"}', 11, -32601],
    ['{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{}}', 12,
     -32602],
    ['{"jsonrpc":"2.0","id":13,"method":"tools/call","params":'
     + '{"name":"nope"}}', 13, -32602],
    ['{"jsonrpc":"2.0","id":14,"method":"tools/call","params":'
     + '{"name":"run_code","arguments":[1]}}', 14, -32602],
    ['{"jsonrpc":"2.0","id":15,"method":"initialize","params":{}}', 15,
     -32602],                                  // no protocolVersion
  ];
  for (const [text, id, code] of cases) {
    s.send(text);
    const r = await s.next();
    assert.equal(r.jsonrpc, '2.0', text);
    assert.equal(r.id, id, text);
    assert.equal(r.error.code, code, text);
    assert.equal(typeof r.error.message, 'string');
  }
});

test('notifications get no answer, even unknown ones or stray responses',
     async () => {
  s.send('{"jsonrpc":"2.0","method":"notifications/whatever"}');
  s.send('{"jsonrpc":"2.0","method":"notifications/cancelled","params":'
         + '{"requestId":999}}');
  s.send('{"jsonrpc":"2.0","id":77,"result":{}}');
  s.send('{"jsonrpc":"2.0","id":16,"method":"ping"}');
  const r = await s.next();
  assert.equal(r.id, 16);               // the ping's answer comes first
});

test('bad tool arguments are a tool error the model can read', async () => {
  s.send(JSON.stringify({ jsonrpc: '2.0', id: 17, method: 'tools/call',
    params: { name: 'run_code', arguments: { language: 'python',
                                             timeout: 5 } } }));
  const r = await s.next();
  assert.equal(r.result.isError, true);
  assert.match(r.result.content[0].text, /unknown argument 'timeout'/);
  s.send(JSON.stringify({ jsonrpc: '2.0', id: 18, method: 'tools/call',
    params: { name: 'execute_command', arguments: { command: 7 } } }));
  const r2 = await s.next();
  assert.equal(r2.result.isError, true);
  assert.match(r2.result.structuredContent.error, /'command' must be/);
  // the positive control: the same tool with good arguments works
  s.send(JSON.stringify({ jsonrpc: '2.0', id: 19, method: 'tools/call',
    params: { name: 'execute_command', arguments: { command: 'echo ok' } } }));
  const r3 = await s.next();
  assert.equal(r3.result.isError, false);
  assert.equal(r3.result.structuredContent.output, 'ok\n');
});

test('without --files-dir the host file tools are not offered', async () => {
  s.send('{"jsonrpc":"2.0","id":20,"method":"tools/list"}');
  const names = (await s.next()).result.tools.map((t) => t.name);
  assert.ok(!names.includes('upload_file'));
  assert.ok(!names.includes('download_file'));
  assert.ok(names.includes('run_code'));
  s.send(JSON.stringify({ jsonrpc: '2.0', id: 21, method: 'tools/call',
    params: { name: 'upload_file', arguments: { local_path: '/etc/passwd',
                                                remote_path: 'x' } } }));
  const r = await s.next();
  assert.equal(r.result.isError, true);
  assert.match(r.result.structuredContent.error, /--files-dir/);
});

test('after all that the server is still up and exits cleanly at EOF',
     async () => {
  s.send('{"jsonrpc":"2.0","id":22,"method":"ping"}');
  assert.equal((await s.next()).id, 22);
  assert.equal(await s.close(), 0);
  s = null;
  assert.equal((await rt.sessions()).length, 0);
});

test('SIGTERM while a command runs: the call is cancelled and the '
     + 'sessions it made are deleted', async () => {
  const t = rawStdio(rt);
  t.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {},
              clientInfo: { name: 'raw', version: '1' } } }));
  await t.next();
  t.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call',
    params: { name: 'create_session', arguments: {} } }));
  await t.next();
  t.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call',
    params: { name: 'execute_command', arguments: { command: 'sleep 60',
                                                    session_reuse: true } } }));
  for (let i = 0; i < 100 && (await rt.sessions()).length < 2; i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.equal((await rt.sessions()).length, 2);
  const t0 = Date.now();
  t.child.kill('SIGTERM');
  assert.equal(await t.close(), 0);
  assert.ok(Date.now() - t0 < 20000);
  assert.equal((await rt.sessions()).length, 0);
});
