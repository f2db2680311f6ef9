//! Pulls shared within an interval (`serve --watch`, issue 27): the same image pulled with the
//! same credential bytes is the same requests on the wire and the same answer, whichever path
//! or pull secret brought those bytes. A cluster's pods mostly pull a few images with a few
//! credentials (one robot account copied into every namespace's Secret; the pod's own ECR
//! token equal to what a pull secret holds), so watch would otherwise pull one image once
//! per (image, credentials) pair and per path.
//!
//! Only a clean pass is shared: a failure's findings name the credentials' source (which
//! Secret, which entry), so every path that fails says so in its own words; and a failed
//! check is retried sooner than the interval anyway. The key holds a SHA-256 of the
//! credentials, never the credentials, and lives only in this process's memory.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use super::PullResult;
use crate::reference::ImageRef;
use crate::secret::Secret;

/// What makes two pulls the same pull: the image as normalized and the credentials' hash
/// (`None`: anonymous).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    image: String,
    credentials: Option<[u8; 32]>,
}

impl Key {
    fn of(img: &ImageRef, basic: Option<&Secret<String>>) -> Key {
        Key {
            image: img.normalized(),
            credentials: basic.map(|b| Sha256::digest(b.expose().as_bytes()).into()),
        }
    }
}

/// One key's last shared pull; its async lock is held while the pull runs, so pulls of the
/// same key that run side by side in one run wait for the first instead of repeating it.
type Cell = Arc<tokio::sync::Mutex<Option<(Instant, Arc<PullResult>)>>>;

/// The pulls a run (or, in watch mode, an interval) shares. [`SharedPulls::none`] shares
/// nothing: `check` reports every path's own pull.
#[derive(Default)]
pub struct SharedPulls {
    keep: Option<Duration>,
    cells: Mutex<Cells>,
}

#[derive(Default)]
struct Cells {
    map: HashMap<Key, Cell>,
    /// The map's size after the last sweep: the next sweep waits until it has doubled, so
    /// sweeping costs O(1) per pull on average.
    swept: usize,
}

impl SharedPulls {
    /// Shares nothing.
    pub fn none() -> SharedPulls {
        SharedPulls::default()
    }

    /// Shares a clean pass for `keep`: watch's interval, so every interval pulls afresh.
    pub fn for_interval(keep: Duration) -> SharedPulls {
        SharedPulls {
            keep: Some(keep),
            cells: Mutex::default(),
        }
    }

    /// The pull of `img` with `basic`: the shared one while it is fresh, else `pull`'s
    /// (kept for the others when it is a clean pass).
    pub async fn get_or_pull(
        &self,
        img: &ImageRef,
        basic: Option<&Secret<String>>,
        pull: impl Future<Output = PullResult>,
    ) -> PullResult {
        let Some(keep) = self.keep else {
            return pull.await;
        };
        let cell = self.cell(Key::of(img, basic), keep);
        let mut slot = cell.lock().await;
        if let Some((at, shared)) = slot.as_ref()
            && at.elapsed() < keep
        {
            return PullResult::clone(shared);
        }
        let pulled = pull.await;
        *slot = shareable(&pulled).then(|| (Instant::now(), Arc::new(pulled.clone())));
        pulled
    }

    fn cell(&self, key: Key, keep: Duration) -> Cell {
        // A poisoned lock only means another pull panicked mid-insert; the map is still whole.
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        if !cells.map.contains_key(&key) && cells.map.len() >= 2 * cells.swept.max(32) {
            cells.map.retain(|_, c| fresh(c, keep));
            cells.swept = cells.map.len();
        }
        cells.map.entry(key).or_default().clone()
    }

