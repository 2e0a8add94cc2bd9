//! The Redis backend (`DASHBRIDGE_STATE_URL=redis://…` or `rediss://…`): state shared by every
//! replica and kept across restarts.
//!
//! A small pool of the `redis` crate's multiplexed, self-reconnecting connection managers,
//! used round-robin. Every command is bounded by `state.timeout_ms` (connect included), so a
//! down or stalled Redis costs a request at most that long. Keys live under
//! `{prefix}:` and expire with the TTL; values are [`Envelope`](super::Envelope)s. Rate limits
//! are one Lua script per decision: Redis's own clock, sliding-window sorted sets, no
//! read-modify-write from the gateway.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{
    Admission, KeyLimits, Quota, ResponseRecord, StateStore, StoreError, WINDOW, decode, encode,
};
use crate::config::StateSettings;

/// One admission decision. KEYS: requests zset, tokens zset. ARGV: rpm (0 = none),
/// tpm (0 = none), a unique member, the window in µs.
/// Returns {allowed, now, count, oldest, newest, token_sum, token_free_at, token_newest}
/// (times in µs of Redis's clock; 0 = none).
const ADMIT_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local win = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - win)
local count = redis.call('ZCARD', KEYS[1])
local toks = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local sum = 0
for i = 1, #toks, 2 do
  sum = sum + tonumber(string.match(toks[i], ':(%d+)$'))
end
local req_ok = rpm == 0 or count < rpm
local tok_ok = tpm == 0 or sum < tpm
local free_at = 0
if not tok_ok then
  local left = sum
  for i = 1, #toks, 2 do
    left = left - tonumber(string.match(toks[i], ':(%d+)$'))
    if left < tpm then
      free_at = tonumber(toks[i + 1]) + win
      break
    end
  end
end
local allowed = 0
if req_ok and tok_ok then
  allowed = 1
  if rpm > 0 then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], math.floor(win / 1000) + 1000)
    count = count + 1
  end
end
local oldest, newest, tnew = 0, 0, 0
local o = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #o > 0 then oldest = tonumber(o[2]) end
local n = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #n > 0 then newest = tonumber(n[2]) end
if #toks > 0 then tnew = tonumber(toks[#toks]) end
return {allowed, now, count, oldest, newest, sum, free_at, tnew}
";

/// KEYS: tokens zset. ARGV: a unique member ending in `:TOKENS`, the window in µs.
const ADD_TOKENS_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local win = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.floor(win / 1000) + 1000)
return 1
";

pub struct RedisStore {
    pool: Vec<ConnectionManager>,
    next: AtomicUsize,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    admit: Script,
    add_tokens: Script,
}

impl RedisStore {
    /// Builds the pool without connecting: the gateway starts (and serves stateless traffic)
    /// while Redis is down; each manager connects on first use and reconnects after failures.
    pub fn new(url: &str, s: &StateSettings) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("state URL: {}", e.kind_label())))?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(s.timeout))
            .set_response_timeout(Some(s.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(s.timeout);
        let pool = (0..s.pool_size.max(1))
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), cfg.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(RedisStore {
            pool,
            next: AtomicUsize::new(0),
            prefix: s.prefix.clone(),
            ttl: s.ttl,
            timeout: s.timeout,
            admit: Script::new(ADMIT_LUA),
            add_tokens: Script::new(ADD_TOKENS_LUA),
        })
    }

    fn conn(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.pool[i].clone()
    }

    /// Run one command within the bound.
    async fn bounded<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_timeout() => Err(StoreError::Timeout(self.timeout)),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }

    fn response_key(&self, owner: &str, id: &str) -> String {
        format!("{}:resp:{owner}:{id}", self.prefix)
    }

    fn window_keys(&self, key: &str) -> (String, String) {
        (
            format!("{}:rl:{{{key}}}:req", self.prefix),
            format!("{}:rl:{{{key}}}:tok", self.prefix),
        )
    }

    fn learned_key(&self, model: &str) -> String {
        format!("{}:learned:endpoint:{model}", self.prefix)
    }
}

/// A member unique across replicas.
fn unique() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn window_us() -> u64 {
    WINDOW.as_micros() as u64
}

