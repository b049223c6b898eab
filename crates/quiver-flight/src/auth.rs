//! Bearer-token authentication: read-only and read-write tokens.
//!
//! Tokens come from a file (one `TOKEN ROLE [NAME]` per line, role `ro` or `rw`, `#`
//! comments) or from an environment variable (`TOKEN:ROLE[:NAME]` entries separated by
//! commas). With no tokens configured the server is open (every caller may write): meant for
//! the embedded local default, bound to loopback.
//!
//! Tokens are kept by their blake3 hash and a presented token is looked up by its hash, so
//! the time a lookup takes does not depend on how many leading bytes of the presented token
//! match a real one (a `HashMap<String, _>` compares strings byte by byte, which leaks
//! that). The server keeps no token in memory in the clear.
//!
//! [`AuthLayer`] checks the token of every call but the handshake (which checks Basic or
//! bearer credentials itself), in front of everything the server answers — the zero-copy
//! DoGet path included — and hands the [`Caller`] to the handlers in the request's
//! extensions. A call without a valid token never reaches a handler.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{ready, Either, Ready};
use tonic::body::Body;
use tonic::metadata::MetadataMap;

use crate::error::{FlightError, Result};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    ReadOnly,
    ReadWrite,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// Recorded as the author of commits and lineage records.
    pub name: String,
}

impl Caller {
    /// Fail unless the caller may write; `what` names the refused operation.
    pub fn require_write(&self, what: &str) -> Result<()> {
        match self.role {
            Role::ReadWrite => Ok(()),
            Role::ReadOnly => Err(FlightError::PermissionDenied(format!(
                "{what} needs a read-write token; this token is read-only"
            ))),
        }
    }
}

/// The configured tokens (empty: authentication off).
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// blake3 of the token → its caller.
    map: HashMap<[u8; 32], Caller>,
}

/// The key a token is kept and looked up under.
fn token_key(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

fn parse_role(s: &str, at: &str) -> Result<Role> {
    match s.to_ascii_lowercase().as_str() {
        "ro" | "read" | "read-only" | "readonly" => Ok(Role::ReadOnly),
        "rw" | "write" | "read-write" | "readwrite" => Ok(Role::ReadWrite),
        other => Err(FlightError::Config(format!(
            "{at}: unknown role '{other}' (use 'ro' or 'rw')"
        ))),
    }
}

impl Tokens {
    /// No authentication.
    pub fn open() -> Tokens {
        Tokens::default()
    }

    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        !self.map.is_empty()
    }

    fn add(&mut self, token: &str, role: Role, name: Option<&str>, at: &str) -> Result<()> {
        if token.len() < 8 {
            return Err(FlightError::Config(format!(
                "{at}: tokens must be at least 8 characters"
            )));
        }
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| format!("token-{}", &blake3::hash(token.as_bytes()).to_hex()[..8]));
        self.map.insert(token_key(token), Caller { role, name });
        Ok(())
    }

    /// Parse a token file's contents (`TOKEN ROLE [NAME]` per line).
    pub fn parse_file(text: &str, path: &str) -> Result<Tokens> {
        let mut t = Tokens::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("{path} line {}", i + 1);
            let parts: Vec<&str> = line.split_whitespace().collect();
            t.add_entry(&parts, &at, "TOKEN ROLE [NAME]")?;
        }
        Ok(t)
    }

    /// Parse `TOKEN:ROLE[:NAME]` entries separated by commas (an environment variable).
    pub fn parse_env(text: &str, var: &str) -> Result<Tokens> {
        let mut t = Tokens::default();
        for (i, entry) in text.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let at = format!("{var} entry {}", i + 1);
            let parts: Vec<&str> = entry.split(':').collect();
            t.add_entry(&parts, &at, "TOKEN:ROLE[:NAME]")?;
        }
        Ok(t)
    }

    /// Add one parsed entry (`[token, role]` or `[token, role, name]`) found `at`.
    fn add_entry(&mut self, parts: &[&str], at: &str, expected: &str) -> Result<()> {
        match parts {
            [tok, role] => self.add(tok, parse_role(role, at)?, None, at),
            [tok, role, name] => self.add(tok, parse_role(role, at)?, Some(name), at),
            _ => Err(FlightError::Config(format!("{at}: expected '{expected}'"))),
        }
    }

    /// Merge another set of tokens into this one.
    pub fn extend(&mut self, other: Tokens) {
        self.map.extend(other.map);
    }

    /// The caller of a bare token (looked up by its hash: see the module docs).
    pub fn lookup(&self, token: &str) -> Option<&Caller> {
        self.map.get(&token_key(token))
    }

    /// Who is calling, from the `authorization: Bearer …` header.
    pub fn caller(&self, md: &MetadataMap) -> Result<Caller> {
        self.caller_of(md.get("authorization").map(|v| v.as_bytes()))
    }

    /// Who is calling, from the value of the `authorization` header (None: absent).
    pub fn caller_of(&self, authorization: Option<&[u8]>) -> Result<Caller> {
        if !self.enabled() {
            return Ok(Caller {
                role: Role::ReadWrite,
                name: quiver_core::default_author(),
            });
        }
        let header = authorization.ok_or_else(|| {
            FlightError::Unauthenticated(
                "this server requires a token: send 'authorization: Bearer <token>'".into(),
            )
        })?;
        let header = std::str::from_utf8(header)
            .map_err(|_| FlightError::Unauthenticated("unreadable authorization header".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                FlightError::Unauthenticated("authorization header must be 'Bearer <token>'".into())
            })?;
        self.lookup(token.trim())
            .cloned()
            .ok_or_else(|| FlightError::Unauthenticated("unknown token".into()))
    }
}

