// @modelcontextprotocol/inspector-cli, the official MCP Inspector's command line, against
// mcp-auth-server with a bearer header: for each machine client, list tools, call one, get a
// prompt, allowed or refused as its role says; and without a token, refused.
//
// Usage:  node inspector.mjs    (MCP_URL, ISSUER, AUTHORIZATION_SERVER as in py_client.py)
//
// Tokens come from the authorization server's client-credentials grant (the Inspector's CLI has
// no OAuth flow of its own; it takes headers).

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const MCP_URL = process.env.MCP_URL || 'http://127.0.0.1:27181/mcp';
const ISSUER = process.env.ISSUER || 'http://127.0.0.1:27180';
const SERVER = JSON.parse(readFileSync(new URL('./authorization_servers.json', import.meta.url)))[process.env.AUTHORIZATION_SERVER || 'external'];

// inspector-cli 1.0.3 looks for its package.json with fs.existsSync("../package.json"), a path
// relative to the working directory, then imports it relative to its own file (build/index.js,
// callMethod). It only works when started from a directory whose parent holds a package.json,
// so it is started from its own build/ folder, where both readings agree.
const cliDir = join(dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector-cli/package.json')), 'build');

function inspector(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(cliDir, 'cli.js'), '--cli', MCP_URL, '--transport', 'http', ...args],
      { cwd: cliDir, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }));
  });
}

async function token({ client_id: clientId, secret }) {
  const response = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: MCP_URL, scope: 'mcp:read mcp:tools mcp:prompts' }),
  });
  if (!response.ok) throw new Error(`token request for ${clientId}: ${response.status} ${await response.text()}`);
  return (await response.json()).access_token;
}

let passed = 0;
let failed = 0;
function check(name, ok, why) {
  if (ok) { passed++; console.log(`PASS inspector-cli: ${name}`); }
  else { failed++; console.log(`FAIL inspector-cli: ${name}: ${why}`); }
}
const parse = (text) => { try { return JSON.parse(text); } catch { return undefined; } };

const tail = (run) => `${run.code} ${run.stdout.slice(0, 300)} ${run.stderr.slice(-300)}`;
const refused403 = (run) => run.code !== 0 && /403|insufficient/i.test(run.stderr);

for (const machine of SERVER.machine_clients) {
  const who = `${machine.client_id} (role ${machine.roles.join(' ')})`;
  const bearer = ['--header', `Authorization: Bearer ${await token(machine)}`];

  let run = await inspector([...bearer, '--method', 'tools/list']);
  const names = (parse(run.stdout)?.tools || []).map((t) => t.name).sort();
  check(`${who} tools/list with a bearer header`, run.code === 0 && names.join() === machine.tools.join(), `${names} ${tail(run)}`);

  run = await inspector([...bearer, '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'message=from the inspector']);
  if (machine.tools_call) check(`${who} tools/call echo`, run.code === 0 && parse(run.stdout)?.content?.[0]?.text === 'from the inspector', tail(run));
  else check(`${who} tools/call refused (403)`, refused403(run), tail(run));

  run = await inspector([...bearer, '--method', 'prompts/get', '--prompt-name', 'greeting', '--prompt-args', 'name=Ada']);
  if (machine.prompts_get) check(`${who} prompts/get greeting`, run.code === 0 && run.stdout.includes('Ada'), tail(run));
  else check(`${who} prompts/get refused (403)`, refused403(run), tail(run));
}

const run = await inspector(['--method', 'tools/list']);
check('without a token: refused (401)', run.code !== 0 && /401|authentication required/i.test(run.stderr), tail(run));

console.log(`inspector-cli: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
