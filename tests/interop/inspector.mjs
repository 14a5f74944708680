// @modelcontextprotocol/inspector-cli, the official MCP Inspector's command line, against
// mcp-auth-server with a bearer header: list and call tools, get a prompt, and be refused
// without a token or with a role that may not call tools.
//
// Usage:  node inspector.mjs             (MCP_URL, ISSUER as in py_client.py)
//
// Tokens come from the identity provider's client-credentials grant (the Inspector's CLI has
// no OAuth flow of its own; it takes headers).

import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const MCP_URL = process.env.MCP_URL || 'http://127.0.0.1:47181/mcp';
const ISSUER = process.env.ISSUER || 'http://127.0.0.1:47180';

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

async function token(clientId) {
  const response = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientId}-secret`).toString('base64')}` },
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

const admin = ['--header', `Authorization: Bearer ${await token('m2m-admin')}`];

let run = await inspector([...admin, '--method', 'tools/list']);
const names = (parse(run.stdout)?.tools || []).map((t) => t.name).sort();
check('tools/list with a bearer header', run.code === 0 && names.includes('echo') && names.includes('get_time'), `${run.code} ${names} ${run.stderr.slice(-300)}`);

run = await inspector([...admin, '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'message=from the inspector']);
check('tools/call echo with a bearer header', run.code === 0 && parse(run.stdout)?.content?.[0]?.text === 'from the inspector', `${run.code} ${run.stdout.slice(0, 300)} ${run.stderr.slice(-300)}`);

run = await inspector([...admin, '--method', 'prompts/get', '--prompt-name', 'greeting', '--prompt-args', 'name=Ada']);
check('prompts/get greeting with a bearer header', run.code === 0 && run.stdout.includes('Ada'), `${run.code} ${run.stdout.slice(0, 300)} ${run.stderr.slice(-300)}`);

run = await inspector(['--method', 'tools/list']);
check('without a token: refused (401)', run.code !== 0 && /401|authentication required/i.test(run.stderr), `${run.code} ${run.stderr.slice(-300)}`);

run = await inspector(['--header', `Authorization: Bearer ${await token('m2m-guest')}`, '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'message=x']);
check('guest role: tools/call refused (403)', run.code !== 0 && /403|insufficient/i.test(run.stderr), `${run.code} ${run.stdout.slice(0, 200)} ${run.stderr.slice(-300)}`);

console.log(`inspector-cli: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
