//! Roster's domain core.
//!
//! The types here are the directory as Roster understands it: users, groups,
//! memberships and API tokens, each parsed once into a value that cannot be
//! invalid. Nothing in this crate performs I/O or knows about HTTP, SQL or
//! SCIM's wire format; the `scim` crate translates to and from the protocol and
//! the `store` crate persists these values.

mod clock;
mod group;
mod ids;
mod meta;
mod names;
mod token;
mod user;

pub use clock::{Clock, FixedClock, SystemClock};
pub use group::{Group, GroupAttributes, Member, MemberKind};
pub use ids::{GroupId, IdParseError, UserId};
pub use meta::{Meta, Version};
pub use names::{DisplayName, NameError, UserName};
pub use token::{ApiToken, TokenError, TokenHash, TokenName, TokenScope, TokenSecret};
pub use user::{Address, EnterpriseUser, Manager, MultiValue, PersonName, User, UserAttributes};

/// Timestamps throughout Roster are UTC instants.
pub type Timestamp = time::OffsetDateTime;
