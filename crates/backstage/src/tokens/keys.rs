//! Backstage's published signing keys: fetched, cached per JWKS URL, and
//! fetched again, within limits, when a token names a key not yet seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::{TokenError, VerifierOptions};

/// A JWKS larger than this is not Backstage's.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// A public key and the one algorithm it verifies.
pub(super) struct VerifyingKey {
    pub(super) key: DecodingKey,
    pub(super) algorithm: Algorithm,
}

type Keys = Arc<HashMap<String, Arc<VerifyingKey>>>;

/// The keys published at one JWKS URL.
pub(super) struct KeySet {
    url: String,
    keys: RwLock<Keys>,
    /// Bumped after every fetch, successful or not, so that callers who
    /// waited for someone else's fetch know not to fetch again.
    generation: AtomicU64,
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    /// Why the last fetch failed; `None` after a successful one.
    last_error: Option<String>,
}

impl RefreshState {
    /// The error for a key id that is still not known.
    fn miss(&self) -> TokenError {
        match &self.last_error {
            Some(error) => TokenError::KeysUnavailable(error.clone()),
            None => TokenError::UnknownKey,
        }
    }
}

impl KeySet {
    pub(super) fn new(url: String) -> Self {
        Self {
            url,
            keys: RwLock::new(Arc::new(HashMap::new())),
            generation: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    #[cfg(test)]
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    fn cached(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let keys = self.keys.read().ok()?;
        keys.get(kid).cloned()
    }

    pub(super) fn has_keys(&self) -> bool {
        self.keys.read().is_ok_and(|keys| !keys.is_empty())
    }

    /// The key `kid`, from the cache, or else from a fresh fetch if one is
    /// allowed now. `on_withdrawn` runs when a fetch shows that a key seen
    /// before is no longer published.
    pub(super) async fn key(
        &self,
        kid: &str,
        fetcher: &Fetcher,
        options: &VerifierOptions,
        on_withdrawn: impl FnOnce(),
    ) -> Result<Arc<VerifyingKey>, TokenError> {
        let seen = self.generation.load(Ordering::Acquire);
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut state = self.refresh.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            // Someone fetched while this caller waited: use their result.
            return self.cached(kid).ok_or_else(|| state.miss());
        }
        if state
            .last_attempt
            .is_some_and(|last| last.elapsed() < options.refetch_interval)
        {
            return Err(state.miss());
        }
        if !fetcher.take_budget() {
            tracing::warn!(url = %self.url, "JWKS fetch skipped: too many key fetches just now");
            return Err(match state.last_attempt {
                Some(_) => state.miss(),
                None => TokenError::KeysUnavailable(format!(
                    "too many key fetches just now; {} was not fetched",
                    self.url
                )),
            });
        }
        state.last_attempt = Some(Instant::now());
        match fetcher.fetch(&self.url).await {
            Ok(fresh) => {
                let mut keys = self
                    .keys
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let withdrawn = keys.keys().any(|old| !fresh.contains_key(old));
                tracing::debug!(url = %self.url, keys = fresh.len(), withdrawn, "fetched JWKS");
                *keys = Arc::new(fresh);
                drop(keys);
                state.last_error = None;
                if withdrawn {
                    on_withdrawn();
                }
            }
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "cannot fetch Backstage's JWKS");
                state.last_error = Some(error);
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
        self.cached(kid).ok_or_else(|| state.miss())
    }
}

/// Fetches JWKS documents, within a budget shared by all URLs.
pub(super) struct Fetcher {
    client: Result<reqwest::Client, String>,
    budget: Mutex<Bucket>,
}

impl Fetcher {
    pub(super) fn new(options: &VerifierOptions) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(options.fetch_timeout)
            .timeout(options.fetch_timeout)
            .build()
            .map_err(|error| format!("cannot build an HTTP client: {}", error_chain(&error)));
        Self {
            client,
            budget: Mutex::new(Bucket::new(options.fetch_burst, options.fetches_per_second)),
        }
    }

    fn take_budget(&self) -> bool {
        self.budget
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take(Instant::now())
    }

    /// The usable keys at `url`, by key id; the error is for an operator.
    async fn fetch(&self, url: &str) -> Result<HashMap<String, Arc<VerifyingKey>>, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let mut response = client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| describe(url, &error))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| describe(url, &error))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("{url} answered more than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let set: RawKeySet = serde_json::from_slice(&body)
            .map_err(|error| format!("{url} did not answer a JWKS ({error})"))?;
        // One key Roster cannot use must not hide the others.
        Ok(set
            .keys
            .into_iter()
            .filter_map(|raw| serde_json::from_value::<Jwk>(raw).ok())
            .filter_map(|jwk| usable_key(&jwk))
            .collect())
    }
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

/// A signing key with an id and an asymmetric algorithm Roster accepts; the
/// algorithm is the one the key declares, or else the one its type implies.
fn usable_key(jwk: &Jwk) -> Option<(String, Arc<VerifyingKey>)> {
    let kid = jwk.common.key_id.clone().filter(|kid| !kid.is_empty())?;
    if !matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    ) {
        return None;
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        // Symmetric keys in a public key set would let anyone sign.
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::OctetKeyPair(_) => return None,
    };
    let declared = match jwk.common.key_algorithm {
        None => implied,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::ES384) => Algorithm::ES384,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(_) => return None,
    };
    if declared != implied {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((
        kid,
        Arc::new(VerifyingKey {
            key,
            algorithm: declared,
        }),
    ))
}

fn describe(url: &str, error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("{url} did not answer in time")
    } else {
        format!("cannot reach {url}: {}", error_chain(error))
    }
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A token bucket: `capacity` fetches at once, refilled at `per_second`.
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(capacity: u32, per_second: u32) -> Self {
        Self {
            capacity: f64::from(capacity),
            per_second: f64::from(per_second),
            tokens: f64::from(capacity),
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod bucket_tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(3, 2);
        bucket.last = start;
        assert!((0..3).all(|_| bucket.take(start)));
        assert!(!bucket.take(start));
        assert!(bucket.take(start + Duration::from_millis(500)));
        assert!(!bucket.take(start + Duration::from_millis(600)));
        // A long pause refills to the capacity, not beyond.
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.take(later)));
        assert!(!bucket.take(later));
    }
}
