//! The watch's source: kube's runtime watchers of the six workload kinds, their events turned
//! into [`Change`]s, and [`Workloads`], the set those changes keep current. No checks here:
//! the schedule reads what this holds.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt as _;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use tokio::sync::mpsc;

use crate::cluster::{WorkloadKind, workload_from_spec};
use crate::config::WatchConfig;
use crate::report::Workload;
use crate::shard::Shard;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadKey {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

impl WorkloadKey {
    pub fn of(w: &Workload) -> WorkloadKey {
        WorkloadKey {
            namespace: w.namespace.clone(),
            kind: w.kind.clone(),
            name: w.name.clone(),
        }
    }
}

/// What the watchers tell the scheduler.
#[derive(Debug)]
pub enum Change {
    Upsert(Workload),
    Delete(WorkloadKey),
    /// A (re)list of `kind` in `namespace` (`None`: all) finished: exactly these exist.
    Replace {
        kind: String,
        namespace: Option<String>,
        workloads: Vec<Workload>,
    },
    /// A watch failed (the watcher retries by itself): why, for `/readyz` until the first
    /// list has come in.
    Failed(String),
}

impl Change {
    /// The part of this change `shard` keeps: another shard's workloads are
    /// dropped from an upsert and from a re-list; a delete always passes (a workload this
    /// replica never held is not in its state, so the delete does nothing).
    pub fn for_shard(self, shard: Shard) -> Option<Change> {
        match self {
            Change::Upsert(w) if !shard.owns(&w.namespace) => None,
            Change::Replace {
                kind,
                namespace,
                mut workloads,
            } => {
                workloads.retain(|w| shard.owns(&w.namespace));
                Some(Change::Replace {
                    kind,
                    namespace,
                    workloads,
                })
            }
            other => Some(other),
        }
    }
}

/// A workload's pod template, or `None` when the object is not a workload of its own: a pod
/// some controller owns (its owner is watched), a Job a CronJob made.
fn template<K: Resource>(kind: WorkloadKind, obj: &K, spec: Option<&PodSpec>) -> Option<Workload> {
    let owners = obj.meta().owner_references.as_deref().unwrap_or_default();
    let owned = match kind {
        WorkloadKind::Pod => !owners.is_empty(),
        WorkloadKind::Job => owners.iter().any(|o| o.kind == "CronJob"),
        _ => false,
    };
    if owned {
        return None;
    }
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    let name = obj.meta().name.clone().unwrap_or_default();
    let mut w = workload_from_spec(kind, &ns, &name, spec?);
    // Where the pods run is the canary's to copy; watch keeps only what its checks, metrics
    // and /report read, for every workload of the cluster (issue 27).
    w.placement = Default::default();
    w.node_selector.clear();
    Some(w)
}

fn key_of<K: Resource>(kind: WorkloadKind, obj: &K) -> WorkloadKey {
    WorkloadKey {
        namespace: obj.meta().namespace.clone().unwrap_or_default(),
        kind: kind.to_string(),
        name: obj.meta().name.clone().unwrap_or_default(),
    }
}

/// One watcher: `kind` in one namespace (or all), its events turned into [`Change`]s.
fn spawn_watcher<K>(
    api: Api<K>,
    cfg: watcher::Config,
    kind: WorkloadKind,
    namespace: Option<String>,
    extract: fn(&K) -> Option<&PodSpec>,
    tx: mpsc::Sender<Change>,
) where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, cfg).default_backoff().boxed();
        let mut listing: Vec<Workload> = Vec::new();
        while let Some(event) = events.next().await {
            let change = match event {
                Ok(Event::Init) => {
                    listing.clear();
                    continue;
                }
                Ok(Event::InitApply(o)) => {
                    listing.extend(template(kind, &o, extract(&o)));
                    continue;
                }
                Ok(Event::InitDone) => Change::Replace {
                    kind: kind.to_string(),
                    namespace: namespace.clone(),
                    workloads: std::mem::take(&mut listing),
                },
                Ok(Event::Apply(o)) => match template(kind, &o, extract(&o)) {
                    Some(w) => Change::Upsert(w),
                    None => Change::Delete(key_of(kind, &o)),
                },
                Ok(Event::Delete(o)) => Change::Delete(key_of(kind, &o)),
                Err(e) => {
                    // The watcher backs off and resumes (or re-lists) by itself.
                    let error = crate::error_chain(&e);
                    tracing::warn!(%kind, namespace = namespace.as_deref().unwrap_or("*"), %error, "watch failed; retrying");
                    Change::Failed(format!("watching {kind}s: {error}"))
                }
            };
            if tx.send(change).await.is_err() {
                return;
            }
        }
    });
}

