#!/usr/bin/env node
// End-to-end MCP client for the ElixirScope MCP server.
//
// Driven by an ExUnit test that starts the Elixir server and then runs:
//
//   node test/mcp_client/e2e.mjs <url> <plan.json> [--token T] [--timeout MS]
//
// It uses the official TypeScript SDK (Client + StreamableHTTPClientTransport),
// so it checks the server against what a real MCP client accepts:
//   1. connect (initialize -> notifications/initialized, optional GET stream)
//   2. tools/list, following nextCursor pages
//   3. tools/call for every step of plan.json: [{"tool": name, "arguments": {...}}]
//      (the SDK validates structuredContent against each tool's outputSchema)
//   4. DELETE the session (transport.terminateSession()) and close
//
// stdout: exactly one JSON object (see `out` below). Exit 0 unless the
// connection/initialize fails (exit 1, error on stderr) or usage is wrong (2).
// Tool-call failures are reported in `results`, never via the exit code.
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const argv = process.argv.slice(2);
const flag = (name) => {
  const i = argv.indexOf(name);
  if (i === -1) return undefined;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
};
const token = flag('--token');
const timeout = Number(flag('--timeout') ?? 30000);
const [url, planPath] = argv;
if (!url || !planPath) {
  process.stderr.write('usage: node e2e.mjs <url> <plan.json> [--token T] [--timeout MS]\n');
  process.exit(2);
}
let plan;
try {
  plan = JSON.parse(readFileSync(planPath, 'utf8'));
  if (!Array.isArray(plan)) throw new Error('plan must be a JSON array of {"tool", "arguments"}');
} catch (e) {
  process.stderr.write(`bad plan file ${planPath}: ${e.message}\n`);
  process.exit(2);
}

// Every HTTP exchange as {method, status, rpc} so tests can assert e.g.
// GET -> 405, notifications -> 202, DELETE -> 200.
const http = [];
const recordingFetch = async (input, init = {}) => {
  const res = await fetch(input, init);
  let rpc;
  try { rpc = [].concat(JSON.parse(init.body)).map((m) => m.method ?? 'response').join(','); } catch { /* GET/DELETE */ }
  http.push({ method: init.method ?? 'GET', status: res.status, ...(rpc && { rpc }) });
  return res;
};

const headers = token ? { Authorization: `Bearer ${token}` } : {};
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers }, fetch: recordingFetch });
const client = new Client({ name: 'elixir-scope-e2e', version: '1.0.0' }, { capabilities: {} });
const transportErrors = [];
client.onerror = (e) => transportErrors.push(String(e?.message ?? e));

const out = {
  serverInfo: null, protocolVersion: null, sessionId: null, capabilities: null, instructions: null,
  tools: [], toolSchemas: {}, listToolsError: null, results: [],
  terminated: false, terminateError: null, http, transportErrors,
};

try {
  await client.connect(transport, { timeout });
} catch (e) {
  process.stderr.write(`connect failed: ${e?.stack ?? e}\n`);
  process.exit(1);
}
out.serverInfo = client.getServerVersion() ?? null;
out.protocolVersion = transport.protocolVersion ?? null;
out.sessionId = transport.sessionId ?? null;
out.capabilities = client.getServerCapabilities() ?? null;
out.instructions = client.getInstructions() ?? null;

try {
  const all = [];
  const seen = new Set();
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined, { timeout });
    all.push(...page.tools);
    cursor = page.nextCursor;
    if (cursor !== undefined && seen.has(cursor)) throw new Error(`tools/list repeated cursor ${cursor}`);
    seen.add(cursor);
  } while (cursor !== undefined);
  // listTools() only caches the outputSchema validators of the *last* page;
  // re-cache all of them so callTool validates every tool like a 1-page list.
  client.cacheToolMetadata(all);
  out.tools = all.map((t) => t.name);
  for (const t of all) out.toolSchemas[t.name] = { inputSchema: t.inputSchema, outputSchema: t.outputSchema ?? null };
} catch (e) {
  out.listToolsError = String(e?.message ?? e);
}

for (const step of plan) {
  const r = { tool: step.tool, ok: false, isError: null, text: null, content: null, structuredContent: null, error: null, errorCode: null };
  try {
    const res = await client.callTool({ name: step.tool, arguments: step.arguments ?? {} }, undefined, { timeout });
    r.ok = true;
    r.isError = res.isError === true;
    r.content = res.content;
    r.text = res.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
    r.structuredContent = res.structuredContent ?? null;
  } catch (e) {
    r.error = String(e?.message ?? e);
    r.errorCode = typeof e?.code === 'number' ? e.code : null;
  }
  out.results.push(r);
}

try {
  if (transport.sessionId) {
    await transport.terminateSession(); // DELETE; SDK treats 2xx and 405 as success
    out.terminated = true;
  }
} catch (e) {
  out.terminateError = String(e?.message ?? e);
}
await client.close().catch(() => {});

process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