#[async_trait]
impl StateStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn();
        self.bounded(async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    async fn get_response_bytes(&self, owner: &str, id: &str) -> Result<Option<Bytes>, StoreError> {
        let key = self.response_key(owner, id);
        let mut c = self.conn();
        let raw: Option<Vec<u8>> = self.bounded(async move { c.get(key).await }).await?;
        Ok(raw.map(Bytes::from))
    }

    async fn put_response(&self, record: &ResponseRecord) -> Result<(), StoreError> {
        let key = self.response_key(&record.owner, &record.id);
        let bytes = encode(record)?;
        let ttl = self.ttl.as_secs().max(1);
        let mut c = self.conn();
        self.bounded(async move { c.set_ex::<_, _, ()>(key, bytes, ttl).await })
            .await
    }

    async fn delete_response(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let key = self.response_key(owner, id);
        let mut c = self.conn();
        let n: u64 = self.bounded(async move { c.del(key).await }).await?;
        Ok(n > 0)
    }

    async fn admit(&self, key: &str, limits: KeyLimits) -> Result<Admission, StoreError> {
        let (req_key, tok_key) = self.window_keys(key);
        let mut c = self.conn();
        let mut inv = self.admit.prepare_invoke();
        inv.key(req_key)
            .key(tok_key)
            .arg(limits.rpm.unwrap_or(0))
            .arg(limits.tpm.unwrap_or(0))
            .arg(unique())
            .arg(window_us());
        let r: Vec<i64> = self
            .bounded(async move { inv.invoke_async(&mut c).await })
            .await?;
        admission_from(&r, limits)
    }

    async fn add_tokens(&self, key: &str, tokens: u64) -> Result<(), StoreError> {
        let (_, tok_key) = self.window_keys(key);
        let mut c = self.conn();
        let mut inv = self.add_tokens.prepare_invoke();
        inv.key(tok_key)
            .arg(format!("{}:{tokens}", unique()))
            .arg(window_us());
        self.bounded(async move { inv.invoke_async::<i64>(&mut c).await })
            .await
            .map(|_| ())
    }

    async fn learned_endpoint(&self, model: &str) -> Result<Option<String>, StoreError> {
        let key = self.learned_key(model);
        let mut c = self.conn();
        let raw: Option<Vec<u8>> = self.bounded(async move { c.get(key).await }).await?;
        raw.map(|b| decode(&b)).transpose()
    }

    async fn set_learned_endpoint(&self, model: &str, endpoint: &str) -> Result<(), StoreError> {
        let key = self.learned_key(model);
        let bytes = encode(&endpoint)?;
        let ttl = self.ttl.as_secs().max(1);
        let mut c = self.conn();
        self.bounded(async move { c.set_ex::<_, _, ()>(key, bytes, ttl).await })
            .await
    }
}

/// The script's answer as an [`Admission`] (see [`ADMIT_LUA`] for the layout).
fn admission_from(r: &[i64], limits: KeyLimits) -> Result<Admission, StoreError> {
    let [allowed, now, count, oldest, newest, sum, free_at, tnew] = r else {
        return Err(StoreError::Corrupt(format!(
            "rate-limit script returned {} values",
            r.len()
        )));
    };
    let win = window_us() as i64;
    let until = |t: i64| Duration::from_micros(u64::try_from(t - now).unwrap_or(0));
    let left = |t: i64| {
        if t == 0 {
            Duration::ZERO
        } else {
            until(t + win)
        }
    };
    let denied = *allowed == 0;
    let count = u64::try_from(*count).unwrap_or(0);
    let sum = u64::try_from(*sum).unwrap_or(0);
    let requests = limits.rpm.map(|rpm| Quota {
        limit: rpm,
        remaining: rpm.saturating_sub(count),
        reset: left(*newest),
        retry_after: (denied && count >= rpm).then(|| left(*oldest)),
    });
    let tokens = limits.tpm.map(|tpm| Quota {
        limit: tpm,
        remaining: tpm.saturating_sub(sum),
        reset: left(*tnew),
        retry_after: (denied && sum >= tpm).then(|| until(*free_at)),
    });
    Ok(Admission { requests, tokens })
}

trait KindLabel {
    fn kind_label(&self) -> String;
}

impl KindLabel for redis::RedisError {
    /// The error's kind only: a URL error message could quote the URL and its password.
    fn kind_label(&self) -> String {
        format!("{:?}", self.kind())
    }
}
