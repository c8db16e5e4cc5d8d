//! Passwords: kept out of `Debug` output and masked in every log line.
//!
//! A password travels from the configuration ([`crate::config`]) to the login
//! ([`crate::ftp`]) and must never reach a log, a panic message or `{:?}` on the way; the
//! FTP trace of suppaftp writes `PASS <password>` in clear. This module is a leaf that both
//! sides import, so neither imports the other for it.

use std::fmt;

/// A password. Its `Debug` never shows it, and it has no `Display`.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Masks passwords in a log line: the argument of any `PASS` command, and the password
/// itself wherever it appears (when it is long enough not to mask ordinary words).
pub fn mask_secrets(line: &str, secret: Option<&String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest
        .as_bytes()
        .windows(5)
        .position(|w| w.eq_ignore_ascii_case(b"PASS "))
    {
        out.push_str(&rest[..i + 5]);
        let after = &rest[i + 5..];
        let end = after
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\\')
            .unwrap_or(after.len());
        out.push_str("****");
        rest = &after[end..];
    }
    out.push_str(rest);
    match secret {
        Some(s) if s.len() >= 4 => out.replace(s.as_str(), "****"),
        _ => out,
    }
}

#[cfg(test)]
mod mask_tests {
    use super::mask_secrets;

    #[test]
    fn pass_arguments_and_the_password_itself_are_masked() {
        let s = "hunter22".to_string();
        assert_eq!(
            mask_secrets("CC OUT: PASS hunter22", Some(&s)),
            "CC OUT: PASS ****"
        );
        assert_eq!(
            mask_secrets("CC OUT: \"pass hunter22\\r\\n\"", None),
            "CC OUT: \"pass ****\\r\\n\""
        );
        assert_eq!(mask_secrets("login hunter22 x", Some(&s)), "login **** x");
        assert_eq!(mask_secrets("nothing here", Some(&s)), "nothing here");
    }
}