    /// How many pulls are kept (for tests and the memory figures).
    pub fn len(&self) -> usize {
        self.cells.lock().map(|c| c.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A cell to keep: held by a pull right now (the map's reference is one; a pull that took
/// the cell and has not locked it yet is another), or holding a pull younger than `keep`.
fn fresh(cell: &Cell, keep: Duration) -> bool {
    if Arc::strong_count(cell) > 1 {
        return true;
    }
    match cell.try_lock() {
        Err(_) => true,
        Ok(slot) => slot.as_ref().is_some_and(|(at, _)| at.elapsed() < keep),
    }
}

/// Passed with nothing to say: nothing in it depends on which path or Secret brought the
/// credentials.
fn shareable(r: &PullResult) -> bool {
    r.passed() && r.stages.iter().all(|s| s.findings.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Stage, Status};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn passed() -> PullResult {
        PullResult {
            stages: ["registry_auth", "manifest", "config", "layers"]
                .map(|n| Stage {
                    name: n.into(),
                    status: Status::Pass,
                    duration_ms: 1,
                    bytes: None,
                    findings: vec![],
                })
                .into(),
            ..Default::default()
        }
    }

    fn failed() -> PullResult {
        let mut r = passed();
        r.stages[1].status = Status::Fail;
        r
    }

    fn basic(s: &str) -> Secret<String> {
        Secret::new(s.to_string())
    }

    /// Counts the pulls that really ran.
    async fn pull(
        shared: &SharedPulls,
        img: &ImageRef,
        b: Option<&Secret<String>>,
        ran: &AtomicU32,
        result: PullResult,
    ) -> PullResult {
        shared
            .get_or_pull(img, b, async {
                ran.fetch_add(1, Ordering::SeqCst);
                result
            })
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_pass_is_pulled_once_per_interval_per_image_and_credentials() {
        let shared = SharedPulls::for_interval(Duration::from_secs(60));
        let img: ImageRef = "registry.example.com/team/app:1".parse().unwrap();
        let other: ImageRef = "registry.example.com/team/app:2".parse().unwrap();
        let (a, b) = (basic("QVdTOnNlY3JldA=="), basic("QVdTOm90aGVy"));
        let ran = AtomicU32::new(0);
        for _ in 0..3 {
            assert!(pull(&shared, &img, Some(&a), &ran, passed()).await.passed());
        }
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the same bytes: one pull");
        pull(&shared, &img, Some(&b), &ran, passed()).await;
        pull(&shared, &img, None, &ran, passed()).await;
        pull(&shared, &other, Some(&a), &ran, passed()).await;
        assert_eq!(
            ran.load(Ordering::SeqCst),
            4,
            "other credentials, anonymous, another tag: each its own"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        pull(&shared, &img, Some(&a), &ran, passed()).await;
        assert_eq!(
            ran.load(Ordering::SeqCst),
            5,
            "the next interval pulls anew"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_or_a_pass_with_findings_is_not_shared() {
        let shared = SharedPulls::for_interval(Duration::from_secs(60));
        let img: ImageRef = "registry.example.com/team/app:1".parse().unwrap();
        let a = basic("QVdTOnNlY3JldA==");
        let ran = AtomicU32::new(0);
        assert!(!pull(&shared, &img, Some(&a), &ran, failed()).await.passed());
        assert!(!pull(&shared, &img, Some(&a), &ran, failed()).await.passed());
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        let mut warned = passed();
        warned.stages[0]
            .findings
            .push(crate::diagnosis::not_ecr(&img));
        pull(&shared, &img, Some(&a), &ran, warned.clone()).await;
        pull(&shared, &img, Some(&a), &ran, warned).await;
        assert_eq!(ran.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn one_run_shares_nothing() {
        let shared = SharedPulls::none();
        let img: ImageRef = "registry.example.com/team/app:1".parse().unwrap();
        let ran = AtomicU32::new(0);
        pull(&shared, &img, None, &ran, passed()).await;
        pull(&shared, &img, None, &ran, passed()).await;
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        assert!(shared.is_empty());
    }

    /// Pulls of one key side by side: the second waits for the first and takes its answer.
    #[tokio::test(start_paused = true)]
    async fn side_by_side_pulls_of_one_key_run_once() {
        let shared = SharedPulls::for_interval(Duration::from_secs(60));
        let img: ImageRef = "registry.example.com/team/app:1".parse().unwrap();
        let ran = AtomicU32::new(0);
        let slow = || {
            shared.get_or_pull(&img, None, async {
                ran.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                passed()
            })
        };
        let (x, y) = tokio::join!(slow(), slow());
        assert!(x.passed() && y.passed());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    /// Old pulls are swept as new keys come in: the map holds about an interval's worth.
    #[tokio::test(start_paused = true)]
    async fn stale_pulls_are_swept() {
        let shared = SharedPulls::for_interval(Duration::from_secs(60));
        let ran = AtomicU32::new(0);
        for i in 0..40 {
            let img: ImageRef = format!("registry.example.com/team/app:{i}")
                .parse()
                .unwrap();
            pull(&shared, &img, None, &ran, passed()).await;
        }
        tokio::time::advance(Duration::from_secs(61)).await;
        for i in 0..40 {
            let img: ImageRef = format!("registry.example.com/other/app:{i}")
                .parse()
                .unwrap();
            pull(&shared, &img, None, &ran, passed()).await;
        }
        assert!(shared.len() <= 64, "{} kept", shared.len());
    }
}
