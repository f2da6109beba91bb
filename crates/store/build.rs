//! Rebuilds the crate when a migration changes: `sqlx::migrate!` embeds the
//! SQL files at compile time, but Cargo would not otherwise notice edits.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