/// The namespaces to watch, one watcher set each: `None` is every namespace (one cluster-wide
/// watcher per kind); an empty list is the probe's own namespace.
pub fn scopes(watch: &WatchConfig, default_ns: &str) -> Vec<Option<String>> {
    match &watch.namespaces {
        None => vec![None],
        Some(ns) if ns.is_empty() => vec![Some(default_ns.to_string())],
        Some(ns) => ns.iter().cloned().map(Some).collect(),
    }
}

/// Objects per page of a watcher's list.
pub const LIST_PAGE: u32 = 100;

/// Starts the watchers of the six kinds over the namespaces asked for.
pub fn start_watchers(
    client: &Client,
    watch: &WatchConfig,
    default_ns: &str,
) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel(1024);
    // Pages of LIST_PAGE objects, not kube's 500: six kinds list at once at start, and a page
    // is held whole as its JSON and as objects while it is turned into workloads; at 10,000
    // workloads 500-object pages were most of the peak memory (issue 27). More list requests,
    // at start and on a re-list only.
    let mut cfg = watcher::Config::default().page_size(LIST_PAGE);
    if let Some(sel) = &watch.selector {
        cfg = cfg.labels(sel);
    }
    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    for ns in scopes(watch, default_ns) {
        let c = || cfg.clone();
        spawn_watcher::<Deployment>(
            api(client, &ns),
            c(),
            WorkloadKind::Deployment,
            ns.clone(),
            |o| o.spec.as_ref()?.template.spec.as_ref(),
            tx.clone(),
        );
        spawn_watcher::<StatefulSet>(
            api(client, &ns),
            c(),
            WorkloadKind::StatefulSet,
            ns.clone(),
            |o| o.spec.as_ref()?.template.spec.as_ref(),
            tx.clone(),
        );
        spawn_watcher::<DaemonSet>(
            api(client, &ns),
            c(),
            WorkloadKind::DaemonSet,
            ns.clone(),
            |o| o.spec.as_ref()?.template.spec.as_ref(),
            tx.clone(),
        );
        spawn_watcher::<CronJob>(
            api(client, &ns),
            c(),
            WorkloadKind::CronJob,
            ns.clone(),
            |o| {
                o.spec
                    .as_ref()?
                    .job_template
                    .spec
                    .as_ref()?
                    .template
                    .spec
                    .as_ref()
            },
            tx.clone(),
        );
        spawn_watcher::<Job>(
            api(client, &ns),
            c(),
            WorkloadKind::Job,
            ns.clone(),
            |o| o.spec.as_ref()?.template.spec.as_ref(),
            tx.clone(),
        );
        spawn_watcher::<Pod>(
            api(client, &ns),
            c(),
            WorkloadKind::Pod,
            ns.clone(),
            |o| o.spec.as_ref(),
            tx.clone(),
        );
    }
    rx
}

/// The known workloads, kept current by [`Change`]s; `dirty` are those whose credentials
/// and checks must be worked out again.
#[derive(Default)]
pub struct Workloads {
    pub all: BTreeMap<WorkloadKey, Workload>,
    pub dirty: BTreeSet<WorkloadKey>,
    pub removed: BTreeSet<WorkloadKey>,
    /// Why no list has come in yet (the API refused or did not answer); cleared by the first
    /// list, and never set again after it: a later watch error is the watcher's to retry.
    pub api_problem: Option<String>,
    listed: bool,
}

