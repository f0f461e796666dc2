//! What both benchmarks use: settings from the environment, and a closed-loop load of
//! concurrent clients with its latency percentiles.
// Each benchmark is its own crate and uses part of this.
#![allow(dead_code)]

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// `key` parsed from the environment, or `default` when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every number here.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The `p` quantile of sorted latencies, in milliseconds (0 when there are none).
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// How one request of a load ended.
pub enum Outcome {
    /// Answered as wanted: its latency counts.
    Done,
    /// Refused by a rate limit (429).
    Limited,
    Failed,
}

/// What a closed-loop load measured.
pub struct LoadResult {
    /// Latencies of the requests that were done, sorted.
    pub latencies: Vec<Duration>,
    /// Seconds from the first request to the last answer.
    pub elapsed: f64,
    pub limited: u64,
    pub failed: u64,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed
    }

    pub fn p50_ms(&self) -> f64 {
        percentile(&self.latencies, 0.50)
    }

    pub fn p99_ms(&self) -> f64 {
        percentile(&self.latencies, 0.99)
    }
}

/// `clients` tasks, each sending `request()` after the previous answer, until `duration` is over.
pub async fn closed_loop<F, Fut>(clients: usize, duration: Duration, request: F) -> LoadResult
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let (limited, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (request, limited, failed) = (request.clone(), limited.clone(), failed.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match request().await {
                        Outcome::Done => latencies.push(t.elapsed()),
                        Outcome::Limited => {
                            limited.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Failed => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    LoadResult {
        latencies,
        elapsed,
        limited: limited.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
    }
}
