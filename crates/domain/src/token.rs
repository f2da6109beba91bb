use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("unknown token scope {0:?}; known scopes: scim, catalog-feed, admin, authorize")]
    UnknownScope(String),
    #[error("token name must be 1 to 64 characters of letters, digits, '-', '_' or '.'")]
    InvalidName,
}

/// What a token opens. A token only opens the endpoints of its own scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenScope {
    /// The SCIM service provider endpoints under `/scim/v2`.
    Scim,
    /// The read-only Backstage catalog feed.
    CatalogFeed,
    /// The admin API under `/api/v1` (reconciliation, later roles and
    /// lifecycle workflows).
    Admin,
    /// Only the native decision API, `POST /api/v1/authorize`, for services
    /// that ask Roster who may do what.
    Authorize,
}

impl TokenScope {
    pub const ALL: [TokenScope; 4] = [
        TokenScope::Scim,
        TokenScope::CatalogFeed,
        TokenScope::Admin,
        TokenScope::Authorize,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Scim => "scim",
            TokenScope::CatalogFeed => "catalog-feed",
            TokenScope::Admin => "admin",
            TokenScope::Authorize => "authorize",
        }
    }
}

impl FromStr for TokenScope {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TokenScope::ALL
            .into_iter()
            .find(|scope| scope.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| TokenError::UnknownScope(s.to_owned()))
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operator's label for a token, e.g. `okta`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenName(String);

impl TokenName {
    pub fn parse(value: &str) -> Result<Self, TokenError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(TokenError::InvalidName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SHA-256 of a token secret: all that is stored.
///
/// SHA-256 rather than a password hash is deliberate: secrets are 256 random
/// bits, so there is nothing to brute-force, and every SCIM request checks
/// one, so it must be cheap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn from_hex(hex_str: &str) -> Option<Self> {
        let bytes = hex::decode(hex_str).ok()?;
        bytes.try_into().ok().map(Self)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Compares in constant time, so response timing reveals nothing about
    /// how much of a guessed token was right.
    pub fn verify(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// A freshly generated bearer token. Shown to the operator once; only its
/// [`TokenHash`] is kept.
pub struct TokenSecret(String);

impl TokenSecret {
    /// Prefix that makes Roster tokens recognisable to secret scanners.
    pub const PREFIX: &'static str = "rst_";

    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Self(format!("{}{encoded}", Self::PREFIX))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(***)")
    }
}

/// A stored API credential.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: TokenName,
    pub scope: TokenScope,
    pub hash: TokenHash,
    pub created: OffsetDateTime,
    pub revoked: Option<OffsetDateTime>,
}

impl ApiToken {
    pub fn is_active(&self) -> bool {
        self.revoked.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hash_stably() {
        let mut rng = rand::thread_rng();
        let a = TokenSecret::generate(&mut rng);
        let b = TokenSecret::generate(&mut rng);
        assert!(a.expose().starts_with("rst_"));
        assert_eq!(a.expose().len(), 4 + 43);
        assert_ne!(a.expose(), b.expose());
        assert!(a.hash().verify(&TokenHash::of(a.expose())));
        assert!(!a.hash().verify(&b.hash()));
        assert_eq!(format!("{a:?}"), "TokenSecret(***)");
        let hex = a.hash().to_hex();
        assert_eq!(TokenHash::from_hex(&hex), Some(a.hash()));
    }

    #[test]
    fn scopes_parse_case_insensitively_and_reject_unknown_ones() {
        assert_eq!("SCIM".parse::<TokenScope>(), Ok(TokenScope::Scim));
        assert_eq!(
            "catalog-feed".parse::<TokenScope>(),
            Ok(TokenScope::CatalogFeed)
        );
        assert_eq!("admin".parse::<TokenScope>(), Ok(TokenScope::Admin));
        assert!("superuser".parse::<TokenScope>().is_err());
    }

    #[test]
    fn token_names_are_restricted() {
        assert!(TokenName::parse("okta-prod_1.a").is_ok());
        assert!(TokenName::parse("").is_err());
        assert!(TokenName::parse("has space").is_err());
    }
}
