// stdio.test.mjs -- `agentcube mcp` over stdio, driven by the official MCP
// TypeScript SDK client against a real local runtime.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, symlinkSync, existsSync,
         rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRuntime, stdioClient, payload, sleep, types, waitExit,
         outputSeen } from './helpers.mjs';

const UPSTREAM_TOOLS = ['run_code', 'execute_command', 'write_file',
                        'list_files', 'stop_session'];
let rt, mcp, files;

before(async () => {
  rt = await startRuntime();
  files = mkdtempSync(join(tmpdir(), 'agentcube-mcp-files.'));
  mcp = await stdioClient(rt, ['--files-dir', files]);
});

after(async () => {
  await mcp?.client.close();
  await rt?.stop();
  rmSync(files, { recursive: true, force: true });
});

test('initialize: server info, tools capability, instructions', () => {
  const info = mcp.client.getServerVersion();
  assert.equal(info.name, 'agentcube');
  assert.ok(mcp.client.getServerCapabilities().tools);
  assert.match(mcp.client.getInstructions(), /session_id/);
});

test('tools/list: upstream tools and ours, each with a schema', async () => {
  const { tools } = await mcp.client.listTools();
  const names = tools.map((t) => t.name);
  for (const n of [...UPSTREAM_TOOLS, 'upload_file', 'download_file',
                   'read_file', 'create_session', 'list_sessions'])
    assert.ok(names.includes(n), `missing tool ${n}`);
  for (const t of tools) {
    assert.ok(t.description.length > 20, `${t.name} has a description`);
    assert.equal(t.inputSchema.type, 'object');
    assert.equal(typeof t.inputSchema.properties, 'object');
  }
  const run = tools.find((t) => t.name === 'run_code');
  assert.deepEqual(run.inputSchema.required, ['language', 'code']);
  for (const a of ['session_id', 'session_reuse', 'timeout_seconds'])
    assert.ok(run.inputSchema.properties[a], `run_code takes ${a}`);
});

test('run_code: JSON text with session_id and output, like upstream',
     async () => {
  const r = await mcp.client.callTool({ name: 'run_code', arguments: {
    language: 'python', code: 'print(3+1)', session_reuse: false } });
  assert.equal(r.isError, false);
  const p = payload(r);
  assert.match(p.output, /^4\n$/);
  assert.match(p.session_id, /^[0-9a-f-]{36}$/);
  assert.equal(r.structuredContent.exit_code, 0);
  assert.equal(typeof r.structuredContent.duration, 'number');
  // session_reuse false: the sandbox is gone after the call
  assert.equal((await rt.sessions()).length, 0);
});

test('execute_command: output, and a failed command is isError with its '
     + 'exit code', async () => {
  const ok = await mcp.client.callTool({ name: 'execute_command',
    arguments: { command: 'echo mcp-cmd-ok' } });
  assert.equal(ok.isError, false);
  assert.match(payload(ok).output, /mcp-cmd-ok/);
  const bad = await mcp.client.callTool({ name: 'execute_command',
    arguments: { command: 'ls /no/such/dir' } });
  assert.equal(bad.isError, true);
  assert.notEqual(bad.structuredContent.exit_code, 0);
  assert.match(bad.structuredContent.stderr, /No such file/);
  const sh = await mcp.client.callTool({ name: 'execute_command',
    arguments: { command: 'echo $((6*7)) | tr 4 x', shell: true } });
  assert.equal(payload(sh).output, 'x2\n');
});

test('a stateful sequence across calls (create, write, run, list, read, '
     + 'env, working_dir, stop)', async () => {
  const c = payload(await mcp.client.callTool({ name: 'create_session',
                                                arguments: {} }));
  const sid = c.session_id;
  const w = await mcp.client.callTool({ name: 'write_file', arguments: {
    content: 'marker-42', remote_path: 'data/marker.txt', session_id: sid } });
  assert.equal(payload(w).status, 'ok');
  const r = await mcp.client.callTool({ name: 'run_code', arguments: {
    language: 'python', code: "print(open('data/marker.txt').read())",
    session_id: sid } });
  assert.equal(payload(r).output, 'marker-42\n');
  assert.equal(payload(r).session_id, sid);
  const l = payload(await mcp.client.callTool({ name: 'list_files',
    arguments: { path: 'data', session_id: sid } }));
  assert.deepEqual(l.entries.map((e) => e.name), ['marker.txt']);
  const rd = payload(await mcp.client.callTool({ name: 'read_file',
    arguments: { remote_path: 'data/marker.txt', session_id: sid } }));
  assert.equal(rd.content, 'marker-42');
  const e = payload(await mcp.client.callTool({ name: 'execute_command',
    arguments: { command: 'sh -c "pwd; echo $GREETING"', session_id: sid,
                 working_dir: '/workspace/data', env: { GREETING: 'hi' } } }));
  assert.equal(e.output, '/workspace/data\nhi\n');
  const ls = payload(await mcp.client.callTool({ name: 'list_sessions',
                                                 arguments: {} }));
  assert.ok(ls.sessions.some((s) => s.session_id === sid));
  const st = payload(await mcp.client.callTool({ name: 'stop_session',
    arguments: { session_id: sid } }));
  assert.equal(st.status, 'stopped');
  assert.ok(!(await rt.sessions()).some((s) => s.sessionId === sid));
});

