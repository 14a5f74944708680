// The person at the browser: follows an authorization URL to the identity provider, signs in
// on its login form and answers its consent form, over plain HTTP, and stops at the redirect
// back to the client, whose URL (with `code`, `state` and `iss`) it returns.
//
// Library:  await signIn(authorizationUrl, { username, password, approve })
// Command:  node user.mjs AUTHORIZATION_URL [USERNAME] [APPROVE] [PASSWORD]
//           prints {"callbackUrl", "login", "consent", "approved"} as JSON
//           (APPROVE = "all" or space-separated scopes to tick; PASSWORD defaults to USERNAME)
//
// It reads only what a person would see: the form's action and the consent's checkboxes.
// Each sign-in uses a fresh cookie jar, like a private browser window.

const MAX_STEPS = 12;

export async function signIn(authorizationUrl, { username = 'alice', password = username, approve = 'all' } = {}) {
  const redirectUri = new URL(authorizationUrl).searchParams.get('redirect_uri');
  if (!redirectUri) throw new Error('the authorization URL has no redirect_uri');
  const cookies = new Map();
  const seen = { login: 0, consent: 0, approved: [] };

  let request = { url: authorizationUrl, method: 'GET' };
  for (let step = 0; step < MAX_STEPS; step++) {
    const response = await fetch(request.url, {
      method: request.method,
      redirect: 'manual',
      headers: {
        cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(request.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: request.body,
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, request.url).href;
      if (next.startsWith(redirectUri)) return { callbackUrl: next, ...seen };
      request = { url: next, method: 'GET' };
      continue;
    }
    const page = await response.text();
    if (response.status !== 200) throw new Error(`identity provider answered ${response.status}: ${page.slice(0, 300)}`);
    const action = page.match(/<form[^>]*action="([^"]+)"/)?.[1];
    if (!action) throw new Error(`no form on the page: ${page.slice(0, 300)}`);
    const form = new URLSearchParams();
    if (/name="password"/.test(page)) {
      if (seen.login++) throw new Error('the login form came back (wrong credentials?)');
      form.set('username', username);
      form.set('password', password);
    } else {
      seen.consent++;
      const offered = [...page.matchAll(/type="checkbox" name="scope" value="([^"]+)"/g)].map((m) => m[1]);
      const wanted = approve === 'all' ? offered : offered.filter((s) => approve.split(' ').includes(s));
      for (const scope of wanted) form.append('scope', scope);
      seen.approved = wanted;
    }
    request = { url: new URL(action.replace(/&amp;/g, '&'), request.url).href, method: 'POST', body: form.toString() };
  }
  throw new Error(`no redirect back to ${redirectUri} after ${MAX_STEPS} steps`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, username = 'alice', approve = 'all', password = username] = process.argv.slice(2);
  signIn(url, { username, password, approve })
    .then((result) => console.log(JSON.stringify(result)))
    .catch((e) => { console.error(`user.mjs: ${e.message}`); process.exit(1); });
}
