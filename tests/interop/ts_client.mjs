// The official TypeScript MCP SDK (@modelcontextprotocol/sdk 1.x, legacy era: initialize +
// Mcp-Session-Id) against mcp-auth-server and an authorization server (a real identity provider,
// or the server's own), through StreamableHTTPClientTransport and its `authProvider`.
//
// Usage:  node ts_client.mjs    (MCP_URL, ISSUER, AUTHORIZATION_SERVER as in py_client.py)
//
// Flows, each printing `PASS <check>` or `FAIL <check>: <why>`, then a total line:
//   oauth    401 -> protected-resource metadata -> authorization-server metadata -> dynamic
//            registration -> authorization code + PKCE (a sign-in driver plays the person) ->
//            token with `resource` -> tools/list, tools/call, prompts/get -> the token expires
//            -> refresh
//   step-up  the person first approves only mcp:read; tools/call meets 403 insufficient_scope.
//            Twice: holding a refresh token, and without one. What the SDK does about it is
//            printed as a NOTE; the check is that the call succeeds in the end, with whatever
//            the application has to add.
//
// The SDK's own pattern for authorization code clients (its simpleOAuthClient example): the
// provider's redirectToAuthorization() sends the user to the IdP, the transport throws
// UnauthorizedError, the application receives the code on its redirect URI, calls
// transport.finishAuth(code) and connects again.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { signIn } from './user.mjs';

const MCP_URL = process.env.MCP_URL || 'http://127.0.0.1:27181/mcp';
const ISSUER = process.env.ISSUER || 'http://127.0.0.1:27180';
const CALLBACK = 'http://127.0.0.1:27188/callback';
// What differs between the authorization servers (see py_client.py).
const SERVER = JSON.parse(readFileSync(new URL('./authorization_servers.json', import.meta.url)))[process.env.AUTHORIZATION_SERVER || 'external'];
const PERSON = SERVER.person;

/**
 * The person at the browser, over plain HTTP: signs in and consents, approving `approve` ("all",
 * or some scopes), and returns { callbackUrl, ... } at the redirect back to the client.
 */
async function signInAs(url, approve) {
  const { username, password } = PERSON;
  // idp.mjs: user.mjs ticks the scopes to approve, and counts the pages it saw.
  if (SERVER.sign_in.endsWith('user.mjs')) return signIn(url, { username, password, approve });
  // Our issuer: tests/issuer_login.py signs in, allows, and prints the callback URL. Approving
  // fewer scopes means asking for fewer (its consent page has no per-scope choice; py_client.py).
  const narrowed = new URL(url);
  if (approve !== 'all') narrowed.searchParams.set('scope', approve);
  const script = fileURLToPath(new URL(`../../${SERVER.sign_in}`, import.meta.url));
  const { stdout } = await promisify(execFile)('python3', [script, narrowed.href, '--user', username, '--password', password]);
  return { callbackUrl: stdout.trim() };
}
const isAsMetadata = (url) => /\/\.well-known\/(oauth-authorization-server|openid-configuration)/.test(url);

class Report {
  constructor(prefix) { Object.assign(this, { prefix, passed: 0, failed: 0 }); }
  check(name, ok, why = '') {
    if (ok) { this.passed++; console.log(`PASS ${this.prefix} ${name}`); }
    else { this.failed++; console.log(`FAIL ${this.prefix} ${name}: ${typeof why === 'string' ? why : JSON.stringify(why)}`); }
    return ok;
  }
  note(text) { console.log(`NOTE ${this.prefix} ${text}`); }
  async attempt(name, promise) {
    try { return await promise; } catch (e) { this.check(name, false, `${e?.constructor?.name}: ${e?.message}`); return undefined; }
  }
}

