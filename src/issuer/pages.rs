//! The pages a person sees (feature `issuer`): sign-in, consent, and errors. Hand-written HTML,
//! no JavaScript, no template engine: every value from outside goes through [`escape`].
//!
//! Accessibility: one `<h1>` per page, every input has a `<label>`, errors are announced
//! (`role="alert"`) and tied to the fields (`aria-describedby`), focus is always visible, and the
//! forms work with the keyboard alone (Tab, Enter). Pages are never cached, never framed
//! (clickjacking a consent button is an attack), and allow no script at all.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// `text` made safe for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;line-height:1.5;margin:0;background:#f4f4f6;color:#1a1a1a}\
main{max-width:32rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;border:1px solid #ccc;border-radius:8px}\
h1{font-size:1.5rem;margin-top:0}h2{font-size:1.1rem}\
label{display:block;font-weight:600;margin-top:1rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #666;border-radius:4px}\
button{margin-top:1.25rem;margin-right:.5rem;padding:.6rem 1.4rem;font-size:1rem;border-radius:4px;border:1px solid #1a4fa0;background:#1a4fa0;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#1a4fa0}\
:focus-visible{outline:3px solid #e8a317;outline-offset:2px}\
.alert{border-left:4px solid #b00020;background:#fdecee;padding:.5rem .75rem}\
.note{border-left:4px solid #e8a317;background:#fff8e6;padding:.5rem .75rem}\
dt{font-weight:600}dd{margin:0 0 .5rem 0;word-break:break-all}code{word-break:break-all}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

/// What the sign-in page shows.
pub struct LoginPage<'a> {
    pub action: &'a str,
    pub request: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    /// Whether the client's name comes from this server's configuration.
    pub client_verified: bool,
    pub resource_name: &'a str,
    /// Pre-filled after a failed attempt.
    pub username: &'a str,
    pub error: Option<&'a str>,
}

/// The sign-in page.
pub fn login(page: &LoginPage<'_>) -> String {
    let (alert, described) = match page.error {
        Some(error) => (
            format!("<p class=\"alert\" role=\"alert\" id=\"error\">{}</p>\n", escape(error)),
            " aria-describedby=\"error\" aria-invalid=\"true\"",
        ),
        None => (String::new(), ""),
    };
    let body = format!(
        "<h1>Sign in</h1>\n\
         <p><strong>{client}</strong>{unverified} wants to use <strong>{resource}</strong> on your behalf. \
         Sign in to continue.</p>\n{alert}\
         <form method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <label for=\"username\">Username</label>\n\
         <input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" autocomplete=\"username\" \
         autocapitalize=\"none\" spellcheck=\"false\" required autofocus{described}>\n\
         <label for=\"password\">Password</label>\n\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required{described}>\n\
         <button type=\"submit\">Sign in</button>\n\
         </form>\n",
        client = escape(page.client_name),
        unverified = if page.client_verified { "" } else { " (a name the application gives itself)" },
        resource = escape(page.resource_name),
        action = escape(page.action),
        request = escape(page.request),
        csrf = escape(page.csrf),
        username = escape(page.username),
    );
    layout("Sign in", &body)
}

/// What the consent page shows.
pub struct ConsentPage<'a> {
    pub action: &'a str,
    pub request: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub client_verified: bool,
    /// The host the answer is sent to (the spec requires showing it).
    pub redirect_host: &'a str,
    pub redirect_is_local: bool,
    pub user_name: &'a str,
    pub username: &'a str,
    pub resource: &'a str,
    /// Scopes to grant, with a description each.
    pub granted: &'a [(String, String)],
    /// Scopes asked for that this user's role does not permit.
    pub withheld: &'a [String],
}

/// The consent page: who asks, for what, where the answer goes, and Allow / Deny.
pub fn consent(page: &ConsentPage<'_>) -> String {
    let granted: String = page
        .granted
        .iter()
        .map(|(scope, description)| format!("<li><code>{}</code>: {}</li>\n", escape(scope), escape(description)))
        .collect();
    let withheld = if page.withheld.is_empty() {
        String::new()
    } else {
        let items: String = page.withheld.iter().map(|s| format!("<li><code>{}</code></li>\n", escape(s))).collect();
        format!("<h2>Asked for, but not available to your account</h2>\n<ul>\n{items}</ul>\n")
    };
    let local = if page.redirect_is_local {
        "<p class=\"note\">The answer goes to a program on this computer (a local address). Allow only if you \
         started this application yourself just now.</p>\n"
    } else {
        ""
    };
    let unverified = if page.client_verified {
        ""
    } else {
        "<p class=\"note\">This server has not verified this application: its name is what it says about itself. \
         Check the client ID and where the answer goes.</p>\n"
    };
    let body = format!(
        "<h1>Allow access?</h1>\n\
         <p>Signed in as <strong>{user_name}</strong> ({username}).</p>\n\
         <p><strong>{client}</strong> wants to use <strong>{resource}</strong> on your behalf.</p>\n\
         <h2>It will be able to</h2>\n<ul>\n{granted}</ul>\n{withheld}\
         <h2>About this application</h2>\n<dl>\n\
         <dt>Client ID</dt><dd><code>{client_id}</code></dd>\n\
         <dt>Your answer is sent to</dt><dd><code>{host}</code></dd>\n</dl>\n{unverified}{local}\
         <form method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n\
         </form>\n",
        user_name = escape(page.user_name),
        username = escape(page.username),
        client = escape(page.client_name),
        resource = escape(page.resource),
        client_id = escape(page.client_id),
        host = escape(page.redirect_host),
        action = escape(page.action),
        request = escape(page.request),
        csrf = escape(page.csrf),
    );
    layout("Allow access?", &body)
}

/// A page for a request that cannot go back to the application (unknown client, bad redirect
/// URI, expired or forged form): the person reads what happened, and nothing is redirected.
pub fn error(title: &str, message: &str) -> String {
    let body = format!(
        "<h1>{}</h1>\n<p role=\"alert\">{}</p>\n<p>You can close this page and start again from the application.</p>\n",
        escape(title),
        escape(message)
    );
    layout(title, &body)
}

/// An HTML response with the headers every page gets. `form_action` is the CSP `form-action`
/// source list: the consent form's answer redirects to the client, which browsers check against it.
pub fn respond(status: StatusCode, html: String, form_action: &str) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    response
}

/// An error page response.
pub fn error_response(status: StatusCode, title: &str, message: &str) -> Response {
    respond(status, error(title, message), "'none'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn every_outside_value_on_the_consent_page_is_escaped() {
        let evil = "<script>alert(1)</script>\"'";
        let page = consent(&ConsentPage {
            action: evil,
            request: evil,
            csrf: evil,
            client_name: evil,
            client_id: evil,
            client_verified: false,
            redirect_host: evil,
            redirect_is_local: true,
            user_name: evil,
            username: evil,
            resource: evil,
            granted: &[(evil.to_owned(), evil.to_owned())],
            withheld: &[evil.to_owned()],
        });
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("\"'"), "{page}");
        let page = login(&LoginPage {
            action: evil,
            request: evil,
            csrf: evil,
            client_name: evil,
            client_verified: false,
            resource_name: evil,
            username: evil,
            error: Some(evil),
        });
        assert!(!page.contains("<script"), "{page}");
    }
}
