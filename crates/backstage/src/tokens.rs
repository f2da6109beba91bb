//! Verifying the bearer tokens Backstage presents to Roster's permission
//! endpoint (`POST /backstage/permission/authorize`).
//!
//! Backstage signs three kinds of JWT, told apart by the JOSE header `typ`:
//!
//! - `vnd.backstage.user`: a signed-in user, `aud: "backstage"`, verified with
//!   the auth plugin's keys (`{base}/api/auth/.well-known/jwks.json`);
//! - `vnd.backstage.plugin`: a backend plugin calling Roster, `sub` the calling
//!   plugin's id, `aud` the plugin id Roster serves, verified with the calling
//!   plugin's own keys (`{base}/api/{sub}/.backstage/auth/v1/jwks.json`);
//! - `vnd.backstage.limited-user`: only inside a plugin token's `obo` claim,
//!   the user the plugin acts for, verified with the auth plugin's keys.
//!
//! Every other `typ` is refused, and so is every algorithm but the asymmetric
//! ones a published key declares (ES256, ES384, RS256): never `none`, never
//! HMAC.
//!
//! Keys are cached per JWKS URL. Backstage makes new keys on every restart,
//! so a token whose `kid` is not cached makes the verifier fetch that JWKS
//! again, at most once per [`VerifierOptions::refetch_interval`] per URL and
//! within a small budget across all URLs; concurrent callers share one
//! fetch. A flood of tokens with made-up key ids or plugin ids therefore
//! costs Backstage a bounded number of requests. Verifying a token whose key
//! is cached does no I/O, and a token already verified is remembered (by its
//! SHA-256, in a bounded cache) until it expires, so Backstage's habit of
//! reusing one plugin token for many requests costs one signature check.
//!
//! Errors never contain the token.

mod keys;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use reqwest::Url;
use roster_domain::{Clock, SystemClock};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use keys::{Fetcher, KeySet};

const USER_TYP: &str = "vnd.backstage.user";
const PLUGIN_TYP: &str = "vnd.backstage.plugin";
const LIMITED_USER_TYP: &str = "vnd.backstage.limited-user";
/// The audience of every Backstage user token.
const USER_AUDIENCE: &str = "backstage";
/// Longer than any token Backstage makes (a plugin token with `obo` is about
/// 1 KiB); anything longer is refused before it is decoded or hashed.
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Plugin ids become part of a URL, so they are short and plain.
const MAX_PLUGIN_ID_LEN: usize = 64;

/// Who is asking, as established from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No bearer token at all: evaluate as "no user".
    Anonymous,
    /// A user: from a `vnd.backstage.user` token, or the `obo` limited-user
    /// token inside a plugin token (then `via_plugin` names the plugin).
    /// `user_ref` is the token's `sub` exactly as sent, e.g.
    /// `user:default/jane.doe`; the caller normalises it.
    User {
        user_ref: String,
        via_plugin: Option<String>,
    },
    /// A plugin token without `obo`: a service call from plugin `plugin_id`.
    Service { plugin_id: String },
}

/// Why a token was refused. The messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not `Bearer <token>`, not a three-part JWT, undecodable JSON, missing
    /// `kid`, `sub` or `exp`.
    #[error("the Authorization header does not hold a well-formed Backstage bearer token")]
    Malformed,

    /// A JOSE `typ` other than a Backstage user or plugin token (or, inside
    /// `obo`, other than a limited user token). Empty when `typ` is missing.
    #[error(
        "unsupported token type {0:?}: Roster accepts Backstage user tokens \
         ({USER_TYP}) and plugin tokens ({PLUGIN_TYP})"
    )]
    UnsupportedType(String),

    /// `none`, HMAC, or an algorithm the signing key does not declare.
    #[error("unsupported signature algorithm {0:?}: Backstage tokens are signed with ES256")]
    UnsupportedAlgorithm(String),

    #[error("the token's signature does not verify")]
    BadSignature,

    #[error("the token has expired")]
    Expired,

    #[error("the token is meant for another audience, not for Roster's plugin id")]
    WrongAudience,

    /// The `kid` is not among the keys Backstage publishes, even after
    /// fetching them again (or a fetch was not allowed yet).
    #[error("the token was signed with a key Backstage does not publish (unknown key id)")]
    UnknownKey,

    /// A plugin token's `sub` is not a plain plugin id (ASCII letters,
    /// digits, `_`, `-`).
    #[error("the plugin token's subject is not a valid Backstage plugin id")]
    InvalidPluginId,

    /// Backstage's keys could not be fetched.
    #[error(
        "cannot get Backstage's signing keys: {0}; check Roster's Backstage URL and that the \
         Backstage backend is running"
    )]
    KeysUnavailable(String),
}

