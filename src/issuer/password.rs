//! Password and secret hashes of the authorization server (feature `issuer`): Argon2id PHC strings,
//! made with the recommended parameters, checked in constant time. A leaf module: the accounts
//! and the configured clients both use it.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// The published passwords of the development users and client of `config/dev.toml`. A user or
/// client whose hash accepts one of them is a development account, whatever its name.
pub const DEV_PASSWORDS: [&str; 4] = ["wonderland", "builder", "guest", "dev-service-secret"];

/// Hashes `password` into an Argon2id PHC string with the recommended parameters and a random salt.
pub fn hash_password(password: &str) -> String {
    Argon2::default().hash_password(password.as_bytes()).expect("Argon2 with default parameters hashes").to_string()
}

/// What an unknown user's password is checked against, so that a wrong user name takes as long
/// as a wrong password. A constant with the parameters of [`hash_password`] rather than a hash made
/// at start-up: that would cost every start ~30 ms and a 19 MiB allocation.
pub(super) const DECOY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$DvDYqPSYgULQpq9HTsbwZQ$ES5iE1cYgYoEH6Ce6C/C6dB11JYmP2FuS7XLMlREfkI";

/// Checks that `hash` is an Argon2 PHC string.
pub fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| format!("is not a PHC string ({e}); make one with the hash_password example"))?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(format!("uses {}, not Argon2", parsed.algorithm));
    }
    Ok(())
}

/// Whether `password` matches `hash` (constant time in the password, as Argon2 is).
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_their_password_only() {
        let hash = hash_password("correct horse");
        assert!(check_hash(&hash).is_ok());
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "Correct horse"));
        assert!(check_hash("plaintext").is_err());
        assert!(!verify_password("plaintext", "plaintext"));
    }

    #[test]
    fn the_decoy_costs_what_a_real_hash_costs() {
        // Same algorithm, version and parameters as a hash made now: the part before the salt.
        let params = |phc: &str| phc.rsplitn(3, '$').nth(2).map(str::to_owned);
        assert_eq!(params(DECOY), params(&hash_password("any")));
        assert!(check_hash(DECOY).is_ok());
    }
}
