// live.test.mjs -- the tools on the local runtime's extensions: background
// processes, code contexts, file operations.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRuntime, stdioClient, payload, sleep, types, outputSeen }
  from './helpers.mjs';

let rt, mcp, sid;
const call = async (name, args) =>
  mcp.client.callTool({ name, arguments: args });

before(async () => {
  rt = await startRuntime();
  mcp = await stdioClient(rt);
  sid = payload(await call('create_session', {})).session_id;
});
after(async () => { await mcp?.client.close(); await rt?.stop(); });

// Until the runtime serves an extension, its tools must say so plainly;
// once it does, the whole test runs.
function unsupported(t, r, what) {
  if (r.structuredContent.code !== 'EUNSUPPORTED') return false;
  assert.equal(r.isError, true);
  assert.match(r.structuredContent.error, /not supported by this server/);
  t.skip(`this runtime does not serve ${what} yet`);
  return true;
}

test('a background process: start, read output, stop', async (t) => {
  const first = await call('start_process', { session_id: sid,
    shell: true, command: 'echo tick 1; sleep 1.5; echo tick 2; sleep 60' });
  if (unsupported(t, first, 'background processes')) return;
  const st = payload(first);
  assert.equal(st.session_id, sid);
  const id = st.process.id;
  assert.equal(st.process.state, 'running');
  await sleep(700);
  const out = payload(await call('read_process_output', { session_id: sid,
                                                          process_id: id }));
  assert.equal(out.stdout, 'tick 1\n');
  assert.equal(out.next_offset, 7);
  assert.equal(out.exit, null);
  await sleep(1500);
  const again = payload(await call('read_process_output', { session_id: sid,
    process_id: id, offset: out.next_offset }));
  assert.equal(again.stdout, 'tick 2\n');
  const list = payload(await call('list_processes', { session_id: sid }));
  assert.ok(list.processes.some((p) => p.id === id && p.state === 'running'));
  const stop = payload(await call('stop_process', { session_id: sid,
    process_id: id, signal: 'KILL' }));
  assert.equal(stop.process.id, id);
  for (let i = 0; i < 50; i++) {
    const l = payload(await call('list_processes', { session_id: sid }));
    if (l.processes.find((p) => p.id === id).state !== 'running') return;
    await sleep(100);
  }
  assert.fail('the process did not stop');
});

test('an unknown process is a tool error', async (t) => {
  const r = await call('read_process_output', { session_id: sid,
                                                process_id: 999 });
  if (unsupported(t, r, 'background processes')) return;
  assert.equal(r.isError, true);
  assert.equal(r.structuredContent.code, 'ENOTFOUND');
});

test('a code context keeps state between run_code calls', async (t) => {
  const made = await call('create_context', { session_id: sid,
                                              language: 'python' });
  if (unsupported(t, made, 'code contexts')) return;
  const c = payload(made);
  assert.ok(c.context_id);
  const r1 = payload(await call('run_code', { language: 'python',
    code: 'x = 41\nprint("set")', session_id: sid,
    context_id: c.context_id }));
  assert.equal(r1.output, 'set\n');
  const r2 = payload(await call('run_code', { language: 'python',
    code: 'x + 1', session_id: sid, context_id: c.context_id }));
  assert.equal(r2.value, '42');
  const r3 = await call('run_code', { language: 'python', code: '1/0',
    session_id: sid, context_id: c.context_id });
  assert.equal(r3.isError, true);
  assert.equal(r3.structuredContent.error.name, 'ZeroDivisionError');
  // positive control for "state": without the context, x is unknown
  const r4 = await call('run_code', { language: 'python', code: 'print(x)',
                                      session_id: sid });
  assert.equal(r4.isError, true);
});

test('a context run streams its output as progress', async (t) => {
  const made = await call('create_context', { session_id: sid });
  if (unsupported(t, made, 'code contexts')) return;
  const c = payload(made);
  assert.ok(c.context_id);
  const seen = [];
  const r = await mcp.client.callTool({ name: 'run_code', arguments: {
    language: 'python', session_id: sid, context_id: c.context_id,
    code: 'import time\nprint("early", flush=True)\ntime.sleep(2)\n'
          + 'print("late")' } },
    types.CallToolResultSchema,
    { onprogress: (p) => seen.push({ ...p, at: Date.now() }) });
  const done = Date.now();
  assert.equal(payload(r).output, 'early\nlate\n');
  const early = outputSeen(seen, 'early\n');
  assert.ok(early, JSON.stringify(seen));
  assert.ok(done - early.at >= 1500);
});

test('file operations: mkdir, stat, rename, remove', async () => {
  let r = payload(await call('make_directory', { session_id: sid,
                                                 path: 'a/b/c' }));
  assert.match(r.entry.mode, /^d/);
  await call('write_file', { session_id: sid, content: 'x',
                             remote_path: 'a/b/c/f.txt' });
  r = payload(await call('stat_path', { session_id: sid,
                                        path: 'a/b/c/f.txt' }));
  assert.equal(r.entry.type, 'file');
  assert.equal(r.entry.size, 1);
  r = payload(await call('rename_path', { session_id: sid,
    from: 'a/b/c/f.txt', to: 'a/g.txt' }));
  assert.match(r.entry.path, /g\.txt$/);
  let e = await call('stat_path', { session_id: sid, path: 'a/b/c/f.txt' });
  assert.equal(e.isError, true);
  e = await call('remove_path', { session_id: sid, path: 'a' });
  assert.equal(e.isError, true);           // not empty, not recursive
  r = payload(await call('remove_path', { session_id: sid, path: 'a',
                                          recursive: true }));
  assert.ok(r.removed >= 4);
  e = await call('stat_path', { session_id: sid, path: 'a' });
  assert.equal(e.structuredContent.code, 'ENOTFOUND');
});