/// Tuning for [`TokenVerifier`]; [`Default`] suits production.
#[derive(Debug, Clone)]
pub struct VerifierOptions {
    /// Time allowed for one JWKS request, connect included.
    pub fetch_timeout: Duration,
    /// Least time between two fetches of the same JWKS URL.
    pub refetch_interval: Duration,
    /// JWKS fetches allowed at once across all URLs (a token bucket's size).
    pub fetch_burst: u32,
    /// JWKS fetches allowed per second across all URLs, once the burst is spent.
    pub fetches_per_second: u32,
    /// Tolerance for clock skew when checking `exp`.
    pub leeway: Duration,
    /// Verified tokens remembered until they expire; 0 turns the cache off.
    pub token_cache_capacity: usize,
    /// Distinct calling plugins whose keys are kept.
    pub max_plugins: usize,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        Self {
            fetch_timeout: Duration::from_secs(2),
            refetch_interval: Duration::from_secs(1),
            // A Backstage restart rotates the keys of the auth plugin and of
            // every plugin that calls Roster at once.
            fetch_burst: 20,
            fetches_per_second: 5,
            leeway: Duration::from_secs(30),
            token_cache_capacity: 10_000,
            max_plugins: 64,
        }
    }
}

/// Verifies Backstage tokens. Cheap to clone (one `Arc`), `Send + Sync`;
/// build one per process and share it, so the key and token caches are shared.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// The backend's base URL without a trailing slash.
    base: String,
    audience: String,
    options: VerifierOptions,
    leeway_secs: i64,
    clock: Arc<dyn Clock>,
    fetcher: Fetcher,
    auth_keys: Arc<KeySet>,
    plugin_keys: RwLock<HashMap<String, Arc<KeySet>>>,
    verified: Arc<TokenCache>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("base", &self.inner.base)
            .field("audience", &self.inner.audience)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier for tokens addressed to plugin id `audience` (`"permission"`
    /// when Roster serves the permission plugin), fetching keys from the
    /// Backstage backend at `backstage_base_url` (a `url::Url`, which
    /// `reqwest::Url` re-exports), e.g. `http://127.0.0.1:7007`. A path in
    /// the base URL is kept: keys are read from `{base}/api/...`.
    pub fn new(backstage_base_url: &Url, audience: &str) -> Self {
        Self::with_options(
            backstage_base_url,
            audience,
            VerifierOptions::default(),
            Arc::new(SystemClock),
        )
    }

    /// As [`TokenVerifier::new`], with explicit tuning and clock.
    pub fn with_options(
        backstage_base_url: &Url,
        audience: &str,
        options: VerifierOptions,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let base = backstage_base_url.as_str().trim_end_matches('/').to_owned();
        let verified = Arc::new(TokenCache::new(options.token_cache_capacity));
        let auth_keys = Arc::new(KeySet::new(format!(
            "{base}/api/auth/.well-known/jwks.json"
        )));
        Self {
            inner: Arc::new(Inner {
                audience: audience.to_owned(),
                leeway_secs: i64::try_from(options.leeway.as_secs()).unwrap_or(i64::MAX),
                fetcher: Fetcher::new(&options),
                options,
                clock,
                auth_keys,
                plugin_keys: RwLock::new(HashMap::new()),
                verified,
                base,
            }),
        }
    }

    /// Establishes who is calling from the request's `Authorization` header:
    /// none means [`Caller::Anonymous`]; anything but `Bearer <token>` with a
    /// valid Backstage user or plugin token is an error.
    pub async fn verify(&self, authorization_header: Option<&str>) -> Result<Caller, TokenError> {
        let Some(header) = authorization_header else {
            return Ok(Caller::Anonymous);
        };
        let token = bearer_token(header)?;
        let now = self.inner.clock.now().unix_timestamp();
        let digest = self.inner.verified.enabled().then(|| token_digest(token));
        if let Some(digest) = &digest {
            if let Some(caller) = self.inner.verified.get(digest, now, self.inner.leeway_secs) {
                return Ok(caller);
            }
        }
        let (caller, expires_at) = self.verify_uncached(token, now).await?;
        if let Some(digest) = digest {
            self.inner.verified.insert(
                digest,
                caller.clone(),
                expires_at,
                now,
                self.inner.leeway_secs,
            );
        }
        Ok(caller)
    }

    /// Verifies a token from scratch; returns the caller and when that
    /// answer stops being true (the earliest `exp` involved).
    async fn verify_uncached(&self, token: &str, now: i64) -> Result<(Caller, i64), TokenError> {
        let jws = Jws::parse(token)?;
        match jws.header.typ.as_deref() {
            Some(USER_TYP) => {
                let claims: UserClaims = jws.claims()?;
                self.check_exp(claims.exp, now)?;
                if !claims.aud.is_some_and(|aud| aud.contains(USER_AUDIENCE)) {
                    return Err(TokenError::WrongAudience);
                }
                let user_ref = non_empty(claims.sub)?;
                self.check_signature(&jws, &self.inner.auth_keys).await?;
                Ok((
                    Caller::User {
                        user_ref,
                        via_plugin: None,
                    },
                    exp_secs(claims.exp),
                ))
            }
            Some(PLUGIN_TYP) => {
                let claims: PluginClaims = jws.claims()?;
                // The subject picks the URL the keys come from: check it
                // before anything is built from it.
                if !is_plugin_id(&claims.sub) {
                    return Err(TokenError::InvalidPluginId);
                }
                self.check_exp(claims.exp, now)?;
                if !claims
                    .aud
                    .is_some_and(|aud| aud.contains(&self.inner.audience))
                {
                    return Err(TokenError::WrongAudience);
                }
                let obo = match &claims.obo {
                    Some(obo) => Some(self.limited_user(obo, now)?),
                    None => None,
                };
                let plugin_keys = self.plugin_key_set(&claims.sub)?;
                self.check_signature(&jws, &plugin_keys).await?;
                let expires_at = exp_secs(claims.exp);
                match obo {
                    None => Ok((
                        Caller::Service {
                            plugin_id: claims.sub,
                        },
                        expires_at,
                    )),
                    Some((obo_jws, obo_claims)) => {
                        self.check_signature(&obo_jws, &self.inner.auth_keys)
                            .await?;
                        Ok((
                            Caller::User {
                                user_ref: non_empty(obo_claims.sub)?,
                                via_plugin: Some(claims.sub),
                            },
                            expires_at.min(exp_secs(obo_claims.exp)),
                        ))
                    }
                }
            }
            Some(other) => Err(TokenError::UnsupportedType(printable(other))),
            None => Err(TokenError::UnsupportedType(String::new())),
        }
    }

    /// Parses and checks the claims of the limited user token inside `obo`;
    /// its signature is checked by the caller once the outer token's is.
    fn limited_user<'t>(
        &self,
        token: &'t str,
        now: i64,
    ) -> Result<(Jws<'t>, LimitedUserClaims), TokenError> {
        let jws = Jws::parse(token)?;
        match jws.header.typ.as_deref() {
            Some(LIMITED_USER_TYP) => {}
            Some(other) => return Err(TokenError::UnsupportedType(printable(other))),
            None => return Err(TokenError::UnsupportedType(String::new())),
        }
        let claims: LimitedUserClaims = jws.claims()?;
        self.check_exp(claims.exp, now)?;
        Ok((jws, claims))
    }

    fn check_exp(&self, exp: f64, now: i64) -> Result<(), TokenError> {
        if now > exp_secs(exp).saturating_add(self.inner.leeway_secs) {
            Err(TokenError::Expired)
        } else {
            Ok(())
        }
    }

    async fn check_signature(&self, jws: &Jws<'_>, keys: &Arc<KeySet>) -> Result<(), TokenError> {
        let key = keys
            .key(&jws.kid, &self.inner.fetcher, &self.inner.options, || {
                self.inner.verified.clear()
            })
            .await?;
        if key.algorithm != jws.algorithm {
            return Err(TokenError::UnsupportedAlgorithm(jws.header.alg.clone()));
        }
        // The algorithm is the key's own, never one the token chose.
        match jsonwebtoken::crypto::verify(
            jws.signature,
            jws.signing_input.as_bytes(),
            &key.key,
            key.algorithm,
        ) {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(TokenError::BadSignature),
        }
    }

    /// The key set of plugin `plugin_id` (already checked to be a plain id).
    fn plugin_key_set(&self, plugin_id: &str) -> Result<Arc<KeySet>, TokenError> {
        if let Ok(sets) = self.inner.plugin_keys.read() {
            if let Some(set) = sets.get(plugin_id) {
                return Ok(Arc::clone(set));
            }
        }
        let mut sets = self
            .inner
            .plugin_keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(set) = sets.get(plugin_id) {
            return Ok(Arc::clone(set));
        }
        if sets.len() >= self.inner.options.max_plugins {
            // Forget plugins whose keys never arrived: made-up ids, mostly.
            sets.retain(|_, set| set.has_keys());
            if sets.len() >= self.inner.options.max_plugins {
                return Err(TokenError::KeysUnavailable(format!(
                    "tokens from more than {} distinct plugins were presented; Roster keeps the \
                     keys of at most that many",
                    self.inner.options.max_plugins
                )));
            }
        }
        let set = Arc::new(KeySet::new(format!(
            "{}/api/{plugin_id}/.backstage/auth/v1/jwks.json",
            self.inner.base
        )));
        sets.insert(plugin_id.to_owned(), Arc::clone(&set));
        Ok(set)
    }
}

