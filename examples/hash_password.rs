//! Prints the Argon2id hash (PHC string) of a password or client secret, for `password_hash` in
//! `[[issuer.users]]` and `secret_hash` in `[[issuer.clients]]` (tutorial step 10).
//!
//! ```sh
//! cargo run -q --example hash_password --features issuer            # reads one line from stdin
//! cargo run -q --example hash_password --features issuer -- 's3cret' # or takes it as an argument
//! ```
//!
//! Reading from stdin keeps the password out of the shell history. Each run draws a new salt,
//! so the same password hashes differently every time; any of the hashes verifies it.

use std::io::BufRead;
use std::process::ExitCode;

fn main() -> ExitCode {
    let password = match std::env::args().nth(1) {
        Some(password) => password,
        None => {
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_err() {
                eprintln!("hash_password: cannot read stdin");
                return ExitCode::from(2);
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        eprintln!("hash_password: empty password");
        return ExitCode::from(2);
    }
    println!("{}", mcp_auth_server::issuer::hash_password(&password));
    ExitCode::SUCCESS
}
