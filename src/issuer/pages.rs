//! The pages a person sees (feature `issuer`): sign-in, consent, and errors, rendered by
//! minijinja from the templates in `templates/`. No JavaScript, and no hand-made HTML escaping:
//! the templates are `.html`, so the engine escapes every `{{ value }}` for HTML, and none of
//! them turns that off.
//!
//! Accessibility: one `<h1>` per page, every input has a `<label>`, errors are announced
//! (`role="alert"`) and tied to the fields (`aria-describedby`), focus is always visible, and the
//! forms work with the keyboard alone (Tab, Enter). Pages are never cached, never framed
//! (clickjacking a consent button is an attack), and allow no script at all.

use std::sync::OnceLock;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// The templates, compiled into the binary: the server needs no files at run time.
const TEMPLATES: [(&str, &str); 4] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("consent.html", include_str!("templates/consent.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// What a person sees if a template fails to render (a bug that the tests of this module catch).
const FALLBACK: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n\
    <body>\n<main>\n<h1>Error</h1>\n<p role=\"alert\">This page cannot be shown.</p>\n</main>\n</body>\n</html>\n";

/// The template environment, parsed once (the issuer calls this at start-up).
pub(super) fn templates() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        // HTML autoescape is minijinja's default for `.html` names: nothing to switch on.
        let mut env = Environment::new();
        // A misspelt variable is an error (a test fails), not an empty string on a page.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Block tags on lines of their own leave no blank lines behind; a page ends with a newline.
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(true).build();
        env.set_syntax(syntax.expect("the default delimiters are valid"));
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("the page templates parse (the tests render each)");
        }
        env
    })
}

/// Renders template `name` with `page` as its context.
fn render(name: &str, page: impl Serialize) -> String {
    let rendered = templates().get_template(name).and_then(|template| template.render(Serde(page)));
    rendered.unwrap_or_else(|error| {
        tracing::error!(template = name, %error, "a page template failed to render");
        FALLBACK.to_owned()
    })
}

/// What the sign-in page shows.
#[derive(Serialize)]
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
    render("login.html", page)
}

/// What the consent page shows.
#[derive(Serialize)]
pub struct ConsentPage<'a> {
    pub action: &'a str,
    pub request: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub client_verified: bool,
    /// The host the answer is sent to (the spec requires showing it).
    /// Where the answer goes: `website` (a host), `this_computer` (a loopback address and port)
    /// or `app` (a private-use scheme), said as what it is.
    pub destination_kind: &'a str,
    pub destination: &'a str,
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
    render("consent.html", page)
}

/// A page for a request that cannot go back to the application (unknown client, bad redirect
/// URI, expired or forged form): the person reads what happened, and nothing is redirected.
pub fn error(title: &str, message: &str) -> String {
    #[derive(Serialize)]
    struct ErrorPage<'a> {
        title: &'a str,
        message: &'a str,
    }
    render("error.html", ErrorPage { title, message })
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

    const EVIL: &str = "<script>alert(1)</script>\"'&";
    /// `EVIL` as the engine writes it: markup, both quotes and `&` as entities (`/` too).
    const EVIL_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;&#x27;&amp;";

    fn login_page(error: Option<&str>) -> String {
        login(&LoginPage {
            action: "/authorize/login",
            request: "r",
            csrf: "c",
            client_name: EVIL,
            client_verified: false,
            resource_name: EVIL,
            username: EVIL,
            error,
        })
    }

    fn consent_page(withheld: &[String]) -> String {
        consent(&ConsentPage {
            action: EVIL,
            request: EVIL,
            csrf: EVIL,
            client_name: EVIL,
            client_id: EVIL,
            client_verified: false,
            destination_kind: "app",
            destination: EVIL,
            user_name: EVIL,
            username: EVIL,
            resource: EVIL,
            granted: &[(EVIL.to_owned(), EVIL.to_owned())],
            withheld,
        })
    }

    /// No markup, no bare quote and no bare `&` from `EVIL` anywhere on `page`, and `EVIL` itself
    /// shown escaped.
    fn assert_escaped(page: &str) {
        assert!(!page.contains("<script") && !page.contains("\"'"), "{page}");
        assert!(page.contains(EVIL_ESCAPED), "{page}");
        assert!(!page.contains(FALLBACK), "the template rendered: {page}");
    }

    #[test]
    fn a_client_name_with_markup_and_quotes_is_escaped_on_both_pages() {
        assert_escaped(&login_page(Some(EVIL)));
        assert_escaped(&consent_page(&[EVIL.to_owned()]));
    }

    #[test]
    fn every_outside_value_on_the_consent_page_is_escaped() {
        let page = consent_page(&[EVIL.to_owned()]);
        // Scope, description, withheld scope, client name and ID, user, username, resource, the
        // destination (an app's scheme: where the answer goes, and the note about it); then
        // action, request and csrf in attributes.
        assert_eq!(page.matches(EVIL_ESCAPED).count(), 13, "{page}");
        assert!(page.contains(&format!("action=\"{EVIL_ESCAPED}\"")), "{page}");
    }

    #[test]
    fn every_outside_value_on_the_sign_in_page_is_escaped() {
        let page = login_page(Some(EVIL));
        // Client name, resource name, error, and the username in its attribute.
        assert_eq!(page.matches(EVIL_ESCAPED).count(), 4, "{page}");
        assert!(page.contains(&format!("name=\"username\" value=\"{EVIL_ESCAPED}\"")), "{page}");
    }

    #[test]
    fn an_error_page_escapes_its_title_and_message() {
        let page = error(EVIL, r#"<a href="x" onclick='y'>&</a>"#);
        assert!(page.contains(&format!("<title>{EVIL_ESCAPED}</title>")), "{page}");
        assert!(page.contains(&format!("<h1>{EVIL_ESCAPED}</h1>")), "{page}");
        assert!(
            page.contains(
                "<p role=\"alert\">&lt;a href=&quot;x&quot; onclick=&#x27;y&#x27;&gt;&amp;&lt;&#x2f;a&gt;</p>"
            ),
            "{page}"
        );
    }

    #[test]
    fn a_sign_in_error_is_announced_and_tied_to_both_fields() {
        let page = login_page(Some("Wrong username or password."));
        assert!(page.contains("<p class=\"alert\" role=\"alert\" id=\"error\">Wrong username or password.</p>"));
        assert_eq!(page.matches("aria-describedby=\"error\" aria-invalid=\"true\"").count(), 2, "{page}");
        let page = login_page(None);
        assert!(!page.contains("role=\"alert\"") && !page.contains("aria-describedby"), "{page}");
    }

    #[test]
    fn every_page_has_one_heading_labelled_fields_and_no_script() {
        let pages = [login_page(None), consent_page(&[]), error("Unknown application", "No.")];
        for page in &pages {
            assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">") && page.ends_with("</html>\n"), "{page}");
            assert_eq!(page.matches("<h1>").count(), 1, "{page}");
            assert!(!page.contains("<script") && !page.contains("\n\n"), "{page}");
        }
        assert!(pages[0].contains("<label for=\"username\">Username</label>"));
        assert!(pages[0].contains("<label for=\"password\">Password</label>"));
        assert!(pages[0].contains("<title>Sign in</title>") && pages[1].contains("<title>Allow access?</title>"));
        assert!(!pages[1].contains("not available to your account"), "nothing withheld: {}", pages[1]);
    }
}