/** Records every request the SDK makes (MCP and OAuth alike) through the transport's `fetch`. */
class Recorder {
  exchanges = [];
  fetch = async (url, init = {}) => {
    const response = await fetch(url, init);
    const body = typeof init.body === 'string' || init.body instanceof URLSearchParams ? String(init.body) : '';
    this.exchanges.push({ method: init.method || 'GET', url: String(url), status: response.status, body, wwwAuthenticate: response.headers.get('www-authenticate') });
    return response;
  };
  find(method, prefix, status) {
    return this.exchanges.filter((x) => x.method === method && x.url.startsWith(prefix) && (status === undefined || x.status === status));
  }
}

/** An in-memory OAuthClientProvider whose "browser" is a sign-in driver (signInAs). */
class InteropProvider {
  constructor(approvals, grantTypes = ['authorization_code', 'refresh_token']) {
    Object.assign(this, { approvals, grantTypes, visits: [], _tokens: undefined, _client: undefined, _verifier: undefined, _state: undefined });
  }
  get redirectUrl() { return CALLBACK; }
  get clientMetadata() {
    return {
      client_name: 'interop typescript client',
      redirect_uris: [CALLBACK],
      grant_types: this.grantTypes,
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { this._state = randomBytes(16).toString('base64url'); return this._state; }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; }
  saveCodeVerifier(verifier) { this._verifier = verifier; }
  codeVerifier() { return this._verifier; }
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._client = undefined;
  }
  async redirectToAuthorization(url) {
    const approve = this.approvals[Math.min(this.visits.length, this.approvals.length - 1)];
    const result = await signInAs(url.href, approve);
    this.visits.push({ url: url.href, ...result });
  }
  /** What the application's redirect URI receives: the code, after checking state and issuer. */
  callback() {
    const params = new URL(this.visits.at(-1).callbackUrl).searchParams;
    if (params.get('state') !== this._state) throw new Error('state mismatch');
    if (params.get('iss') !== ISSUER) throw new Error(`unexpected iss ${params.get('iss')}`);
    return params.get('code');
  }
}

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));
const textOf = (result) => (result?.content || []).map((c) => c.text || '').join(' ');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function newTransport(provider, recorder) {
  return new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider, fetch: recorder.fetch });
}

