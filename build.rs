//! How release builds of the server binary are linked; no Rust code is generated. Two linker options,
//! both about the memory the running server keeps resident (README, Performance):
//!
//! - The functions it runs (start-up and the request paths) come first in the code, in the order
//!   of `benches/symbol-order.txt` (made by `benches/symbol-order.sh`). Spread over the whole
//!   executable they made the kernel map about 7 MiB of code; packed, about 2.6 MiB.
//!   Only the layout changes: every function is still linked. A stale list (after a dependency or
//!   toolchain update changes symbol names) orders fewer functions, silently; regenerate it then.
//! - Relative relocations are packed (`DT_RELR`): 0.5 MiB of relocation records become 6 KiB.
//!   The binary then needs glibc 2.36 or newer, so this is only done when the build machine has
//!   it and a probe binary linked that way runs here.
//!
//! Each option is first tried on an empty program with the same compiler, target, flags and
//! linker, and left out if it refuses it: LLD (Rust's default linker for x86_64 Linux since 1.90)
//! and mold take both, GNU ld (some distributions' Rust) refuses the order and, before 2.38, the
//! packing. `MCP_AUTH_PLAIN_LINK=1` at build time turns both off (for example to build on a new
//! glibc for a machine with an older one).

use std::{env, path::PathBuf, process::Command};

const ORDER_FILE: &str = "benches/symbol-order.txt";

fn main() {
    println!("cargo::rerun-if-changed={ORDER_FILE}");
    println!("cargo::rerun-if-env-changed=MCP_AUTH_PLAIN_LINK");
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    let plain = env::var_os("MCP_AUTH_PLAIN_LINK").is_some_and(|value| value != "0");
    // Debug builds keep the default link: the layout is about memory in production.
    if plain || var("PROFILE") != "release" {
        return;
    }
    let order_file = PathBuf::from(var("CARGO_MANIFEST_DIR")).join(ORDER_FILE);
    let ordering =
        [format!("-Wl,--symbol-ordering-file={}", order_file.display()), "-Wl,--no-warn-symbol-ordering".into()];
    let mut link_args = Vec::new();
    if probe(&ordering, false) {
        link_args.extend(ordering);
    }
    let native = var("HOST") == var("TARGET");
    let glibc = command_output("getconf", &["GNU_LIBC_VERSION"]);
    if native && glibc_at_least(&glibc, (2, 36)) {
        link_args.push("-Wl,-z,pack-relative-relocs".into());
        if !probe(&link_args, true) {
            link_args.pop();
        }
    }
    for arg in link_args {
        println!("cargo::rustc-link-arg-bins={arg}");
    }
}

fn var(name: &str) -> String {
    env::var(name).unwrap_or_default()
}

/// Whether an empty program links with these extra linker arguments, compiled as the binary will
/// be (compiler, target, RUSTFLAGS, configured linker), and, if `run`, whether it then runs.
fn probe(link_args: &[String], run: bool) -> bool {
    let out_dir = PathBuf::from(var("OUT_DIR"));
    let source = out_dir.join("link_probe.rs");
    let binary = out_dir.join("link_probe");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    rustc.arg("--target").arg(var("TARGET")).arg("-o").arg(&binary).arg(&source);
    rustc.args(var("CARGO_ENCODED_RUSTFLAGS").split('\x1f').filter(|flag| !flag.is_empty()));
    if let Ok(linker) = env::var("RUSTC_LINKER") {
        rustc.arg(format!("-Clinker={linker}"));
    }
    rustc.args(link_args.iter().map(|arg| format!("-Clink-arg={arg}")));
    let linked = rustc.output().is_ok_and(|output| output.status.success());
    linked && (!run || Command::new(&binary).status().is_ok_and(|status| status.success()))
}

/// Whether `getconf GNU_LIBC_VERSION` ("glibc 2.36") names at least this version.
fn glibc_at_least(output: &str, at_least: (u32, u32)) -> bool {
    let Some(version) = output.trim().strip_prefix("glibc ") else { return false };
    let mut numbers = version.split('.').map(|part| part.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= at_least,
        _ => false,
    }
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}
