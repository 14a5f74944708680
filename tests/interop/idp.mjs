// An independent OpenID Connect provider for the interoperability tests: the certified
// `oidc-provider` package, configured the way a production identity provider would be for
// mcp-auth-server.
//
//   - RS256 signing key, published at /jwks, found through /.well-known/openid-configuration;
//   - authorization code with PKCE (S256, required for every client), refresh tokens (rotated
//     for public clients), client credentials for the two machine clients below;
//   - dynamic client registration (RFC 7591), open, as MCP clients expect; registered clients
//     may only use the authorization-code and refresh grants;
//   - resource indicators (RFC 8707): an access token requested for RESOURCE (our MCP endpoint)
//     is a JWT (RFC 9068) whose `aud` is RESOURCE and whose scopes are among
//     `mcp:read mcp:tools mcp:prompts`; OTHER_RESOURCE is a second API with the same scope
//     names, for tokens that must be refused by our server;
//   - a `roles` claim in access tokens: the user's roles, or the machine client's;
//   - opaque access tokens for the machine client m2m-opaque, described by introspection
//     (RFC 7662, /token/introspection) to mcp-introspector (secret mcp-introspector-secret);
//   - a plain HTML login and consent, driven over HTTP by tests/interop/user.mjs. The consent
//     form lists each requested scope as a checkbox, so a test can approve only some of them.
//
// Environment (all optional):
//   IDP_PORT          port on 127.0.0.1 (default 27180); the issuer is http://127.0.0.1:IDP_PORT
//   IDP_PROFILE       behave like a commercial identity provider in what a resource server sees
//                     (issuer URL, audience, where scopes and roles are), for the machine
//                     clients' tokens (see PROFILES below): entra, auth0, keycloak or okta
//   RESOURCE          our resource identifier (default http://127.0.0.1:27181/mcp)
//   OTHER_RESOURCE    another API's identifier (default http://127.0.0.1:27189/api)
//   USER_TOKEN_TTL    lifetime of users' access tokens, in seconds (default 600)
// Every start draws a new RSA-2048 signing key (its kid: the RFC 7638 thumbprint), so a restart
// is a key rotation.
// Prints "idp ready <issuer> kid=<kid>" on stdout once it listens.

import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { calculateJwkThumbprint } from 'jose';
import Provider, { errors } from 'oidc-provider';

const PORT = Number(process.env.IDP_PORT || 27180);
const RESOURCE = process.env.RESOURCE || 'http://127.0.0.1:27181/mcp';

