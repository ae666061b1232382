//! The broker's lock-poisoning policy, in one place.
//!
//! A panic while a lock is held poisons it. The locks taken through these helpers guard a
//! value that is replaced whole or that stays valid however far a panicking update got (an
//! `Arc` swapped in, a map of partition handles, fetch sessions, checkpoint maps, the
//! controller's serializing lock), so the next user takes the lock as it is and goes on:
//! one panic never turns every later request into a panic. The two locks that guard state
//! with invariants have their own rule, next to them: a poisoned partition log takes the log
//! directory offline (the broker stops and recovers from disk, never serving a log a panic
//! left half-changed), and a poisoned group shard is reloaded from `__consumer_offsets`.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub trait MutexExt<T> {
    /// The lock, taken even if a panic poisoned it.
    fn lock_or_recover(&self) -> MutexGuard<'_, T>;
}

impl<T> MutexExt<T> for Mutex<T> {
    fn lock_or_recover(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub trait RwLockExt<T> {
    /// The read lock, taken even if a panic poisoned it.
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T>;
    /// The write lock, taken even if a panic poisoned it.
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> RwLockExt<T> for RwLock<T> {
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T> {
        self.write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_under_a_lock_does_not_spread() {
        let lock = std::sync::Arc::new(RwLock::new(1));
        let poisoner = std::sync::Arc::clone(&lock);
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.write().unwrap();
            panic!("a bug while holding the lock");
        })
        .join();
        assert!(lock.is_poisoned());
        *lock.write_or_recover() += 1;
        assert_eq!(*lock.read_or_recover(), 2);
        let mutex = Mutex::new(5);
        assert_eq!(*mutex.lock_or_recover(), 5);
    }
}