test('server-side failures are tool errors that keep the session id',
     async (t) => {
  // a missing file is not an expired session: no new sandbox
  let r = await call('read_file', { session_id: sid,
                                    remote_path: 'no/such/file' });
  assert.equal(r.isError, true);
  assert.equal(r.structuredContent.session_id, sid);
  assert.equal(r.structuredContent.session_recovered, undefined);
  assert.match(r.structuredContent.code, /^E/);
  r = await call('list_files', { session_id: sid, path: 'no/such/dir' });
  assert.equal(r.isError, true);
  assert.equal(r.structuredContent.session_id, sid);
  r = await call('run_code', { language: 'python', code: '1',
                               session_id: sid, context_id: 'nope' });
  if (unsupported(t, r, 'code contexts')) return;
  assert.equal(r.isError, true);
  assert.equal(r.structuredContent.code, 'ENOTFOUND');
  assert.equal(r.structuredContent.session_id, sid);
  // the positive control: the session still works
  assert.equal(payload(await call('execute_command', { session_id: sid,
    command: 'echo fine' })).output, 'fine\n');
});

test('start_process without a shell: words, env, working_dir, timeout',
     async (t) => {
  const r = await call('start_process', { session_id: sid,
    command: `sh -c 'echo "$GREETING"; pwd'`, env: { GREETING: 'hi there' },
    working_dir: '/tmp', timeout_seconds: 30 });
  if (unsupported(t, r, 'background processes')) return;
  const id = payload(r).process.id;
  for (let i = 0; i < 100; i++) {
    const out = payload(await call('read_process_output', { session_id: sid,
                                                            process_id: id }));
    if (out.exit !== null) {
      assert.equal(out.stdout, 'hi there\n/tmp\n');
      return;
    }
    await sleep(100);
  }
  assert.fail('the process did not end');
});

test('a context run with a time limit; read_file types what it reads',
     async (t) => {
  const made = await call('create_context', { session_id: sid,
                                              language: 'python' });
  if (unsupported(t, made, 'code contexts')) return;
  const c = payload(made);
  const r = payload(await call('run_code', { language: 'python',
    code: 'print(6 * 7)', session_id: sid, context_id: c.context_id,
    timeout_seconds: 30 }));
  assert.equal(r.output, '42\n');
  // bytes that are not UTF-8 come back as base64, a PNG as an image
  const bin = Buffer.from([0xff, 0xfe, 0x00, 0x01]).toString('base64');
  await call('write_file', { session_id: sid, remote_path: 'raw.bin',
                             content: bin, encoding: 'base64' });
  let got = payload(await call('read_file', { session_id: sid,
                                              remote_path: 'raw.bin' }));
  assert.equal(got.encoding, 'base64');
  assert.equal(got.content, bin);
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'),
                             Buffer.from('rest')]);
  await call('write_file', { session_id: sid, remote_path: 'x.png',
                             content: png.toString('base64'),
                             encoding: 'base64' });
  const res = await call('read_file', { session_id: sid,
                                        remote_path: 'x.png' });
  got = payload(res);
  assert.equal(got.encoding, 'image/png');
  const img = res.content.find((b) => b.type === 'image');
  assert.equal(img.mimeType, 'image/png');
  assert.equal(img.data, png.toString('base64'));
});

test('a command past its limit says timed_out; a non-PNG image is skipped',
     async () => {
  const r = await call('execute_command', { session_id: sid,
    command: 'sleep 30', timeout_seconds: 1 });
  assert.equal(r.structuredContent.exit_code, 124);
  assert.equal(r.structuredContent.timed_out, true);
  const run = await call('run_code', { language: 'python', session_id: sid,
    code: 'open("notes.txt", "w").write("not an image")',
    images: ['notes.txt'] });
  const p = payload(run);
  assert.deepEqual(p.images_skipped, [{ path: 'notes.txt',
                                        reason: 'not a PNG file' }]);
  assert.ok(!run.content.some((b) => b.type === 'image'));
});

test('run_code streams its output as progress, like execute_command',
     async () => {
  const seen = [];
  const r = await mcp.client.callTool({ name: 'run_code', arguments: {
    // (it runs on for a while: output is relayed while a run lasts, and
    // a run that ends at once may answer before any relay)
    language: 'python', session_id: sid,
    code: 'import time\nprint("streamed", flush=True)\ntime.sleep(1)' } },
    types.CallToolResultSchema, { onprogress: (p) => seen.push(p) });
  assert.equal(payload(r).output, 'streamed\n');
  assert.ok(outputSeen(seen, 'streamed\n'), JSON.stringify(seen));
});

test('write_file into an expired session recovers once and says so',
     async () => {
  const made = payload(await call('create_session', {}));
  await rt.deleteSession(made.session_id);   // it expires behind us
  const r = payload(await call('write_file', { session_id: made.session_id,
    content: 'x', remote_path: 'after.txt' }));
  assert.equal(r.session_recovered, true);
  assert.equal(r.previous_session_id, made.session_id);
  assert.notEqual(r.session_id, made.session_id);
  assert.equal(r.status, 'ok');
});

test('a context run past its time limit says timed_out', async (t) => {
  const made = await call('create_context', { session_id: sid,
                                              language: 'python' });
  if (unsupported(t, made, 'code contexts')) return;
  const r = await call('run_code', { language: 'python', session_id: sid,
    context_id: payload(made).context_id, timeout_seconds: 1,
    code: 'import time\ntime.sleep(30)' });
  assert.equal(r.structuredContent.timed_out, true);
});
