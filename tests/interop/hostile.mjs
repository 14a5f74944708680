// Hostile cases against the real identity provider, with mcp-auth-server left running
// throughout (it was started with nothing but the issuer URL and its public URL):
//
//   1. the IdP comes back with a new signing key: its new tokens are accepted;
//   2. a token from the same IdP for another resource (wrong `aud`) is refused;
//   3. tokens signed by a key the IdP never published are refused, whether they reuse the
//      IdP's key id or bring a new one;
//   4. the IdP is stopped: a token signed with the cached key still passes, an unknown key id
//      fails closed (and fast);
//   5. the IdP is back with yet another key: accepted again, still without restarting us.
//
// Usage:  node hostile.mjs    (MCP_URL, ISSUER; IDP_PORT, RESOURCE, OTHER_RESOURCE for idp.mjs)
// Starts and stops its own idp.mjs processes on the issuer's port: the caller must have
// stopped any other IdP there first. The server must be configured with a short
// jwt.min_refresh_interval_secs (MIN_REFRESH_SECS here, default 2).

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';

const MCP_URL = process.env.MCP_URL || 'http://127.0.0.1:27181/mcp';
const ISSUER = process.env.ISSUER || 'http://127.0.0.1:27180';
const OTHER_RESOURCE = process.env.OTHER_RESOURCE || 'http://127.0.0.1:27189/api';
const MIN_REFRESH_SECS = Number(process.env.MIN_REFRESH_SECS || 2);
const IDP = fileURLToPath(new URL('./idp.mjs', import.meta.url));

let passed = 0;
let failed = 0;
function check(name, ok, why) {
  if (ok) { passed++; console.log(`PASS hostile: ${name}`); }
  else { failed++; console.log(`FAIL hostile: ${name}: ${typeof why === 'string' ? why : JSON.stringify(why)}`); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ----------------------------------------------------------------- the IdP ---
let idp;
async function startIdp() {
  idp = spawn(process.execPath, [IDP], { stdio: ['ignore', 'pipe', 'inherit'] });
  const kid = await new Promise((resolve, reject) => {
    let out = '';
    idp.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/idp ready \S+ kid=(\S+)/);
      if (m) resolve(m[1]);
    });
    idp.on('exit', (code) => reject(new Error(`idp.mjs exited with ${code}`)));
    setTimeout(() => reject(new Error('idp.mjs did not start in 30 s')), 30_000).unref();
  });
  return kid;
}
async function stopIdp() {
  if (!idp || idp.exitCode !== null) return;
  const exited = new Promise((r) => idp.once('exit', r));
  idp.kill('SIGTERM');
  await exited;
}
process.on('exit', () => idp?.kill('SIGKILL'));

async function clientCredentials(resource, clientId = 'm2m-admin') {
  const response = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientId}-secret`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'mcp:read mcp:tools mcp:prompts' }),
  });
  if (!response.ok) throw new Error(`token request: ${response.status} ${await response.text()}`);
  return (await response.json()).access_token;
}

/** Sends an authenticated `initialize` (legacy era: needs a valid token and nothing else). */
async function present(token) {
  const started = Date.now();
  const response = await fetch(MCP_URL, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'hostile', version: '1' } } }),
  });
  await response.body?.cancel();
  return { status: response.status, challenge: response.headers.get('www-authenticate') || '', ms: Date.now() - started };
}
const accepted = (r) => r.status === 200;
const refused = (r) => r.status === 401 && /error="invalid_token"/.test(r.challenge);

/** A token like the IdP's own (same claims, fresh jti and times), signed with a key it never had. */
async function forge(realToken, kid) {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const claims = { ...decodeJwt(realToken), jti: randomUUID() };
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...claims, iat: now, exp: now + 300 })
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid })
    .sign(privateKey);
}

// ------------------------------------------------------------------- cases ---
try {
  // 1. A restarted IdP with a new key (the server holds the previous IdP's key).
  const kid1 = await startIdp();
  await sleep(MIN_REFRESH_SECS * 1000);
  const fresh = await clientCredentials(MCP_URL);
  let r = await present(fresh);
  check('IdP restarted with a new key: its new token is accepted, server not restarted', accepted(r) && decodeProtectedHeader(fresh).kid === kid1, r);

  // 2. Same IdP, same key, another audience.
  const otherAud = await clientCredentials(OTHER_RESOURCE);
  r = await present(otherAud);
  check(`token for another resource (aud ${decodeJwt(otherAud).aud}) is refused`, refused(r), r);

  // 3. Keys the IdP never published.
  r = await present(await forge(fresh, kid1));
  check("token signed with an unpublished key under the IdP's kid is refused", refused(r), r);
  await sleep(MIN_REFRESH_SECS * 1000);
  r = await present(await forge(fresh, 'never-published-kid'));
  check('token signed with an unpublished key under a new kid is refused', refused(r), r);

  // 4. The IdP goes away. A token it signed before (never shown to the server, so not in its
  //    verified-token cache) still passes on the cached key; an unknown kid fails closed.
  const unseen = await clientCredentials(MCP_URL);
  await stopIdp();
  await sleep(MIN_REFRESH_SECS * 1000);
  r = await present(unseen);
  check('IdP stopped: a token signed with the cached key still passes', accepted(r), r);
  r = await present(await forge(unseen, 'unknown-while-idp-down'));
  check(`IdP stopped: an unknown kid fails closed (401 in ${r.ms} ms)`, refused(r) && r.ms < 5000, r);

  // 5. The IdP is back, with another new key.
  const kid2 = await startIdp();
  await sleep(MIN_REFRESH_SECS * 1000);
  const again = await clientCredentials(MCP_URL);
  r = await present(again);
  check('IdP back with another new key: accepted, server still not restarted', accepted(r) && decodeProtectedHeader(again).kid === kid2 && kid2 !== kid1, r);
} catch (e) {
  check('hostile cases ran to the end', false, `${e?.constructor?.name}: ${e?.message}`);
} finally {
  await stopIdp();
}

console.log(`hostile: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
