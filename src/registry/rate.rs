//! A per-registry request rate: `serve --watch` checks a whole cluster's images every interval
//! against registries that count requests (Docker Hub, Quay, a small Harbor), so it spaces its
//! requests to each host instead of sending a cluster's worth at once.
//!
//! The generic cell rate algorithm: each host has a theoretical arrival time; a request may go
//! when that is at most `burst - 1` emission intervals ahead of now. A second's worth of
//! requests go at once, then one per interval. Time is passed in, so the rule is tested
//! without a clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Requests per second to each registry host; `None` sends as fast as the checks go.
#[derive(Debug, Default)]
pub struct RateLimit {
    rule: Option<Rule>,
    /// Theoretical arrival time per host.
    hosts: Mutex<HashMap<String, Instant>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    /// Time between requests at the steady rate.
    interval: Duration,
    /// How far ahead of now a host's schedule may run: `burst - 1` intervals.
    tolerance: Duration,
}

impl RateLimit {
    /// `per_second` requests per second per host, a second's worth in a burst; 0 means no cap.
    pub fn new(per_second: u32) -> RateLimit {
        RateLimit {
            rule: (per_second > 0).then(|| {
                let interval = Duration::from_secs(1) / per_second;
                Rule {
                    interval,
                    tolerance: interval * (per_second - 1),
                }
            }),
            hosts: Mutex::default(),
        }
    }

    /// Waits until a request to `host` may go.
    pub async fn wait(&self, host: &str) {
        let Some(rule) = self.rule else {
            return;
        };
        let at = {
            let Ok(mut hosts) = self.hosts.lock() else {
                return;
            };
            let now = Instant::now();
            let tat = hosts.entry(host.to_string()).or_insert(now);
            reserve(tat, now, rule)
        };
        tokio::time::sleep_until(at).await;
    }
}

/// When a request arriving at `now` may go, and the host's next theoretical arrival time.
fn reserve(tat: &mut Instant, now: Instant, rule: Rule) -> Instant {
    let start = (*tat).max(now);
    *tat = start + rule.interval;
    start
        .checked_sub(rule.tolerance)
        .map_or(now, |at| at.max(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seconds_worth_goes_at_once_then_one_per_interval() {
        let rule = RateLimit::new(4).rule.unwrap();
        assert_eq!(rule.interval, Duration::from_millis(250));
        let t0 = Instant::now();
        let mut tat = t0;
        let waits: Vec<Duration> = (0..7).map(|_| reserve(&mut tat, t0, rule) - t0).collect();
        let ms = Duration::from_millis;
        assert_eq!(
            waits,
            [ms(0), ms(0), ms(0), ms(0), ms(250), ms(500), ms(750)]
        );
    }

    #[test]
    fn an_idle_host_has_its_burst_again() {
        let rule = RateLimit::new(2).rule.unwrap();
        let t0 = Instant::now();
        let mut tat = t0;
        for _ in 0..4 {
            reserve(&mut tat, t0, rule);
        }
        // Four requests at t0 booked the host until t0 + 2 s; at t0 + 5 s it is idle.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(reserve(&mut tat, later, rule), later);
        assert_eq!(reserve(&mut tat, later, rule), later);
        assert_eq!(
            reserve(&mut tat, later, rule),
            later + Duration::from_millis(500)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hosts_have_rates_of_their_own() {
        let limit = RateLimit::new(1);
        let t0 = Instant::now();
        limit.wait("a.example").await;
        limit.wait("b.example").await;
        assert_eq!(
            Instant::now(),
            t0,
            "a first request to each host goes at once"
        );
        limit.wait("a.example").await;
        assert_eq!(Instant::now(), t0 + Duration::from_secs(1));
        let none = RateLimit::new(0);
        let t1 = Instant::now();
        for _ in 0..100 {
            none.wait("a.example").await;
        }
        assert_eq!(Instant::now(), t1, "0 is no cap");
    }
}
