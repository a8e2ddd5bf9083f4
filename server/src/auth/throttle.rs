//! Slows password guessing: every failed login answers only after a pause;
//! a user name with too many recent failures from one client address is
//! locked for that address (429 with `Retry-After`), and an address that
//! fails too often across any names (password spraying) is locked for
//! every name. A guesser elsewhere cannot lock a user out of their own
//! machine's login, which a lock per name alone would allow.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per user name and client address within [`WINDOW`].
const MAX_FAILURES: u32 = 5;
/// Failures allowed per client address, whatever the names, within [`WINDOW`].
const MAX_FAILURES_PER_ADDRESS: u32 = 20;
const WINDOW: Duration = Duration::from_secs(60);
/// What every failed login waits before answering.
pub const FAILURE_DELAY: Duration = Duration::from_millis(400);
/// Keys remembered at most per table; past that the oldest are forgotten.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    by_name: Mutex<Failures<(String, Option<IpAddr>)>>,
    by_address: Mutex<Failures<Option<IpAddr>>>,
}

impl LoginThrottle {
    /// `Some(seconds)` while `user` may not log in from `client`.
    pub fn locked(&self, user: &str, client: Option<IpAddr>) -> Option<u64> {
        let name = lock(&self.by_name).locked(&(user.to_string(), client), MAX_FAILURES);
        let address = lock(&self.by_address).locked(&client, MAX_FAILURES_PER_ADDRESS);
        name.max(address)
    }

    pub fn failed(&self, user: &str, client: Option<IpAddr>) {
        lock(&self.by_name).failed((user.to_string(), client));
        lock(&self.by_address).failed(client);
    }

    /// Clears `user`'s failures from `client` (not the address's count:
    /// one right password must not reset a sprayer's tally).
    pub fn succeeded(&self, user: &str, client: Option<IpAddr>) {
        lock(&self.by_name).0.remove(&(user.to_string(), client));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Failures per key: how many, since when.
#[derive(Debug)]
struct Failures<K>(HashMap<K, (u32, Instant)>);

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Failures(HashMap::new())
    }
}

impl<K: Hash + Eq> Failures<K> {
    fn locked(&self, key: &K, max: u32) -> Option<u64> {
        let (count, first) = self.0.get(key)?;
        let left = WINDOW.checked_sub(first.elapsed())?;
        (*count >= max).then(|| left.as_secs().max(1))
    }

    fn failed(&mut self, key: K) {
        if self.0.len() >= MAX_TRACKED {
            self.0.retain(|_, (_, first)| first.elapsed() < WINDOW);
        }
        let entry = self.0.entry(key).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn a_name_locks_from_one_address_after_repeated_failures_and_a_success_clears_it() {
        let t = LoginThrottle::default();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("alice", A);
        }
        assert_eq!(t.locked("alice", A), None);
        t.failed("alice", A);
        assert!(t.locked("alice", A).is_some_and(|s| s <= 60));
        assert_eq!(t.locked("bob", A), None);
        assert_eq!(t.locked("alice", B), None, "alice can still log in from B");
        t.succeeded("alice", A);
        assert_eq!(t.locked("alice", A), None);
    }

    #[test]
    fn an_address_that_sprays_many_names_is_locked_for_every_name() {
        let t = LoginThrottle::default();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            t.failed(&format!("user{i}"), A);
        }
        assert!(t.locked("someone-else", A).is_some());
        assert_eq!(t.locked("someone-else", B), None);
    }
}
