//! Slows password guessing: every failed login answers only after a pause,
//! and a user name with too many recent failures is locked for a while
//! (429 with `Retry-After`), whoever tries it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per user name within [`WINDOW`] before it is locked.
const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(60);
/// What every failed login waits before answering.
pub const FAILURE_DELAY: Duration = Duration::from_millis(400);
/// Names remembered at most; past that the oldest are forgotten.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    /// `Some(seconds)` while `user` is locked.
    pub fn locked(&self, user: &str) -> Option<u64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, first) = failures.get(user)?;
        let left = WINDOW.checked_sub(first.elapsed())?;
        (*count >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    pub fn failed(&self, user: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (_, first)| first.elapsed() < WINDOW);
        }
        let entry = failures
            .entry(user.to_string())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, user: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_locks_after_repeated_failures_and_a_success_clears_it() {
        let t = LoginThrottle::default();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("alice");
        }
        assert_eq!(t.locked("alice"), None);
        t.failed("alice");
        assert!(t.locked("alice").is_some_and(|s| s <= 60));
        assert_eq!(t.locked("bob"), None);
        t.succeeded("alice");
        assert_eq!(t.locked("alice"), None);
    }
}