/// The gRPC path of the Flight handshake: the one call that checks credentials itself.
const HANDSHAKE: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// Authentication as one tower layer: see the module docs.
#[derive(Clone)]
pub struct AuthLayer {
    tokens: Arc<Tokens>,
}

impl AuthLayer {
    /// A layer that admits callers with one of `tokens` (every caller when empty).
    pub fn new(tokens: Tokens) -> Self {
        AuthLayer {
            tokens: Arc::new(tokens),
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    tokens: Arc<Tokens>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower_service::Service<http::Request<B>> for Authenticated<S>
where
    S: tower_service::Service<
        http::Request<B>,
        Response = http::Response<Body>,
        Error = Infallible,
    >,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<std::result::Result<http::Response<Body>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if req.uri().path() != HANDSHAKE {
            let header = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            match self.tokens.caller_of(header) {
                Ok(caller) => {
                    req.extensions_mut().insert(caller);
                }
                Err(e) => return Either::Right(ready(Ok(tonic::Status::from(e).into_http()))),
            }
        }
        Either::Left(self.inner.call(req))
    }
}

/// The password of HTTP Basic credentials (`authorization: Basic <base64 of user:password>`,
/// the token being the password; the user name is not checked).
///
/// The base64 may be padded (RFC 7617, what arrow-rs and pyarrow send) or unpadded (what
/// the ADBC Flight SQL driver sends, Go's `RawStdEncoding`): both are accepted. Credentials
/// without a `:` are taken as the password alone.
pub fn basic_password(credentials: &str) -> Result<String> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    use base64::Engine;
    const EITHER_PADDING: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let raw = EITHER_PADDING.decode(credentials.trim()).map_err(|e| {
        FlightError::Unauthenticated(format!(
            "authorization: Basic credentials are not base64 ({e})"
        ))
    })?;
    let text = String::from_utf8(raw).map_err(|_| {
        FlightError::Unauthenticated("authorization: Basic credentials are not UTF-8".into())
    })?;
    Ok(match text.split_once(':') {
        Some((_user, password)) => password.to_string(),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_and_env() {
        let t = Tokens::parse_file("# comment\nabcdefgh rw alice\n\nijklmnop ro\n", "f")
            .expect("parse");
        assert_eq!(t.lookup("abcdefgh").map(|c| c.role), Some(Role::ReadWrite));
        assert_eq!(t.lookup("ijklmnop").map(|c| c.role), Some(Role::ReadOnly));
        let err = Tokens::parse_file("abcdefgh admin\n", "f").expect_err("bad role");
        assert!(err.to_string().contains("f line 1"), "{err}");
        let err = Tokens::parse_file("short rw\n", "f").expect_err("short");
        assert!(err.to_string().contains("at least 8"), "{err}");
        let e = Tokens::parse_env("abcdefgh:ro:bob, ijklmnop:rw", "V").expect("env");
        assert_eq!(e.lookup("abcdefgh").map(|c| c.name.as_str()), Some("bob"));
        let mut md = tonic::metadata::MetadataMap::new();
        assert!(e.caller(&md).is_err());
        md.insert("authorization", "Bearer abcdefgh".parse().expect("header"));
        assert_eq!(e.caller(&md).expect("caller").role, Role::ReadOnly);
        assert!(Tokens::open()
            .caller(&tonic::metadata::MetadataMap::new())
            .is_ok());
    }

    /// Padded and unpadded base64 alike, for credentials needing 0, 1 and 2 padding
    /// characters.
    #[test]
    fn basic_credentials_in_both_base64_forms() {
        use base64::Engine;
        for user in ["usr", "us", "u"] {
            let plain = format!("{user}:secret-token-1");
            let padded = base64::engine::general_purpose::STANDARD.encode(&plain);
            let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&plain);
            assert_eq!(padded.len() - unpadded.len(), (3 - plain.len() % 3) % 3);
            for form in [&padded, &unpadded] {
                assert_eq!(basic_password(form).expect(form), "secret-token-1");
            }
        }
        // the three padding lengths are covered
        let pads: Vec<usize> = ["usr", "us", "u"]
            .iter()
            .map(|u| (3 - (u.len() + 15) % 3) % 3)
            .collect();
        assert_eq!(pads, vec![0, 1, 2]);
        assert!(basic_password("not base64!").is_err());
    }

    /// Tokens are kept hashed: a dump of the server's token table (Debug, a core file) does
    /// not hold them, and lookups compare fixed-size digests, not the presented bytes.
    #[test]
    fn tokens_are_kept_hashed() {
        let t = Tokens::parse_env("secret-token-1:rw:alice,secret-token-2:ro", "V").expect("env");
        let dump = format!("{t:?}");
        assert!(!dump.contains("secret-token"), "{dump}");
        assert_eq!(
            t.lookup("secret-token-1").map(|c| c.name.as_str()),
            Some("alice")
        );
        assert!(t.lookup("secret-token-").is_none());
        assert!(t.lookup("secret-token-1 ").is_none());
    }
}
