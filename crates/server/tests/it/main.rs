//! Integration tests: the real server on port 0 over a fresh database,
//! driven over HTTP. One test binary (modules below) to keep linking cheap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod admin_api;
mod catalog_feed;
mod fuzz;
mod handovers;
mod helpers;
mod idp_corpus;
mod large_groups;
mod postgres;
mod scim_basics;

pub use helpers::*;
