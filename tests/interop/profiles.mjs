// One identity-provider profile end to end: idp.mjs behaving like Entra ID, Auth0, Keycloak or
// Okta (IDP_PROFILE), and mcp-auth-server started with that provider's shipped profile
// (config/<profile>.toml, MCP_AUTH_PROFILE), only its URLs pointed at this machine.
//
//   1. the provider's discovery is found from the issuer URL as the profile writes it;
//   2. a machine client's token, in the provider's shape (audience, scope and role claims),
//      calls `whoami`, which reports the roles and scopes read from where that provider puts
//      them, and the client from its client claim;
//   3. a guest's token lists tools but may not call them (403): the roles were read, not ignored;
//   4. keycloak only: a token without the audience mapper (`aud` = `account`) is refused (401).
//
// Usage:  node profiles.mjs    (PROFILE, ISSUER, AUDIENCE: what clients ask for; MCP_URL)
// Prints PASS/FAIL lines and exits non-zero if any check failed.

import { decodeJwt } from 'jose';

const { PROFILE, ISSUER, AUDIENCE, MCP_URL } = process.env;
let failed = 0;
function check(name, ok, why) {
  if (ok) console.log(`PASS ${PROFILE}: ${name}`);
  else { failed++; console.log(`FAIL ${PROFILE}: ${name}: ${typeof why === 'string' ? why : JSON.stringify(why)}`); }
}

// Where each provider puts what the server must find, to show the token really has that shape.
const SHAPES = {
  entra: (c) => typeof c.scp === 'string' && c.scope === undefined && Array.isArray(c.roles) && c.azp && !c.client_id && !c.aud.startsWith('api://'),
  auth0: (c) => c.iss.endsWith('/') && Array.isArray(c.permissions) && Array.isArray(c['https://mcp.example.com/roles']) && c.roles === undefined,
  keycloak: (c) => Array.isArray(c.realm_access?.roles) && c.roles === undefined && Array.isArray(c.aud) && c.aud.includes('account'),
  okta: (c) => Array.isArray(c.scp) && Array.isArray(c.groups) && c.cid && !c.client_id,
};

const discovery = await fetch(`${ISSUER.replace(/\/$/, '')}/.well-known/openid-configuration`).then((r) => r.json());
check('discovery names the issuer as configured', discovery.issuer === ISSUER, discovery.issuer);

async function token(client) {
  const response = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${client}:${client}-secret`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: AUDIENCE, scope: 'mcp:read mcp:tools mcp:prompts' }),
  });
  const body = await response.json();
  if (!body.access_token) throw new Error(`no token for ${client}: ${JSON.stringify(body)}`);
  return body.access_token;
}

async function call(bearer, method, params, name) {
  const response = await fetch(MCP_URL, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${bearer}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      ...(name ? { 'mcp-name': name } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method,
      params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
    }),
  });
  const text = await response.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: response.status, body, challenge: response.headers.get('www-authenticate') || '' };
}

const admin = await token('m2m-admin');
const claims = decodeJwt(admin);
check(`the token has ${PROFILE}'s shape`, SHAPES[PROFILE](claims), claims);

const whoami = await call(admin, 'tools/call', { name: 'whoami', arguments: {} }, 'whoami');
const me = whoami.body?.result?.structuredContent;
check('whoami as the admin client: 200', whoami.status === 200 && me, whoami);
// (Keycloak's own realm roles, such as offline_access, come along: they permit nothing here.)
check('the roles were read from the profile\'s claim', me?.roles?.includes('admin') && !me.roles.includes('guest'), me?.roles);
check('the scopes were read from the profile\'s claim', ['mcp:read', 'mcp:tools'].every((s) => me?.scopes?.includes(s)), me?.scopes);
check('the client was read from the profile\'s claim', me?.client_id === 'm2m-admin', me?.client_id);
check('the issuer is the one configured, byte for byte', me?.issuer === ISSUER, me?.issuer);

const guest = await token('m2m-guest');
const listed = await call(guest, 'tools/list', {});
check('a guest lists tools: 200', listed.status === 200, listed);
const refused = await call(guest, 'tools/call', { name: 'whoami', arguments: {} }, 'whoami');
check('a guest may not call tools: 403 insufficient_scope', refused.status === 403 && refused.challenge.includes('insufficient_scope'), refused);

if (PROFILE === 'keycloak') {
  const unmapped = await token('m2m-unmapped');
  const noAudience = await call(unmapped, 'tools/list', {});
  check('keycloak without the audience mapper (aud = account): 401 invalid_token', noAudience.status === 401 && noAudience.challenge.includes('invalid_token'), noAudience);
}

process.exit(failed ? 1 : 0);
