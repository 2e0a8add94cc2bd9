//! The embedded backend (the default): a moka cache bounded by entries and bytes, with TTL
//! and LRU eviction, and in-process sliding windows for rate limits. Lost on restart and not
//! shared between replicas.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use tokio::time::Instant;

use super::{Admission, KeyLimits, Quota, ResponseRecord, StateStore, StoreError, WINDOW, encode};
use crate::config::StateSettings;

/// Learned endpoints kept at most (one per model name that needed the fallback).
const MAX_LEARNED: u64 = 10_000;

pub struct MemoryStore {
    responses: Cache<String, Arc<[u8]>>,
    learned: Cache<String, String>,
    windows: Mutex<HashMap<String, Window>>,
}

/// One key's last 60 s: request times and (time, tokens) of finished calls.
#[derive(Default)]
struct Window {
    requests: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64)>,
    token_sum: u64,
}

impl Window {
    fn prune(&mut self, now: Instant) {
        while self
            .requests
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.requests.pop_front();
        }
        while let Some(&(t, n)) = self.tokens.front() {
            if now.duration_since(t) < WINDOW {
                break;
            }
            self.token_sum = self.token_sum.saturating_sub(n);
            self.tokens.pop_front();
        }
    }

    fn admit(&mut self, now: Instant, limits: KeyLimits) -> Admission {
        self.prune(now);
        let left = |t: Instant| (t + WINDOW).saturating_duration_since(now);
        let req_denied = limits
            .rpm
            .is_some_and(|rpm| self.requests.len() as u64 >= rpm);
        let tok_denied = limits.tpm.is_some_and(|tpm| self.token_sum >= tpm);
        let allowed = !req_denied && !tok_denied;
        if allowed && limits.rpm.is_some() {
            self.requests.push_back(now);
        }
        let requests = limits.rpm.map(|rpm| Quota {
            limit: rpm,
            remaining: rpm.saturating_sub(self.requests.len() as u64),
            reset: self
                .requests
                .back()
                .map_or(std::time::Duration::ZERO, |t| left(*t)),
            retry_after: req_denied
                .then(|| self.requests.front().map(|t| left(*t)))
                .flatten(),
        });
        let tokens = limits.tpm.map(|tpm| {
            // Denied: wait until enough of the oldest calls leave the window to go below tpm.
            let retry_after = tok_denied
                .then(|| {
                    let mut sum = self.token_sum;
                    self.tokens.iter().find_map(|&(t, n)| {
                        sum = sum.saturating_sub(n);
                        (sum < tpm).then(|| left(t))
                    })
                })
                .flatten();
            Quota {
                limit: tpm,
                remaining: tpm.saturating_sub(self.token_sum),
                reset: self
                    .tokens
                    .back()
                    .map_or(std::time::Duration::ZERO, |(t, _)| left(*t)),
                retry_after,
            }
        });
        Admission { requests, tokens }
    }
}

impl MemoryStore {
    pub fn new(s: &StateSettings) -> MemoryStore {
        let max_bytes = s.max_bytes.max(1);
        // Every entry weighs at least max_bytes / max_entries, so the byte bound also bounds
        // the entry count: both hold with one weigher.
        let floor = max_bytes.div_ceil(s.max_entries.max(1));
        let responses = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(move |k: &String, v: &Arc<[u8]>| {
                let w = (k.len() + v.len()) as u64;
                u32::try_from(w.max(floor)).unwrap_or(u32::MAX)
            })
            .time_to_live(s.ttl)
            .eviction_policy(EvictionPolicy::lru())
            .build();
        let learned = Cache::builder()
            .max_capacity(MAX_LEARNED)
            .time_to_live(s.ttl)
            .build();
        MemoryStore {
            responses,
            learned,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Entries and bytes held now (after pending evictions are applied).
    pub async fn usage(&self) -> (u64, u64) {
        self.responses.run_pending_tasks().await;
        (self.responses.entry_count(), self.responses.weighted_size())
    }

    fn with_window<T>(&self, key: &str, f: impl FnOnce(&mut Window) -> T) -> Result<T, StoreError> {
        let mut map = self
            .windows
            .lock()
            .map_err(|_| StoreError::Unavailable("rate-limit table poisoned".into()))?;
        Ok(f(map.entry(key.to_owned()).or_default()))
    }
}

fn record_key(owner: &str, id: &str) -> String {
    format!("{owner}:{id}")
}

#[async_trait]
impl StateStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn get_response_bytes(&self, owner: &str, id: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self
            .responses
            .get(&record_key(owner, id))
            .await
            .map(Bytes::from_owner))
    }