/** Connects, completing an authorization the SDK started (UnauthorizedError) the SDK's way. */
async function connect(provider, recorder) {
  let transport = newTransport(provider, recorder);
  let client = new Client({ name: 'interop-ts', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    await transport.finishAuth(provider.callback());
    transport = newTransport(provider, recorder);
    client = new Client({ name: 'interop-ts', version: '1.0.0' });
    await client.connect(transport);
  }
  return { client, transport };
}

async function useTheServer(report, client) {
  const tools = await report.attempt('tools/list', client.listTools());
  if (tools) {
    const names = tools.tools.map((t) => t.name).sort();
    report.check('tools/list', names.includes('echo') && names.includes('get_time'), names);
  }
  const result = await report.attempt('tools/call echo', client.callTool({ name: 'echo', arguments: { message: 'interop' } }));
  if (result) report.check('tools/call echo', !result.isError && textOf(result).includes('interop'), result);
  const prompt = await report.attempt('prompts/get greeting', client.getPrompt({ name: 'greeting', arguments: { name: 'Ada' } }));
  if (prompt) report.check('prompts/get greeting', JSON.stringify(prompt).includes('Ada'), prompt);
}

// -------------------------------------------------------------------------------- flows ---
async function oauthFlow() {
  const report = new Report('typescript oauth:');
  const provider = new InteropProvider(['all']);
  const recorder = new Recorder();
  const connected = await report.attempt('connect through the OAuth flow', connect(provider, recorder));
  if (!connected) return report;
  const { client, transport } = connected;
  try {
    const first = recorder.find('POST', MCP_URL)[0];
    report.check('first request answered 401 with resource_metadata',
      first?.status === 401 && /resource_metadata=/.test(first.wwwAuthenticate || ''), first);
    report.check('protected-resource metadata fetched',
      recorder.find('GET', `${new URL(MCP_URL).origin}/.well-known/oauth-protected-resource`, 200).length > 0, 'no 200');
    report.check('authorization-server metadata fetched from the issuer',
      recorder.find('GET', ISSUER, 200).some((x) => isAsMetadata(x.url)), 'no 200 from its well-known URLs');
    const registration = `${ISSUER}${SERVER.registration_path}`;
    report.check('client registered dynamically', recorder.find('POST', registration, 201).length > 0, `no 201 from ${registration}`);
    const query = provider.visits[0] ? new URL(provider.visits[0].url).searchParams : new URLSearchParams();
    report.check('authorization request: PKCE S256, resource, scopes from the challenge',
      query.get('code_challenge_method') === 'S256' && query.get('resource') === MCP_URL
      && ['mcp:read', 'mcp:tools', 'mcp:prompts'].every((s) => (query.get('scope') || '').split(' ').includes(s)),
      Object.fromEntries(query));
    const visit = provider.visits[0] || {};
    const callback = new URL(visit.callbackUrl || 'about:blank').searchParams;
    report.check('signed in and consented over HTTP: code, state and iss in the callback',
      callback.has('code') && callback.has('state') && callback.get('iss') === ISSUER
      // user.mjs also counts the pages it saw: one sign-in, one consent
      && (visit.login ?? 1) === 1 && (visit.consent ?? 1) === 1, visit);
    const codeRequest = recorder.find('POST', `${ISSUER}/token`, 200).map((x) => new URLSearchParams(x.body))
      .find((f) => f.get('grant_type') === 'authorization_code');
    report.check('token request with code_verifier and resource',
      !!codeRequest?.get('code_verifier') && codeRequest?.get('resource') === MCP_URL, codeRequest ? Object.fromEntries(codeRequest) : 'none');
    const access = provider.tokens() ? claims(provider.tokens().access_token) : {};
    report.check("access token is a JWT for our resource, with the user's roles",
      access.aud === MCP_URL && access.iss === ISSUER && JSON.stringify(access.roles) === JSON.stringify(PERSON.roles), access);
    report.check('speaks a legacy revision after initialize (session id)',
      !!transport.sessionId && transport.protocolVersion !== '2026-07-28', `${transport.protocolVersion} ${transport.sessionId}`);
    await useTheServer(report, client);

    // The SDK refreshes when the server refuses an expired token (it keeps no clock itself).
    const oldToken = provider.tokens()?.access_token;
    await sleep(Math.max(0, access.exp * 1000 - Date.now()) + 1500);
    const result = await report.attempt('tools/call after expiry', client.callTool({ name: 'echo', arguments: { message: 'refreshed' } }));
    const expired = recorder.exchanges.filter((x) => x.url === MCP_URL && x.status === 401).at(-1);
    report.check('expired token refused with 401 invalid_token', /error="invalid_token"/.test(expired?.wwwAuthenticate || ''), expired || 'no 401');
    const refreshes = recorder.find('POST', `${ISSUER}/token`, 200).map((x) => new URLSearchParams(x.body))
      .filter((f) => f.get('grant_type') === 'refresh_token');
    report.check('expired token refreshed (grant_type=refresh_token, with resource)',
      refreshes.length > 0 && refreshes.at(-1).get('resource') === MCP_URL, refreshes.map((f) => Object.fromEntries(f)));
    report.check('refreshed token differs and is accepted',
      textOf(result).includes('refreshed') && provider.tokens()?.access_token !== oldToken, result);
    report.check('no second sign-in was needed', provider.visits.length === 1, `${provider.visits.length} sign-ins`);
  } finally {
    await client.close();
  }
  return report;
}

/**
 * Step-up. With a refresh token (`refresh`: the client registered the refresh grant) and
 * without one, since the SDK takes a different path in each.
 */
async function stepUpFlow(refresh) {
  const report = new Report(`typescript step-up (${refresh ? 'holding' : 'without'} a refresh token):`);
  const provider = new InteropProvider(['mcp:read', 'all'], refresh ? ['authorization_code', 'refresh_token'] : ['authorization_code']);
  const recorder = new Recorder();
  const connected = await report.attempt('connect', connect(provider, recorder));
  if (!connected) return report;
  try {
    report.check('first token holds only mcp:read', provider.tokens()?.scope === 'mcp:read', provider.tokens()?.scope);
    report.check(`${refresh ? 'a' : 'no'} refresh token was issued`, !!provider.tokens()?.refresh_token === refresh, provider.tokens());
    report.check('tools/list with mcp:read', !!(await report.attempt('tools/list with mcp:read', connected.client.listTools())));

    // Let the SDK meet the 403 on its own first, and record what it does.
    const call = () => connected.client.callTool({ name: 'echo', arguments: { message: 'stepped up' } });
    let result;
    let error;
    try {
      result = await call();
    } catch (e) {
      error = `${e?.constructor?.name}: ${e?.message}`;
    }
    const refused = recorder.find('POST', MCP_URL, 403);
    report.check('server answered 403 insufficient_scope naming mcp:tools',
      /error="insufficient_scope"/.test(refused[0]?.wwwAuthenticate || '') && /mcp:tools/.test(refused[0]?.wwwAuthenticate || ''), refused[0] || 'no 403');
    const refreshed = recorder.find('POST', `${ISSUER}/token`, 200).some((x) => new URLSearchParams(x.body).get('grant_type') === 'refresh_token');

    if (result) {
      report.note('on 403 insufficient_scope the SDK stepped up on its own');
    } else if (provider.visits.length >= 2) {
      // The SDK sent the user to authorize the larger scope and threw UnauthorizedError, as on
      // any authorization: the application finishes it with the code from its redirect URI.
      provider.invalidateCredentials('tokens');
      await connected.transport.finishAuth(provider.callback());
      result = await report.attempt('tools/call after step-up', call());
      report.note(`on 403 insufficient_scope the SDK started the re-authorization for the challenged scope itself (${error}); the application finished it (finishAuth, retry)`);
    } else {
      // The SDK refreshed the token (same scope, RFC 6749 section 6) and gave up: the
      // application steps up: the scope from the challenge, a new authorization, retry.
      const scope = (refused.at(-1)?.wwwAuthenticate || '').match(/scope="([^"]*)"/)?.[1];
      provider.invalidateCredentials('tokens');
      await auth(provider, { serverUrl: MCP_URL, scope, fetchFn: recorder.fetch });
      await connected.transport.finishAuth(provider.callback());
      result = await report.attempt('tools/call after step-up', call());
      const sdk = refreshed ? 'refreshed the token (same scope) and gave up' : 'gave up';
      report.note(`on 403 insufficient_scope the SDK ${sdk} (${error}); the application stepped up (scope from the challenge, new authorization, retry)`);
    }
    const second = provider.visits[1] ? new URL(provider.visits[1].url).searchParams.get('scope') || '' : '';
    report.check('re-authorized with the larger scope', second.split(' ').includes('mcp:tools'), second || `${provider.visits.length} sign-ins`);
    report.check('tools/call succeeds after step-up', textOf(result).includes('stepped up'), result);
    report.check('new token holds mcp:tools', (provider.tokens()?.scope || '').split(' ').includes('mcp:tools'), provider.tokens()?.scope);
  } finally {
    await connected.client.close();
  }
  return report;
}

let passed = 0;
let failed = 0;
const flows = { oauth: () => oauthFlow(), 'step-up': () => stepUpFlow(true), 'step-up without refresh': () => stepUpFlow(false) };
for (const [name, flow] of Object.entries(flows)) {
  let report;
  try {
    report = await flow();
  } catch (e) {
    report = new Report(`typescript ${name}:`);
    report.check('flow ran to the end', false, `${e?.constructor?.name}: ${e?.message}`);
  }
  passed += report.passed;
  failed += report.failed;
}
console.log(`typescript: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
