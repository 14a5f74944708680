// Signs in as alice and consents on the embedded authorization server in a real browser (Debian's
// Chromium, headless, driven by playwright-core), with the keyboard only and JavaScript switched
// off, then checks the redirect to the client carries `code`, `state` and `iss`, and that the code
// buys a token. Screenshots of both pages go to target/browser/ (CI keeps them as artifacts).
//
//   node login_consent.mjs BASE_URL [USERNAME PASSWORD]
//
// The server must be running at BASE_URL (see tests/browser/run.sh). CHROMIUM overrides the
// browser binary (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const [base = "http://127.0.0.1:3000", username = "alice", password = "wonderland"] = process.argv.slice(2);
const shots = resolve(dirname(fileURLToPath(import.meta.url)), "../../target/browser");
mkdirSync(shots, { recursive: true });
const callbackPort = Number(process.env.CALLBACK_PORT || 4998);
const redirectUri = `http://127.0.0.1:${callbackPort}/callback`;
const resource = `${base}/mcp`;

function check(condition, message) {
  if (!condition) throw new Error(message);
  console.log(`ok - ${message}`);
}

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");

// The client's loopback listener, as a native MCP host runs one (RFC 8252).
let callback = null;
const listener = createServer((request, response) => {
  // Only the redirect itself: the browser asks for /favicon.ico afterwards.
  if (!request.url.startsWith("/callback")) {
    response.writeHead(404).end();
    return;
  }
  callback = `http://127.0.0.1:${callbackPort}${request.url}`;
  response.writeHead(200, { "content-type": "text/html" });
  response.end("<!doctype html><title>Callback</title><p>Received.</p>");
});

async function main() {
  await new Promise((ready) => listener.listen(callbackPort, "127.0.0.1", ready));
  // The client side, as an MCP host does it: metadata, registration, PKCE.
  const metadata = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json();
  check(metadata.code_challenge_methods_supported?.includes("S256"), "metadata advertises PKCE S256");
  const registration = await fetch(metadata.registration_endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "Browser test",
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
    }),
  });
  check(registration.status === 201, "the client registers (RFC 7591)");
  const { client_id: clientId } = await registration.json();
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const state = b64url(randomBytes(16));
  const authorize = new URL(metadata.authorization_endpoint);
  for (const [name, value] of Object.entries({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
    resource,
    scope: "mcp:read mcp:tools",
  })) {
    authorize.searchParams.set(name, value);
  }

  const profile = mkdtempSync(join(tmpdir(), "mcp-browser-"));
  // A fresh, empty profile for every run (launchPersistentContext passes it as --user-data-dir).
  // JavaScript off: the pages must work as plain HTML forms.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    javaScriptEnabled: false,
    viewport: { width: 800, height: 720 },
  });
  try {
    const page = await context.newPage();
    await page.goto(authorize.toString());
    check((await page.title()) === "Sign in", "the sign-in page opens");
    check((await page.locator("h1").innerText()) === "Sign in", "it has one heading that says what it is");
    check(await page.getByLabel("Username").isVisible(), "the username field has a label");
    check(await page.getByLabel("Password").isVisible(), "the password field has a label");
    await page.screenshot({ path: join(shots, "login.png"), fullPage: true });

    // Keyboard only: the username field has the focus, Tab moves to the password, Enter submits.
    const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim());
    check((await focused()) === "username", "the username field has the focus");
    await page.keyboard.type(username);
    await page.keyboard.press("Tab");
    check((await focused()) === "password", "Tab moves to the password field");
    await page.keyboard.type(password);
    await Promise.all([page.waitForURL(/\/authorize\/consent/), page.keyboard.press("Enter")]);

    check((await page.title()) === "Allow access?", "the consent page follows");
    const text = await page.locator("main").innerText();
    check(text.includes("Browser test"), "it names the application");
    check(text.includes("mcp:read") && text.includes("mcp:tools"), "it lists the scopes asked for");
    check(text.includes("127.0.0.1"), "it shows where the answer goes");
    await page.screenshot({ path: join(shots, "consent.png"), fullPage: true });

    await page.keyboard.press("Tab");
    check((await focused()) === "Allow", "Tab reaches the Allow button first");
    await Promise.all([page.waitForURL(`${redirectUri}**`), page.keyboard.press("Enter")]);

    check(callback !== null, "the browser is sent to the client's redirect URI");
    const answer = new URL(callback).searchParams;
    check(answer.get("code")?.length > 0, `the redirect carries a code (${callback})`);
    check(answer.get("state") === state, "the redirect carries our state");
    check(answer.get("iss") === metadata.issuer, "the redirect carries iss (RFC 9207)");

    const response = await fetch(metadata.token_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: clientId,
        code: answer.get("code"),
        redirect_uri: redirectUri,
        code_verifier: verifier,
        resource,
      }),
    });
    const tokens = await response.json();
    check(response.status === 200 && typeof tokens.access_token === "string", "the code buys an access token");
    check(tokens.scope === "mcp:read mcp:tools", `the token has the scopes consented to (${tokens.scope})`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    listener.close();
  }
  console.log(`screenshots: ${join(shots, "login.png")}, ${join(shots, "consent.png")}`);
}

main().catch((error) => {
  console.error(`not ok - ${error.message}`);
  listener.close();
  process.exit(1);
});
