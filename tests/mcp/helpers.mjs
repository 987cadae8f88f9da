// helpers.mjs -- a real `agentcube serve` per test file, `agentcube mcp`
// over stdio or Streamable HTTP, and the official MCP TypeScript SDK
// client (installed by tests/mcp/run into $MCP_SDK_DIR).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const sdkDir = process.env.MCP_SDK_DIR;
if (!sdkDir) throw new Error('MCP_SDK_DIR is not set (run tests/mcp/run)');
const sdkRequire = createRequire(join(sdkDir, 'package.json'));
export const { Client } = sdkRequire('@modelcontextprotocol/sdk/client/index.js');
export const { StdioClientTransport } =
  sdkRequire('@modelcontextprotocol/sdk/client/stdio.js');
export const { StreamableHTTPClientTransport } =
  sdkRequire('@modelcontextprotocol/sdk/client/streamableHttp.js');
export const types = sdkRequire('@modelcontextprotocol/sdk/types.js');

export const BIN = process.env.AGENTCUBE_BIN || 'build/agentcube';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Reads the first stdout line of a child (the URL it prints when ready).
function firstLine(child, what) {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    let err = '';
    child.stderr?.on('data', (d) => { err += d; });
    rl.once('line', (line) => { rl.close(); resolve(line.trim()); });
    child.once('exit', (code) =>
      reject(new Error(`${what} exited (${code}) before it was ready: ${err}`)));
  });
}

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); }, ms);
    child.once('exit', (code) => { clearTimeout(t); resolve(code); });
  });
}

// A local runtime of our own: temporary state, a free port, no auth;
// config: YAML text for --config.
export async function startRuntime(config) {
  const state = mkdtempSync(join(tmpdir(), 'agentcube-mcp-state.'));
  const args = ['serve', '--listen', '127.0.0.1:0', '--state-dir', state,
                '--no-auth', '--reap-interval-ms', '200'];
  if (config) {
    writeFileSync(`${state}.yaml`, config);
    args.push('--config', `${state}.yaml`);
  }
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await firstLine(child, 'agentcube serve');
  return {
    url,
    env: { ...process.env, WORKLOAD_MANAGER_URL: url, ROUTER_URL: url },
    async sessions() {
      const r = await fetch(`${url}/v1/code-interpreter/sessions`);
      return (await r.json()).sessions;
    },
    async deleteSession(id) {
      await fetch(`${url}/v1/code-interpreter/sessions/${id}`,
                  { method: 'DELETE' });
    },
    async stop() {
      child.kill('SIGTERM');
      await waitExit(child, 20000);
      rmSync(state, { recursive: true, force: true });
      rmSync(`${state}.yaml`, { force: true });
    },
  };
}

// `agentcube mcp` over stdio through the SDK's own transport.
export async function stdioClient(rt, args = []) {
  const transport = new StdioClientTransport({
    command: BIN, args: ['mcp', ...args], env: rt.env, stderr: 'pipe',
  });
  const client = new Client({ name: 'agentcube-tests', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

// `agentcube mcp --transport http` on a free port: its URL and process.
export async function startHttp(rt, args = []) {
  const child = spawn(BIN, ['mcp', '--transport', 'http', '--listen',
                            '127.0.0.1:0', ...args],
                      { env: rt.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await firstLine(child, 'agentcube mcp --transport http');
  return {
    url, child,
    async stop() { child.kill('SIGTERM'); return waitExit(child, 30000); },
  };
}

export async function httpClient(url) {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'agentcube-tests', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

// The JSON text AgentCube's MCP server returns, parsed.
export function payload(result) {
  const text = result.content.find((c) => c.type === 'text');
  return JSON.parse(text.text);
}

// A raw stdio server: write lines, read replies (for malformed input).
export function rawStdio(rt, args = []) {
  const child = spawn(BIN, ['mcp', ...args],
                      { env: rt.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const rl = createInterface({ input: child.stdout });
  const queue = [];
  const waiters = [];
  rl.on('line', (line) => {
    const msg = JSON.parse(line);  // every line must be one JSON message
    const w = waiters.shift();
    if (w) w(msg); else queue.push(msg);
  });
  return {
    child,
    send(text) { child.stdin.write(text + '\n'); },
    next(ms = 20000) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no reply')), ms);
        waiters.push((m) => { clearTimeout(t); resolve(m); });
      });
    },
    async close() { child.stdin.end(); return waitExit(child, 30000); },
  };
}

export { waitExit };

// When the output relayed as progress first contained text: output
// chunks may be split anywhere, heartbeats ("... running for N s") are not
// output. Returns the notification that completed it, or undefined.
export function outputSeen(progress, text) {
  let acc = '';
  for (const p of progress) {
    if (/ running for \d+ s$/.test(p.message)) continue;
    acc += p.message;
    if (acc.includes(text)) return p;
  }
  return undefined;
}