    async fn put_response(&self, record: &ResponseRecord) -> Result<(), StoreError> {
        let bytes: Arc<[u8]> = encode(record)?.into();
        self.responses
            .insert(record_key(&record.owner, &record.id), bytes)
            .await;
        Ok(())
    }

    async fn delete_response(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .responses
            .remove(&record_key(owner, id))
            .await
            .is_some())
    }

    async fn admit(&self, key: &str, limits: KeyLimits) -> Result<Admission, StoreError> {
        let now = Instant::now();
        self.with_window(key, |w| w.admit(now, limits))
    }

    async fn add_tokens(&self, key: &str, tokens: u64) -> Result<(), StoreError> {
        let now = Instant::now();
        self.with_window(key, |w| {
            w.prune(now);
            w.tokens.push_back((now, tokens));
            w.token_sum = w.token_sum.saturating_add(tokens);
        })
    }

    async fn learned_endpoint(&self, model: &str) -> Result<Option<String>, StoreError> {
        Ok(self.learned.get(model).await)
    }

    async fn set_learned_endpoint(&self, model: &str, endpoint: &str) -> Result<(), StoreError> {
        self.learned
            .insert(model.to_owned(), endpoint.to_owned())
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(rpm: Option<u64>, tpm: Option<u64>) -> KeyLimits {
        KeyLimits { rpm, tpm }
    }

    /// "At most rpm in any 60 s window", to the millisecond, with tokio's paused clock.
    #[tokio::test(start_paused = true)]
    async fn rpm_is_a_sliding_sixty_second_window() {
        let s = MemoryStore::new(&StateSettings::default());
        let l = limits(Some(2), None);
        let a = s.admit("k", l).await.unwrap();
        assert_eq!(
            a.requests,
            Some(Quota {
                limit: 2,
                remaining: 1,
                reset: Duration::from_secs(60),
                retry_after: None
            })
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        let a = s.admit("k", l).await.unwrap();
        assert_eq!(a.requests.unwrap().remaining, 0);
        assert_eq!(a.requests.unwrap().reset, Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(10)).await;
        let a = s.admit("k", l).await.unwrap();
        assert!(!a.allowed());
        assert_eq!(
            a.requests,
            Some(Quota {
                limit: 2,
                remaining: 0,
                reset: Duration::from_secs(50),
                retry_after: Some(Duration::from_secs(40))
            })
        );
        // A denied request is not counted: 40 s later exactly one slot is free.
        tokio::time::advance(Duration::from_millis(39_999)).await;
        assert!(!s.admit("k", l).await.unwrap().allowed());
        tokio::time::advance(Duration::from_millis(1)).await;
        let a = s.admit("k", l).await.unwrap();
        assert!(a.allowed());
        assert_eq!(a.requests.unwrap().remaining, 0);
        assert!(!s.admit("k", l).await.unwrap().allowed());
        // Other keys have their own windows.
        assert!(s.admit("other", l).await.unwrap().allowed());
    }

    #[tokio::test(start_paused = true)]
    async fn tpm_counts_finished_calls_and_frees_the_oldest_first() {
        let s = MemoryStore::new(&StateSettings::default());
        let l = limits(None, Some(1000));
        let a = s.admit("k", l).await.unwrap();
        assert_eq!(
            a.tokens,
            Some(Quota {
                limit: 1000,
                remaining: 1000,
                reset: Duration::ZERO,
                retry_after: None
            })
        );
        s.add_tokens("k", 600).await.unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        let a = s.admit("k", l).await.unwrap();
        assert_eq!(a.tokens.unwrap().remaining, 400);
        assert_eq!(a.tokens.unwrap().reset, Duration::from_secs(30));
        s.add_tokens("k", 500).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let a = s.admit("k", l).await.unwrap();
        // 1100 ≥ 1000: denied until the 600 leave (29 s), which leaves 500 < 1000.
        assert_eq!(
            a.tokens,
            Some(Quota {
                limit: 1000,
                remaining: 0,
                reset: Duration::from_secs(59),
                retry_after: Some(Duration::from_secs(29))
            })
        );
        assert_eq!(a.retry_after(), Some(Duration::from_secs(29)));
        tokio::time::advance(Duration::from_secs(29)).await;
        let a = s.admit("k", l).await.unwrap();
        assert!(a.allowed());
        assert_eq!(a.tokens.unwrap().remaining, 500);
    }
}