/// The token from `Bearer <token>` (the scheme in any case).
fn bearer_token(header: &str) -> Result<&str, TokenError> {
    let (scheme, token) = header.trim().split_once(' ').ok_or(TokenError::Malformed)?;
    let token = token.trim_start();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || token.contains(char::is_whitespace)
    {
        return Err(TokenError::Malformed);
    }
    Ok(token)
}

fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Backstage plugin ids that may safely become a URL path segment.
fn is_plugin_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PLUGIN_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn non_empty(sub: String) -> Result<String, TokenError> {
    if sub.is_empty() {
        Err(TokenError::Malformed)
    } else {
        Ok(sub)
    }
}

/// A token-supplied string, shortened and safe for an error message or log.
fn printable(value: &str) -> String {
    value
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `exp` as whole seconds; JWT numeric dates may carry fractions.
fn exp_secs(exp: f64) -> i64 {
    // `as` saturates, and the claim types have already refused non-finite values.
    exp.floor() as i64
}

/// A JWS in compact form, split and with its header decoded.
struct Jws<'t> {
    header: JoseHeader,
    algorithm: Algorithm,
    kid: String,
    payload: &'t str,
    /// `header.payload`, what the signature covers.
    signing_input: &'t str,
    signature: &'t str,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    /// Critical extensions Roster would have to understand; it understands none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl<'t> Jws<'t> {
    fn parse(token: &'t str) -> Result<Self, TokenError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if header.is_empty() || payload.is_empty() || payload.contains('.') {
            return Err(TokenError::Malformed);
        }
        let header: JoseHeader = decode_part(header)?;
        if header.crit.is_some() {
            return Err(TokenError::Malformed);
        }
        let algorithm = match header.alg.as_str() {
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "RS256" => Algorithm::RS256,
            other => return Err(TokenError::UnsupportedAlgorithm(printable(other))),
        };
        if signature.is_empty() {
            return Err(TokenError::BadSignature);
        }
        let kid = match &header.kid {
            Some(kid) if !kid.is_empty() => kid.clone(),
            _ => return Err(TokenError::Malformed),
        };
        Ok(Self {
            header,
            algorithm,
            kid,
            payload,
            signing_input,
            signature,
        })
    }

    fn claims<T: DeserializeOwned>(&self) -> Result<T, TokenError> {
        decode_part(self.payload)
    }
}

