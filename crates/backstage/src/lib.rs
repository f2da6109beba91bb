//! Roster and Backstage.
//!
//! How directory users and groups become Backstage catalog entities
//! (`entity`, `names`), the multi-document feed Backstage reads (`feed`),
//! a client for Backstage's catalog REST API (`client`), and the
//! reconciliation of the directory against the live catalog (`reconcile`).
//! Everything but `client` and `tokens` (which fetches Backstage's signing keys) is pure.

pub mod client;
pub mod entity;
pub mod feed;
pub mod names;
pub mod reconcile;
pub mod tokens;
