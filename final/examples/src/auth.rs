//! Bearer tokens, as a user of `mprpc` would add them: a caller-side
//! interceptor that puts `authorization: Bearer <token>` in every request's
//! metadata, and a provider-side interceptor that refuses calls without a
//! known token before any handler runs.
//!
//! A token names its caller: the provider replaces the `authorization`
//! entry with `caller: <name>`, so handlers (and logs) see who called
//! without ever seeing the secret. Over plaintext TCP a token can be read
//! by anyone on the path: use it together with TLS (`[tls]`), as the
//! book's chapter on TLS shows.

use std::path::Path;

use mprpc::{ClientCall, ClientInterceptor, ErrorCode, ServerCall, ServerInterceptor, Status};

/// The metadata key of the credential, as in HTTP.
pub const AUTHORIZATION: &str = "authorization";
/// The metadata key under which handlers find the authenticated caller.
pub const CALLER: &str = "caller";

// ANCHOR: require_bearer
/// Provider side: only calls bearing one of the known tokens get through.
#[derive(Clone)]
pub struct RequireBearer {
    /// (caller name, token).
    tokens: Vec<(String, String)>,
}

impl std::fmt::Debug for RequireBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the tokens are secrets.
        let names: Vec<_> = self.tokens.iter().map(|(n, _)| n).collect();
        f.debug_struct("RequireBearer")
            .field("callers", &names)
            .finish()
    }
}

impl RequireBearer {
    /// Accepts `tokens`, given as (caller name, token) pairs.
    pub fn new(tokens: impl IntoIterator<Item = (String, String)>) -> RequireBearer {
        RequireBearer {
            tokens: tokens.into_iter().collect(),
        }
    }

    /// Reads `name token` pairs, one per line (blank lines and `#` comments
    /// ignored), from a file only the provider's account can read.
    pub fn from_file(path: &Path) -> Result<RequireBearer, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading tokens from {}: {e}", path.display()))?;
        let mut tokens = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(char::is_whitespace) {
                Some((name, token)) if !token.trim().is_empty() => {
                    tokens.push((name.to_string(), token.trim().to_string()));
                }
                _ => {
                    return Err(format!(
                        "{} line {}: expected `name token`",
                        path.display(),
                        n + 1
                    ));
                }
            }
        }
        Ok(RequireBearer { tokens })
    }

    /// The caller whose token `presented` is. Every known token is compared
    /// in full, in time that does not depend on where the bytes differ, so
    /// the answer's timing tells an attacker nothing about a token.
    fn caller(&self, presented: &str) -> Option<&str> {
        let mut found = None;
        for (name, token) in &self.tokens {
            if constant_time_eq(token.as_bytes(), presented.as_bytes()) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

impl ServerInterceptor for RequireBearer {
    fn intercept(&self, call: &mut ServerCall) -> Result<(), Status> {
        let Some(value) = call.metadata.remove(AUTHORIZATION) else {
            let why = if call.legacy {
                "the course's format carries no credentials"
            } else {
                "no authorization metadata"
            };
            return Err(Status::new(
                ErrorCode::Unauthenticated,
                format!("{}.{}: {why}", call.service, call.method),
            ));
        };
        let caller = value
            .strip_prefix("Bearer ")
            .and_then(|token| self.caller(token));
        match caller {
            Some(name) => call.metadata.insert(CALLER, name),
            // Never echo the presented value: it may be a real token
            // sent to the wrong provider.
            None => Err(Status::new(
                ErrorCode::Unauthenticated,
                format!("{}.{}: unknown bearer token", call.service, call.method),
            )),
        }
    }
}
// ANCHOR_END: require_bearer

/// Equality of two byte strings in time that depends only on their
/// lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ANCHOR: attach_bearer
/// Caller side: sends `authorization: Bearer <token>` with every call.
#[derive(Clone)]
pub struct AttachBearer {
    /// The header value, made once.
    value: String,
}

impl std::fmt::Debug for AttachBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttachBearer(<redacted>)")
    }
}

impl AttachBearer {
    /// Sends `token`.
    pub fn new(token: &str) -> AttachBearer {
        AttachBearer {
            value: format!("Bearer {token}"),
        }
    }
}

impl ClientInterceptor for AttachBearer {
    fn intercept(&self, call: &mut ClientCall) -> Result<(), Status> {
        call.metadata.insert(AUTHORIZATION, self.value.as_str())
    }
}
// ANCHOR_END: attach_bearer