fn decode_part<T: DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// `aud`: one string or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(aud) => aud == wanted,
            Audience::Many(auds) => auds.iter().any(|aud| aud == wanted),
        }
    }
}

/// A JWT numeric date; refuses NaN and infinities.
fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(serde::de::Error::custom("not a finite number"))
    }
}

#[derive(Deserialize)]
struct UserClaims {
    sub: String,
    #[serde(deserialize_with = "numeric_date")]
    exp: f64,
    #[serde(default)]
    aud: Option<Audience>,
}

#[derive(Deserialize)]
struct PluginClaims {
    sub: String,
    #[serde(deserialize_with = "numeric_date")]
    exp: f64,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    obo: Option<String>,
}

#[derive(Deserialize)]
struct LimitedUserClaims {
    sub: String,
    #[serde(deserialize_with = "numeric_date")]
    exp: f64,
}

/// Tokens already verified, by SHA-256, with the caller they proved and
/// their expiry. Bounded: when full, expired entries go, and if that is not
/// enough, all of them (the next requests verify again, which is only slower).
struct TokenCache {
    capacity: usize,
    entries: RwLock<HashMap<[u8; 32], (Caller, i64)>>,
}

impl TokenCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.capacity > 0
    }

    fn get(&self, digest: &[u8; 32], now: i64, leeway: i64) -> Option<Caller> {
        let entries = self.entries.read().ok()?;
        let (caller, expires_at) = entries.get(digest)?;
        (now <= expires_at.saturating_add(leeway)).then(|| caller.clone())
    }

    fn insert(&self, digest: [u8; 32], caller: Caller, expires_at: i64, now: i64, leeway: i64) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, exp)| now <= exp.saturating_add(leeway));
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, (caller, expires_at));
    }

    /// Forgets every verified token; called when Backstage withdraws a key.
    fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}