impl Workloads {
    /// Applies `change`; whether anything `/report` or the metrics show changed with it (an
    /// unchanged template, a delete of what was never held, a watch error after the first
    /// list change nothing, and then nothing is published again: at 10,000 workloads
    /// `/report` is megabytes, and a storm of no-op events must not remake it every tick).
    pub fn apply(&mut self, change: Change) -> bool {
        match change {
            Change::Failed(e) => {
                if self.listed {
                    return false;
                }
                self.api_problem = Some(e);
                true
            }
            Change::Upsert(w) => self.upsert(w),
            Change::Delete(k) => {
                self.dirty.remove(&k);
                if self.all.remove(&k).is_some() {
                    self.removed.insert(k);
                    return true;
                }
                false
            }
            Change::Replace {
                kind,
                namespace,
                workloads,
            } => {
                self.listed = true;
                self.api_problem = None;
                let keep: BTreeSet<WorkloadKey> = workloads.iter().map(WorkloadKey::of).collect();
                let gone: Vec<WorkloadKey> = self
                    .all
                    .keys()
                    .filter(|k| {
                        k.kind == kind && namespace.as_ref().is_none_or(|n| *n == k.namespace)
                    })
                    .filter(|k| !keep.contains(*k))
                    .cloned()
                    .collect();
                for k in gone {
                    self.apply(Change::Delete(k));
                }
                for w in workloads {
                    self.upsert(w);
                }
                // A list is news even when it holds nothing new: the first one makes /readyz.
                true
            }
        }
    }

