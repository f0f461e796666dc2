//! The webhooks' configuration (`WEBHOOK_*`, listed in `config::ENV_VARS`), read with the rest
//! by `crate::config`.

use std::time::Duration;

use anyhow::Context;

use crate::config::parse_duration;

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookConfig {
    /// `WEBHOOK_ALLOW_PRIVATE_NETWORKS`: no address check, and `http://` allowed. Off by default
    /// in every environment: the only reason to send webhooks in the clear, or into a private
    /// network, is a receiver on one's own machine, which is what this says.
    pub allow_private_networks: bool,
    /// `WEBHOOK_RETRY_BASE`: the wait after a first failure, doubled after each (at most
    /// [`MAX_BACKOFF`]). Within 30 s even with its jitter.
    pub retry_base: Duration,
    /// `WEBHOOK_RETRY_WINDOW`: retries stop this long after the first attempt (one last attempt
    /// at its end), and the delivery is given up.
    pub retry_window: Duration,
    /// `WEBHOOK_CONCURRENCY`: deliveries in flight at once on this instance.
    pub concurrency: usize,
    /// How long one attempt may take, connecting included.
    pub timeout: Duration,
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(4 * 3600);

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            retry_base: Duration::from_secs(20),
            retry_window: Duration::from_secs(24 * 3600),
            concurrency: 16,
            timeout: Duration::from_secs(10),
        }
    }
}

impl WebhookConfig {
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let defaults = Self::default();
        let duration = |key: &str, default: Duration| -> anyhow::Result<Duration> {
            match lookup(key) {
                Some(raw) => parse_duration(&raw).with_context(|| format!("{key}, e.g. 20s")),
                None => Ok(default),
            }
        };
        let allow_private_networks = match lookup("WEBHOOK_ALLOW_PRIVATE_NETWORKS")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") | Some("0") | Some("no") => false,
            Some("true") | Some("1") | Some("yes") => true,
            Some(other) => {
                anyhow::bail!(
                    "WEBHOOK_ALLOW_PRIVATE_NETWORKS must be `true` or `false`, not `{other}`"
                )
            }
        };
        let concurrency = match lookup("WEBHOOK_CONCURRENCY") {
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .context("WEBHOOK_CONCURRENCY must be a number from 1 to 1024")?,
            None => defaults.concurrency,
        };
        Ok(Self {
            allow_private_networks,
            retry_base: duration("WEBHOOK_RETRY_BASE", defaults.retry_base)?,
            retry_window: duration("WEBHOOK_RETRY_WINDOW", defaults.retry_window)?,
            concurrency,
            timeout: defaults.timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(vars: &[(&str, &str)]) -> anyhow::Result<WebhookConfig> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WebhookConfig::from_lookup(&|key: &str| {
            vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_and_settings() {
        assert_eq!(of(&[]).unwrap(), WebhookConfig::default());
        let set = of(&[
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("WEBHOOK_RETRY_BASE", "100ms"),
            ("WEBHOOK_RETRY_WINDOW", "2s"),
            ("WEBHOOK_CONCURRENCY", "2"),
        ])
        .unwrap();
        assert!(set.allow_private_networks);
        assert_eq!(set.retry_base, Duration::from_millis(100));
        assert_eq!(set.retry_window, Duration::from_secs(2));
        assert_eq!(set.concurrency, 2);
        for (key, bad) in [
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "maybe"),
            ("WEBHOOK_RETRY_BASE", "soon"),
            ("WEBHOOK_CONCURRENCY", "0"),
        ] {
            let err = of(&[(key, bad)]).unwrap_err();
            assert!(format!("{err:#}").contains(key), "{key}={bad}: {err:#}");
        }
    }
}
