// crash.test.mjs -- an MCP server killed with SIGKILL cleans nothing up;
// its sessions must still go, when the runtime reaps them as idle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRuntime, stdioClient, payload, sleep } from './helpers.mjs';

let rt;
before(async () => {
  rt = await startRuntime('templates:\n  - name: my-interpreter\n'
                          + '    sessionTimeout: 3s\n');
});
after(async () => { await rt?.stop(); });

test('no session outlives a killed MCP server longer than its idle timeout',
     async () => {
  const m = await stdioClient(rt);
  const s = payload(await m.client.callTool({ name: 'create_session',
                                              arguments: {} }));
  const listed = await rt.sessions();
  assert.deepEqual(listed.map((x) => x.sessionId), [s.session_id]);
  process.kill(m.transport.pid, 'SIGKILL');
  await sleep(1000);
  // positive control: the crash itself deleted nothing
  assert.equal((await rt.sessions()).length, 1);
  let left = 1;
  const t0 = Date.now();
  while (left && Date.now() - t0 < 30000) {
    await sleep(250);
    left = (await rt.sessions()).length;
  }
  assert.equal(left, 0, 'reaped once idle');
  await m.client.close().catch(() => {});
});
