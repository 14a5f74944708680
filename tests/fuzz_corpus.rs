//! Replays the fuzzers' committed corpus (seeds, what runs found worth keeping, and any input
//! that once crashed a target) through the same checks the fuzz targets make, on every
//! `cargo test`: a fixed crash stays fixed without the fuzzing toolchain.

#[path = "../fuzz/checks.rs"]
mod checks;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "{target} has no corpus");
}

#[test]
fn mcp_post_corpus() {
    replay("mcp_post", checks::mcp_post);
}

#[test]
fn jwt_token_corpus() {
    replay("jwt_token", checks::jwt_token);
}

#[test]
fn mcp_name_corpus() {
    replay("mcp_name", checks::mcp_name);
}

#[test]
fn request_state_corpus() {
    replay("request_state", checks::request_state);
}

#[test]
fn last_event_id_corpus() {
    replay("last_event_id", checks::last_event_id);
}

#[test]
fn issuer_http_corpus() {
    replay("issuer_http", checks::issuer_http);
}

#[test]
fn redirect_uri_corpus() {
    replay("redirect_uri", checks::redirect_uri);
}