test('session_reuse, then an expired session_id is re-created once and '
     + 'the result says so', async () => {
  const first = payload(await mcp.client.callTool({ name: 'run_code',
    arguments: { language: 'bash', code: 'echo one > f.txt',
                 session_reuse: true } }));
  const sid = first.session_id;
  assert.ok((await rt.sessions()).some((s) => s.sessionId === sid));
  await rt.deleteSession(sid);          // the session expires behind us
  const again = payload(await mcp.client.callTool({ name: 'run_code',
    arguments: { language: 'bash', code: 'test -e f.txt || echo gone',
                 session_id: sid, session_reuse: true } }));
  assert.equal(again.session_recovered, true);
  assert.equal(again.previous_session_id, sid);
  assert.notEqual(again.session_id, sid);
  assert.equal(again.output, 'gone\n');  // a new sandbox: no f.txt
  await mcp.client.callTool({ name: 'stop_session',
    arguments: { session_id: again.session_id } });
});

test('a PNG written by code comes back as image content', async () => {
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk'
            + '+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  const r = await mcp.client.callTool({ name: 'run_code', arguments: {
    language: 'python', session_reuse: false,
    code: `import base64\nopen('plot.png','wb').write(base64.b64decode('${png}'))`,
    images: ['plot.png', 'missing.png'] } });
  assert.equal(r.isError, false);
  const img = r.content.find((c) => c.type === 'image');
  assert.equal(img.mimeType, 'image/png');
  assert.equal(img.data, png);
  assert.equal(r.structuredContent.images_skipped[0].path, 'missing.png');
});

test('upload_file and download_file inside --files-dir', async () => {
  writeFileSync(join(files, 'in.csv'), 'a,b\n1,2\n');
  const u = payload(await mcp.client.callTool({ name: 'upload_file',
    arguments: { local_path: 'in.csv', remote_path: 'in.csv',
                 session_reuse: true } }));
  assert.equal(u.status, 'ok');
  const d = await mcp.client.callTool({ name: 'download_file', arguments: {
    remote_path: 'in.csv', local_path: join(files, 'out/copy.csv'),
    session_id: u.session_id } });
  assert.equal(d.isError, false, JSON.stringify(d));
  assert.equal(readFileSync(join(files, 'out/copy.csv'), 'utf8'),
               'a,b\n1,2\n');
  await mcp.client.callTool({ name: 'stop_session',
    arguments: { session_id: u.session_id } });
});

test('host files outside --files-dir are refused (.., absolute, symlink)',
     async () => {
  const outside = mkdtempSync(join(tmpdir(), 'agentcube-mcp-outside.'));
  writeFileSync(join(outside, 'secret'), 'secret');
  symlinkSync(join(outside, 'secret'), join(files, 'link'));
  symlinkSync(outside, join(files, 'dirlink'));
  try {
    for (const local of ['../' + outside.split('/').pop() + '/secret',
                         join(outside, 'secret'), 'link', '/etc/passwd']) {
      const r = await mcp.client.callTool({ name: 'upload_file', arguments: {
        local_path: local, remote_path: 'x' } });
      assert.equal(r.isError, true, `upload of ${local} must be refused`);
      assert.equal(r.structuredContent.code, 'EACCESS', local);
    }
    for (const local of ['dirlink/stolen', join(outside, 'stolen'),
                         '../stolen']) {
      const r = await mcp.client.callTool({ name: 'download_file',
        arguments: { remote_path: 'x', local_path: local } });
      assert.equal(r.isError, true, `download to ${local} must be refused`);
    }
    assert.ok(!existsSync(join(outside, 'stolen')));
  } finally {
    rmSync(outside, { recursive: true, force: true });
    rmSync(join(files, 'link'));
    rmSync(join(files, 'dirlink'));
  }
});