// What differs between identity providers, as a resource server sees their access tokens:
//   path       the issuer's path under the origin (Auth0's issuer ends in a slash)
//   api        the audience clients ask for instead of our URL, when the IdP has its own API
//              identifiers (a `resource` naming it gets a token for it)
//   shape      rewrites the claims oidc-provider puts into a JWT access token
const TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
const PROFILES = {
  // Entra ID v2: one issuer per tenant, audience the application's ID (a GUID), delegated scopes in
  // `scp` (one space-separated string), app roles in `roles`, the client in `azp`. (The machine
  // clients here get a delegated token's `scp` too, which Entra gives only to users' tokens:
  // config/entra.toml says what that means for app-only callers.)
  entra: {
    path: `/${TENANT}/v2.0`,
    api: 'api://6e1f2a48-0e4b-4bb3-9a4c-1e2d3c4b5a69',
    shape(p) {
      p.scp = p.scope; delete p.scope;
      p.aud = p.aud.replace(/^api:\/\//, ''); // v2: the application ID, asked for by its ID URI
      p.azp = p.client_id; delete p.client_id;
      p.tid = TENANT; p.ver = '2.0';
    },
  },
  // Auth0: issuer with a trailing slash, audience an API identifier, `scope` a string, RBAC
  // permissions in `permissions`, roles only where an Action puts them (a namespaced claim).
  auth0: {
    path: '/',
    api: 'https://mcp.example.com/api',
    shape(p) {
      p.permissions = String(p.scope || '').split(' ').filter(Boolean);
      p['https://mcp.example.com/roles'] = p.roles; delete p.roles;
      p.azp = p.client_id; p.gty = 'client-credentials';
    },
  },
  // Keycloak (the realm of config/keycloak): issuer per realm, realm roles (ours beside
  // Keycloak's own) in `realm_access.roles`, client roles in `resource_access.<client>.roles`,
  // and `aud` is `account` unless an audience mapper adds the resource (m2m-unmapped has none).
  keycloak: {
    path: '/realms/mcp-realm',
    shape(p) {
      p.realm_access = { roles: [...p.roles, 'default-roles-mcp-realm', 'offline_access'] };
      p.resource_access = { account: { roles: ['manage-account'] } };
      delete p.roles;
      p.aud = p.client_id === 'm2m-unmapped' ? 'account' : [p.aud, 'account'];
      p.azp = p.client_id; p.typ = 'Bearer';
    },
  },
  // Okta, custom authorization server: issuer under /oauth2/<server>, audience `api://default`,
  // `scp` an array, the client in `cid`, groups (our roles) in a `groups` claim.
  okta: {
    path: '/oauth2/default',
    api: 'api://default',
    shape(p) {
      p.scp = String(p.scope || '').split(' ').filter(Boolean); delete p.scope;
      p.cid = p.client_id; delete p.client_id;
      p.groups = p.roles; delete p.roles;
    },
  },
};
const PROFILE_NAME = process.env.IDP_PROFILE || '';
if (PROFILE_NAME && !PROFILES[PROFILE_NAME]) throw new Error(`IDP_PROFILE: unknown profile ${PROFILE_NAME}`);
const PROFILE = PROFILES[PROFILE_NAME] || {};
// Where the provider's own routes are served: under the issuer's path, as real IdPs do.
const MOUNT = (PROFILE.path || '').replace(/\/$/, '');
const ISSUER = `http://127.0.0.1:${PORT}${PROFILE.path || ''}`;
const OTHER_RESOURCE = process.env.OTHER_RESOURCE || 'http://127.0.0.1:27189/api';
const USER_TOKEN_TTL = Number(process.env.USER_TOKEN_TTL || 600);
const MCP_SCOPES = ['mcp:read', 'mcp:tools', 'mcp:prompts'];

// Test users (password = name) and machine clients, with their roles. mcp-auth-server reads
// the `roles` claim: admin may use every scope, user mcp:read + mcp:tools, guest mcp:read.
const USERS = {
  alice: { roles: ['admin'] },
  bob: { roles: ['user'] },
  carol: { roles: ['guest'] },
};
const MACHINE_CLIENTS = [
  { client_id: 'm2m-admin', client_secret: 'm2m-admin-secret', roles: ['admin'] },
  { client_id: 'm2m-guest', client_secret: 'm2m-guest-secret', roles: ['guest'] },
  { client_id: 'm2m-unmapped', client_secret: 'm2m-unmapped-secret', roles: ['admin'] },
  // Gets opaque (reference) access tokens, which resource servers must introspect.
  { client_id: 'm2m-opaque', client_secret: 'm2m-opaque-secret', roles: ['admin'] },
];
// A resource server allowed to introspect any token at /token/introspection (RFC 7662); it
// may use no grant.
const INTROSPECTOR = { client_id: 'mcp-introspector', client_secret: 'mcp-introspector-secret' };

// ---------------------------------------------------------------- signing key ---
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const key = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig' };
key.kid = await calculateJwkThumbprint(key);

// ------------------------------------------------------------ configuration ---
const RESOURCE_SERVERS = [RESOURCE, OTHER_RESOURCE, ...(PROFILE.api ? [PROFILE.api] : [])];

const configuration = {
  clients: [
    ...MACHINE_CLIENTS.map(({ client_id, client_secret }) => ({
      client_id,
      client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    { ...INTROSPECTOR, grant_types: [], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' },
  ],
  jwks: { keys: [key] },
  // Known scopes: listed in discovery and allowed in client registrations.
  scopes: ['openid', 'offline_access', ...MCP_SCOPES],
  claims: { openid: ['sub'] },
  cookies: { keys: ['interop-cookie-key-not-a-secret'] },
  responseTypes: ['code'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: {
      enabled: true,
      // Confidential clients may introspect their own tokens; the introspector any token.
      allowedPolicy: async (ctx, client, token) => client.clientId === INTROSPECTOR.client_id || token.clientId === client.clientId,
    },
    resourceIndicators: {
      enabled: true,
      // No default: a client that forgets `resource` gets no token for our server.
      defaultResource: (ctx, client, oneOf) => oneOf,
      useGrantedResource: () => false,
      getResourceServerInfo(ctx, indicator, client) {
        if (!RESOURCE_SERVERS.includes(indicator)) throw new errors.InvalidTarget();
        if (client.clientId === 'm2m-opaque') {
          return { scope: MCP_SCOPES.join(' '), audience: indicator, accessTokenFormat: 'opaque' };
        }
        return {
          scope: MCP_SCOPES.join(' '),
          audience: indicator,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Refresh tokens for every client allowed the refresh grant (rotated for public clients by
  // the default rotateRefreshToken policy), whether or not it asked for offline_access.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  async extraTokenClaims(ctx, token) {
    if (token.kind === 'ClientCredentials') {
      const client = MACHINE_CLIENTS.find((c) => c.client_id === token.clientId);
      return client ? { roles: client.roles } : undefined;
    }
    const user = USERS[token.accountId];
    return user ? { roles: user.roles } : undefined;
  },
  async findAccount(ctx, sub) {
    if (!USERS[sub]) return undefined;
    return { accountId: sub, claims: async () => ({ sub }) };
  },
  formats: {
    customizers: {
      async jwt(ctx, token, jwt) {
        if (PROFILE.shape) PROFILE.shape(jwt.payload);
      },
    },
  },
  ttl: {
    AccessToken: USER_TOKEN_TTL,
    ClientCredentials: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Grant: 3600,
    Session: 3600,
    RefreshToken: 3600,
  },
  async renderError(ctx, out) {
    ctx.type = 'text/plain';
    ctx.body = `idp error: ${JSON.stringify(out)}\n`;
  },
};

const provider = new Provider(ISSUER, configuration);

// Registered clients are public or confidential web/native apps; machine access stays with
// the clients configured above (and their roles).
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/reg') {
    let body;
    try { body = JSON.parse(await readBody(ctx.req)); } catch { body = undefined; }
    const grants = body?.grant_types ?? ['authorization_code'];
    if (!Array.isArray(grants) || grants.some((g) => !['authorization_code', 'refresh_token'].includes(g))) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_client_metadata', error_description: 'only the authorization_code and refresh_token grants may be registered' };
      return;
    }
    ctx.request.body = body; // already read: oidc-provider takes the parsed body from here
  }
  return next();
});

// ------------------------------------------------------------- interactions ---
// GET /interaction/:uid shows a login or a consent form; the forms post back here.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(?:\/(login|confirm))?$/);
  if (!match) return next();
  const [, uid, action] = match;
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');
  const { prompt, params } = details;

  if (ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = prompt.name === 'login' ? loginPage(uid, params) : consentPage(uid, params, prompt.details);
    return;
  }
  const form = new URLSearchParams(await readBody(ctx.req));

  if (action === 'login') {
    const username = form.get('username');
    if (!USERS[username] || form.get('password') !== username) {
      ctx.type = 'html';
      ctx.body = loginPage(uid, params, 'Wrong username or password.');
      return;
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
    return ctx.redirect(to);
  }

  // Consent: grant the checked scopes, reject the others.
  const approved = new Set(form.getAll('scope'));
  const { missingOIDCScope = [], missingResourceScopes = {} } = prompt.details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  const split = (scopes) => [scopes.filter((s) => approved.has(s) || !MCP_SCOPES.includes(s)), scopes.filter((s) => !approved.has(s) && MCP_SCOPES.includes(s))];
  const [oidcYes, oidcNo] = split(missingOIDCScope);
  if (oidcYes.length) grant.addOIDCScope(oidcYes.join(' '));
  if (oidcNo.length) grant.rejectOIDCScope(oidcNo.join(' '));
  for (const [indicator, scopes] of Object.entries(missingResourceScopes)) {
    const [yes, no] = split(scopes);
    if (yes.length) grant.addResourceScope(indicator, yes.join(' '));
    if (no.length) grant.rejectResourceScope(indicator, no.join(' '));
  }
  const grantId = await grant.save();
  const consent = details.grantId ? {} : { grantId };
  const to = await provider.interactionResult(ctx.req, ctx.res, { consent }, { mergeWithLastSubmission: true });
  return ctx.redirect(to);
});

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, params, problem = '') {
  return `<!doctype html><title>Sign in</title><h1>Sign in to ${escape(params.client_id)}</h1>
<p>${escape(problem)}</p>
<form method="post" action="${MOUNT}/interaction/${escape(uid)}/login">
<input name="username" placeholder="username"> <input name="password" type="password" placeholder="password">
<button type="submit">Sign in</button></form>`;
}

function consentPage(uid, params, details) {
  const requested = String(params.scope || '').split(' ').filter((s) => MCP_SCOPES.includes(s));
  const boxes = requested.map((s) => `<label><input type="checkbox" name="scope" value="${escape(s)}" checked> ${escape(s)}</label><br>`).join('\n');
  return `<!doctype html><title>Consent</title><h1>${escape(params.client_id)} asks for access to ${escape(params.resource || 'your account')}</h1>
<form method="post" action="${MOUNT}/interaction/${escape(uid)}/confirm">
${boxes}
<button type="submit">Allow</button></form>`;
}

// -------------------------------------------------------------------- serve ---
// Under a path (MOUNT), each request's path is shortened by it and oidc-provider told where it
// is mounted (through originalUrl), so that the URLs it publishes include the path.
const callback = provider.callback();
const server = createServer((req, res) => {
  if (MOUNT) {
    if (req.url !== MOUNT && !req.url.startsWith(`${MOUNT}/`)) {
      res.statusCode = 404;
      return res.end('not under the issuer\'s path\n');
    }
    req.originalUrl = req.url;
    req.url = req.url.slice(MOUNT.length) || '/';
  }
  return callback(req, res);
}).listen(PORT, '127.0.0.1', () => {
  console.log(`idp ready ${ISSUER} kid=${key.kid}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