    fn upsert(&mut self, w: Workload) -> bool {
        let key = WorkloadKey::of(&w);
        if self.all.get(&key) == Some(&w) {
            return false;
        }
        self.dirty.insert(key.clone());
        self.all.insert(key, w);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn workload(kind: WorkloadKind, ns: &str, name: &str, image: &str) -> Workload {
        let spec: PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [{"name": "main", "image": image}]
        }))
        .unwrap();
        workload_from_spec(kind, ns, name, &spec)
    }

    fn key(ns: &str, kind: &str, name: &str) -> WorkloadKey {
        WorkloadKey {
            namespace: ns.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    #[test]
    fn an_unchanged_upsert_leaves_the_workload_clean() {
        let mut w = Workloads::default();
        let web = workload(WorkloadKind::Deployment, "shop", "web", "a:1");
        w.apply(Change::Upsert(web.clone()));
        assert_eq!(w.dirty.len(), 1);
        w.dirty.clear();
        assert!(
            !w.apply(Change::Upsert(web)),
            "same template: nothing changed"
        );
        assert!(
            w.dirty.is_empty(),
            "same template: nothing to work out again"
        );
        assert!(
            !w.apply(Change::Delete(key("shop", "Deployment", "never"))),
            "a delete of what was never held changes nothing"
        );
        w.apply(Change::Upsert(workload(
            WorkloadKind::Deployment,
            "shop",
            "web",
            "a:2",
        )));
        assert_eq!(w.dirty.len(), 1, "a new image is worked out again");
    }

    #[test]
    fn a_relist_removes_only_what_it_no_longer_has_of_its_kind_and_scope() {
        let mut w = Workloads::default();
        for (kind, ns, name) in [
            (WorkloadKind::Deployment, "shop", "web"),
            (WorkloadKind::Deployment, "shop", "old"),
            (WorkloadKind::Deployment, "billing", "old"),
            (WorkloadKind::Job, "shop", "old"),
        ] {
            w.apply(Change::Upsert(workload(kind, ns, name, "a:1")));
        }
        w.apply(Change::Replace {
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            workloads: vec![workload(WorkloadKind::Deployment, "shop", "web", "a:1")],
        });
        let left: Vec<&WorkloadKey> = w.all.keys().collect();
        assert_eq!(
            left,
            [
                &key("billing", "Deployment", "old"),
                &key("shop", "Deployment", "web"),
                &key("shop", "Job", "old"),
            ]
        );
        assert_eq!(
            w.removed.iter().collect::<Vec<_>>(),
            [&key("shop", "Deployment", "old")]
        );
        assert!(!w.dirty.contains(&key("shop", "Deployment", "old")));
    }

    #[test]
    fn an_api_problem_is_told_until_the_first_list_only() {
        let mut w = Workloads::default();
        w.apply(Change::Failed("watching Deployments: refused".into()));
        assert_eq!(
            w.api_problem.as_deref(),
            Some("watching Deployments: refused")
        );
        w.apply(Change::Replace {
            kind: "Deployment".into(),
            namespace: None,
            workloads: vec![],
        });
        assert_eq!(w.api_problem, None);
        assert!(
            !w.apply(Change::Failed("watching Pods: reset".into())),
            "nothing to publish"
        );
        assert_eq!(
            w.api_problem, None,
            "after a list the watcher retries alone"
        );
    }

    #[test]
    fn owned_pods_and_a_cronjobs_jobs_are_not_workloads_of_their_own() {
        let pod = |owner: Option<&str>| -> Pod {
            let mut p = serde_json::json!({
                "metadata": {"name": "p", "namespace": "shop"},
                "spec": {"containers": [{"name": "main", "image": "a:1"}]}
            });
            if let Some(kind) = owner {
                p["metadata"]["ownerReferences"] = serde_json::json!([{
                    "apiVersion": "apps/v1", "kind": kind, "name": "o", "uid": "u"
                }]);
            }
            serde_json::from_value(p).unwrap()
        };
        let bare = pod(None);
        assert!(template(WorkloadKind::Pod, &bare, bare.spec.as_ref()).is_some());
        let owned = pod(Some("ReplicaSet"));
        assert!(template(WorkloadKind::Pod, &owned, owned.spec.as_ref()).is_none());
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j", "namespace": "shop", "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "CronJob", "name": "c", "uid": "u"}]},
            "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "a:1"}]}}}
        }))
        .unwrap();
        let spec = job.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        assert!(template(WorkloadKind::Job, &job, spec).is_none());
        assert_eq!(key_of(WorkloadKind::Job, &job), key("shop", "Job", "j"));
    }

    #[test]
    fn no_namespace_means_all_and_an_empty_list_the_probes_own() {
        let cfg = |namespaces| WatchConfig {
            namespaces,
            selector: None,
            retry: std::time::Duration::from_secs(10),
            shard: Default::default(),
        };
        assert_eq!(scopes(&cfg(None), "me"), vec![None]);
        assert_eq!(scopes(&cfg(Some(vec![])), "me"), vec![Some("me".into())]);
        assert_eq!(
            scopes(&cfg(Some(vec!["a".into(), "b".into()])), "me"),
            vec![Some("a".into()), Some("b".into())]
        );
    }

    #[test]
    fn a_shard_keeps_its_namespaces_of_upserts_and_relists_and_every_delete() {
        let (mine, theirs) = ("team-mine", "team-theirs");
        let total = 2;
        let index = crate::shard::shard_of(mine, total);
        // Two namespaces on different shards of 2, found by name.
        let theirs = (0..)
            .map(|i| format!("{theirs}-{i}"))
            .find(|n| crate::shard::shard_of(n, total) != index)
            .unwrap();
        let shard = Shard::new(index, total).unwrap();
        assert!(
            Change::Upsert(workload(WorkloadKind::Deployment, mine, "a", "a:1"))
                .for_shard(shard)
                .is_some()
        );
        assert!(
            Change::Upsert(workload(WorkloadKind::Deployment, &theirs, "b", "a:1"))
                .for_shard(shard)
                .is_none()
        );
        let relist = Change::Replace {
            kind: "Deployment".into(),
            namespace: None,
            workloads: vec![
                workload(WorkloadKind::Deployment, mine, "a", "a:1"),
                workload(WorkloadKind::Deployment, &theirs, "b", "a:1"),
            ],
        };
        match relist.for_shard(shard) {
            Some(Change::Replace { workloads, .. }) => {
                assert_eq!(workloads.len(), 1);
                assert_eq!(workloads[0].namespace, mine);
            }
            other => panic!("{other:?}"),
        }
        let delete = Change::Delete(key(&theirs, "Deployment", "b"));
        assert!(delete.for_shard(shard).is_some());
    }
}