test('a long command streams progress notifications before its result',
     async () => {
  const seen = [];
  const r = await mcp.client.callTool(
    { name: 'execute_command', arguments: { command: 'sleep 3.5' } },
    types.CallToolResultSchema,
    { onprogress: (p) => seen.push(p), timeout: 60000 });
  assert.equal(r.isError, false);
  assert.ok(seen.length >= 2, `progress notifications: ${seen.length}`);
  for (let i = 1; i < seen.length; i++)
    assert.ok(seen[i].progress > seen[i - 1].progress);
  assert.match(seen[0].message, /running/);
});

test('output arrives as progress while the command runs', async () => {
  const seen = [];
  const r = await mcp.client.callTool(
    { name: 'execute_command', arguments: { shell: true, command:
      'echo first; sleep 2; echo second >&2; sleep 1; echo third' } },
    types.CallToolResultSchema,
    { onprogress: (p) => seen.push({ ...p, at: Date.now() }),
      timeout: 60000 });
  const done = Date.now();
  assert.equal(payload(r).output, 'first\nthird\n');
  const first = outputSeen(seen, 'first\n');
  const second = seen.find((p) => p.message.startsWith('[stderr] sec'));
  assert.ok(first, JSON.stringify(seen));
  assert.ok(second, JSON.stringify(seen));
  // streamed: the first line came long before the command ended
  assert.ok(done - first.at >= 2000, `first line ${done - first.at} ms early`);
  assert.ok(first.progress < second.progress);
});

test('a cancelled call ends promptly and the command is gone', async () => {
  const ac = new AbortController();
  const started = Date.now();
  const call = mcp.client.callTool(
    { name: 'execute_command', arguments: {
      command: 'sleep 4; echo late > /tmp/late', shell: true } },
    types.CallToolResultSchema, { signal: ac.signal, timeout: 60000 });
  await sleep(1000);
  ac.abort('changed my mind');
  await assert.rejects(call);
  // the server is still there and answers at once
  const r = await mcp.client.callTool({ name: 'execute_command',
                                        arguments: { command: 'true' } });
  assert.equal(r.isError, false);
  assert.ok(Date.now() - started < 15000);
  // the cancelled call's own sandbox was deleted with its command in it
  await sleep(4500);
  assert.equal((await rt.sessions()).length, 0);
});

test('cancelling a call on a kept session kills its command', async () => {
  const sid = payload(await mcp.client.callTool({ name: 'create_session',
                                                  arguments: {} })).session_id;
  const run = (command, signal) => mcp.client.callTool(
    { name: 'execute_command', arguments: { command, shell: true,
                                            session_id: sid } },
    types.CallToolResultSchema, { signal, timeout: 60000 });
  // positive control: left alone, the command writes its file
  assert.equal((await run('sleep 0.2; echo done > ctl')).isError, false);
  const ac = new AbortController();
  const call = run('sleep 3; echo late > late', ac.signal);
  await sleep(1000);
  ac.abort('stop it');
  await assert.rejects(call);
  await sleep(3500);
  const names = payload(await mcp.client.callTool({ name: 'list_files',
    arguments: { session_id: sid } })).entries.map((e) => e.name);
  assert.ok(names.includes('ctl'), names.join(' '));
  assert.ok(!names.includes('late'), 'the cancelled command was killed');
  await mcp.client.callTool({ name: 'stop_session',
                              arguments: { session_id: sid } });
});

test('disconnect: sessions this server created are deleted, --keep keeps '
     + 'them', async () => {
  for (const keep of [false, true]) {
    const m = await stdioClient(rt, keep ? ['--keep'] : []);
    const a = payload(await m.client.callTool({ name: 'create_session',
                                                arguments: {} }));
    const b = payload(await m.client.callTool({ name: 'execute_command',
      arguments: { command: 'true', session_reuse: true } }));
    assert.equal((await rt.sessions()).length, 2);
    const pid = m.transport.pid;
    await m.client.close();             // stdin EOF
    await waitForExit(pid);
    const left = (await rt.sessions()).map((s) => s.sessionId).sort();
    if (keep) {
      assert.deepEqual(left, [a.session_id, b.session_id].sort());
      for (const id of left) await rt.deleteSession(id);
    } else {
      assert.deepEqual(left, []);
    }
  }
});

async function waitForExit(pid) {
  for (let i = 0; i < 300; i++) {
    try { process.kill(pid, 0); } catch { return; }
    await sleep(100);
  }
  throw new Error(`agentcube mcp (pid ${pid}) did not exit`);
}

export { waitExit };
