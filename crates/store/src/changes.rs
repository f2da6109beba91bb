//! Knowing, without asking the database, whether the directory may have
//! changed: what lets readers cache what they derive from it (who a caller
//! is, which groups they are in) and still see a deactivation at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A generation that moves after every committed write, before the writer
/// hears that its write is done, so anything derived from the directory
/// and stamped with a generation is current exactly while the generation
/// has not moved.
///
/// On SQLite every write goes through this process's single writer, which
/// moves it. On PostgreSQL a replica moves it for its own writes and, for
/// the other replicas' writes, when the database notifies it (a trigger
/// on the directory tables, `LISTEN roster_directory`). While that
/// notification channel is down nothing is known about other replicas,
/// and [`DirectoryChanges::generation`] answers `None`: trust no cache.
#[derive(Debug, Clone)]
pub struct DirectoryChanges(Arc<AtomicU64>);

/// Set in the generation while writes elsewhere are not followed. One
/// atomic word for both, so no reader can pair a generation with a stale
/// "followed".
const UNFOLLOWED: u64 = 1 << 63;

impl DirectoryChanges {
    /// A generation that sees every write from the start.
    pub fn followed() -> Self {
        Self(Arc::new(AtomicU64::new(0)))
    }

    /// A generation that is not trusted until [`Self::set_followed`] says
    /// the writes elsewhere are being followed.
    pub(crate) fn unfollowed() -> Self {
        Self(Arc::new(AtomicU64::new(UNFOLLOWED)))
    }

    /// The current generation, or `None` when changes cannot be followed
    /// right now.
    pub fn generation(&self) -> Option<u64> {
        let value = self.0.load(Ordering::Acquire);
        (value & UNFOLLOWED == 0).then_some(value)
    }

    /// Something may have changed.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether writes made elsewhere are being followed. Following again
    /// also moves the generation: what was read while nothing was followed
    /// may be stale.
    pub(crate) fn set_followed(&self, followed: bool) {
        if followed {
            let _ = self
                .0
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |value| {
                    Some((value & !UNFOLLOWED) + 1)
                });
        } else {
            self.0.fetch_or(UNFOLLOWED, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bump_moves_the_generation() {
        let changes = DirectoryChanges::followed();
        let before = changes.generation().unwrap();
        changes.bump();
        assert_ne!(changes.generation(), Some(before));
    }

    #[test]
    fn an_unfollowed_generation_is_never_trusted_and_following_again_moves_it() {
        let changes = DirectoryChanges::unfollowed();
        assert_eq!(changes.generation(), None);
        changes.set_followed(true);
        let followed = changes.generation().unwrap();
        changes.set_followed(false);
        assert_eq!(changes.generation(), None);
        changes.set_followed(true);
        assert!(changes.generation().unwrap() > followed);
    }

    #[test]
    fn clones_share_one_generation() {
        let changes = DirectoryChanges::followed();
        let other = changes.clone();
        let before = changes.generation();
        other.bump();
        assert_ne!(changes.generation(), before);
    }
}
