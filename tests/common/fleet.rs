//! A fleet of workloads as a real cluster holds them, for `serve --watch` at scale (the
//! benchmark in tests/watch_scale.rs) and under churn (tests/watch_churn.rs): the six watched
//! kinds in realistic shares, objects with the metadata (labels, kubectl's last-applied copy,
//! managed fields) and container fields (env, probes, resources) real manifests carry, the
//! controllers' pods and a CronJob's Jobs beside their owners, served by the fake watch API.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::fake_api::{docker_secret, service_account};
use super::fake_watch::WatchApi;

/// Collections of the six watched kinds and how much of the fleet each is, in per mille.
const KINDS: [(&str, &str, u32); 6] = [
    ("apis/apps/v1/deployments", "Deployment", 550),
    ("apis/apps/v1/statefulsets", "StatefulSet", 100),
    ("apis/apps/v1/daemonsets", "DaemonSet", 50),
    ("apis/batch/v1/cronjobs", "CronJob", 100),
    ("apis/batch/v1/jobs", "Job", 100),
    ("api/v1/pods", "Pod", 100),
];

/// A container as a manifest of a real service has it: ports, resources, env, probes.
fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "JAVA_TOOL_OPTIONS", "value": "-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"}
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "http", "scheme": "HTTP"},
                           "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/health/live", "port": "http", "scheme": "HTTP"},
                          "initialDelaySeconds": 30, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                            "capabilities": {"drop": ["ALL"]}}
    })
}

/// Object metadata as the API returns it, with the labels, annotations (kubectl's
/// last-applied copy included) and managed fields a real cluster's objects carry.
fn metadata(ns: &str, name: &str, i: usize, owner: Option<(&str, &str)>) -> Value {
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": ns,
                        "app.kubernetes.io/managed-by": "Helm", "team": ns});
    let mut m = json!({
        "name": name, "namespace": ns, "uid": format!("00000000-0000-4000-8000-{i:012}"),
        "generation": 4, "creationTimestamp": "2026-10-01T09:30:00Z",
        "labels": labels,
        "annotations": {
            "meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns,
            "kubectl.kubernetes.io/last-applied-configuration": format!("{{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"replicas\":2,\"template\":{{\"spec\":{{\"containers\":[{{\"name\":\"app\",\"resources\":{{\"requests\":{{\"cpu\":\"100m\",\"memory\":\"256Mi\"}}}}}}]}}}}}}}}")
        },
        "managedFields": [{"manager": "helm", "operation": "Update", "apiVersion": "apps/v1",
                           "time": "2026-10-01T09:30:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:team": {}}},
                                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}}}}}}]
    });
    if let Some((kind, owner)) = owner {
        m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner,
                                        "uid": "owner-uid", "controller": true, "blockOwnerDeletion": true}]);
    }
    m
}

/// A pod template: the app container, every fourth workload an init container too.
fn pod_spec(sa: &str, pull_secrets: &[&str], app: &str, init: Option<&str>) -> Value {
    json!({
        "serviceAccountName": sa, "serviceAccount": sa,
        "imagePullSecrets": pull_secrets.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "initContainers": init.map(|i| vec![container("migrate", i)]).unwrap_or_default(),
        "containers": [container("app", app)],
        "volumes": [{"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}}],
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
        "terminationGracePeriodSeconds": 30, "securityContext": {"fsGroup": 1000},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "apps", "effect": "NoSchedule"}]
    })
}

/// A workload object of `kind` whose pod template is `spec`.
fn workload(kind: &str, meta: Value, spec: Value) -> Value {
    let name = meta["name"].clone();
    let template = json!({"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": spec});
    let selector = json!({"matchLabels": {"app.kubernetes.io/name": name}});
    let (api_version, body) = match kind {
        "Deployment" => (
            "apps/v1",
            json!({"spec": {"replicas": 2, "selector": selector, "template": template,
                            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
                   "status": {"observedGeneration": 4, "replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}}),
        ),
        "StatefulSet" => (
            "apps/v1",
            json!({"spec": {"replicas": 1, "selector": selector, "template": template, "serviceName": name,
                            "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate"}},
                   "status": {"replicas": 1, "readyReplicas": 1, "currentReplicas": 1}}),
        ),
        "DaemonSet" => (
            "apps/v1",
            json!({"spec": {"selector": selector, "template": template, "updateStrategy": {"type": "RollingUpdate"}},
                   "status": {"currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberReady": 3, "numberMisscheduled": 0}}),
        ),
        "CronJob" => (
            "batch/v1",
            json!({"spec": {"schedule": "0 3 * * *", "concurrencyPolicy": "Forbid",
                            "jobTemplate": {"spec": {"backoffLimit": 2, "template": template}}}}),
        ),
        "Job" => (
            "batch/v1",
            json!({"spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1, "template": template},
                   "status": {"succeeded": 1}}),
        ),
        _ => (
            "v1",
            json!({"spec": template["spec"], "status": {"phase": "Running", "qosClass": "Burstable"}}),
        ),
    };
    let mut obj = body;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    obj["metadata"] = meta;
    obj
}

/// The shape of a fleet: how many workloads over how many images, in how many namespaces,
/// and how many of those pull with a Secret of their own.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub workloads: usize,
    pub namespaces: usize,
    /// The first `secret_namespaces` pull with the namespace's `ecr-pull` Secret.
    pub secret_namespaces: usize,
}

impl Shape {
    /// `n` workloads at about 50 a namespace (at least 20 namespaces), a fifth of the
    /// namespaces with a pull Secret: the share the benchmark has always used.
    pub fn of(n: usize) -> Shape {
        let namespaces = (n / 50).max(20);
        Shape {
            workloads: n,
            namespaces,
            secret_namespaces: namespaces / 5,
        }
    }
}

/// The credentials every namespace's `ecr-pull` Secret holds: one robot account copied into
/// each, as teams do.
pub struct Robot<'a> {
    pub host: &'a str,
    pub user: &'a str,
    pub password: &'a str,
}

impl<'a> Robot<'a> {
    /// The stack's robot account (its registry's second htpasswd user).
    pub fn of(s: &'a super::Stack) -> Robot<'a> {
        Robot {
            host: s.var("STACK_ECR_HOST"),
            user: s.var("STACK_ROBOT_USER"),
            password: s.var("STACK_ROBOT_PASSWORD"),
        }
    }
}

/// The stack's fleet repositories: the small image under eleven names (`STACK_FLEET`).
pub fn stack_images(s: &super::Stack) -> Vec<String> {
    s.var("STACK_FLEET")
        .split(',')
        .map(|name| s.image(&format!("{name}:latest")))
        .collect()
}

/// A fleet served by its own fake API, and a kubeconfig for it.
pub struct Served {
    pub api: WatchApi,
    pub kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// What the fleet is: the objects to serve and what it needs checked.
pub struct Fleet {
    pub shape: Shape,
    pub objects: Vec<(&'static str, Value)>,
    pub workloads: usize,
    pub containers: usize,
    /// Distinct (image, pull-secret set): the checks watch holds (a namespace's Secret is a
    /// set of its own even when its bytes equal another's).
    pub distinct: BTreeSet<(String, Option<usize>)>,
    /// Distinct (image, credential bytes) the registry sees: every image with the pod's own
    /// ECR token, and every image a Secret namespace uses with the robot's credentials.
    pub distinct_pulls: BTreeSet<(String, bool)>,
}

fn namespace(k: usize) -> String {
    format!("team-{k:03}")
}

/// The fleet of `shape` over `images`. In the Secret namespaces half the pods name the
/// Secret themselves, half get it from their ServiceAccount `app`; elsewhere they have none
/// (the node's credentials). Deployments, StatefulSets and DaemonSets come with a pod each
/// (owned: not a workload of their own), CronJobs with a Job they made (likewise).
pub fn fleet(shape: Shape, images: &[String]) -> Fleet {
    let mut f = Fleet::empty(shape);
    let mut i = 0;
    for (coll, kind, per_mille) in KINDS {
        let count = shape.workloads * per_mille as usize / 1000;
        for _ in 0..count {
            f.add(coll, kind, i, images, 0);
            i += 1;
        }
    }
    f.workloads = i;
    f
}

impl Fleet {
    /// No workloads yet, of `shape`.
    fn empty(shape: Shape) -> Fleet {
        Fleet {
            shape,
            objects: Vec::new(),
            workloads: 0,
            containers: 0,
            distinct: BTreeSet::new(),
            distinct_pulls: BTreeSet::new(),
        }
    }

    /// Workload `i` of `kind`, in its namespace, with its child; `rev` changes the pod
    /// template's revision (a rollout) and the child's name, not the images.
    fn add(&mut self, coll: &'static str, kind: &str, i: usize, images: &[String], rev: usize) {
        let ns_i = i % self.shape.namespaces;
        let ns = namespace(ns_i);
        let name = format!("{}-{i:05}", kind.to_ascii_lowercase());
        let app = &images[i % images.len()];
        let init = i.is_multiple_of(4).then(|| &images[(i / 4) % images.len()]);
        let secret = ns_i < self.shape.secret_namespaces;
        let (sa, own): (&str, &[&str]) = match (secret, i % 2) {
            (true, 0) => ("default", &["ecr-pull"]),
            (true, _) => ("app", &[]),
            (false, _) => ("default", &[]),
        };
        let creds = secret.then_some(ns_i);
        for img in std::iter::once(app).chain(init) {
            self.distinct.insert((img.clone(), creds));
            self.distinct_pulls.insert((img.clone(), false));
            if secret {
                self.distinct_pulls.insert((img.clone(), true));
            }
            self.containers += 1;
        }
        let mut spec = pod_spec(sa, own, app, init.map(String::as_str));
        if rev > 0 {
            spec["containers"][0]["env"][0]["value"] = json!(format!("rev-{rev}"));
        }
        self.objects.push((
            coll,
            workload(kind, metadata(&ns, &name, i, None), spec.clone()),
        ));
        if let Some((owner_kind, child_coll, child_kind)) = child_of(kind) {
            self.objects.push((
                child_coll,
                workload(
                    child_kind,
                    metadata(
                        &ns,
                        &child_name(&name, rev),
                        i + 100_000,
                        Some((owner_kind, &name)),
                    ),
                    spec,
                ),
            ));
        }
    }

    /// Serves the fleet on a new fake API, with the stack's robot in the Secrets.
    pub fn served(&self, s: &super::Stack) -> Served {
        let api = WatchApi::start();
        self.serve(&api, &Robot::of(s));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.kubeconfig(dir.path(), "default");
        Served {
            api,
            kubeconfig,
            _dir: dir,
        }
    }

    /// Serves the fleet, the namespaces' ServiceAccounts and Secrets.
    pub fn serve(&self, api: &WatchApi, robot: &Robot<'_>) {
        let config = super::docker_config(robot.host, robot.user, robot.password);
        for k in 0..self.shape.namespaces {
            let ns = namespace(k);
            let secret = k < self.shape.secret_namespaces;
            let secrets: &[&str] = if secret { &["ecr-pull"] } else { &[] };
            api.single(
                &super::fake_api::service_account_path(&ns, "default"),
                200,
                service_account(&ns, "default", &[]),
            );
            api.single(
                &super::fake_api::service_account_path(&ns, "app"),
                200,
                service_account(&ns, "app", secrets),
            );
            if secret {
                api.single(
                    &super::fake_api::secret_path(&ns, "ecr-pull"),
                    200,
                    docker_secret(&ns, "ecr-pull", &config),
                );
            }
        }
        for (coll, obj) in &self.objects {
            api.put(coll, obj.clone());
        }
    }
}

/// The kind of object a workload of `kind` makes, and where: (owner kind, collection, kind).
fn child_of(kind: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match kind {
        "Deployment" => Some(("ReplicaSet", "api/v1/pods", "Pod")),
        "StatefulSet" => Some(("StatefulSet", "api/v1/pods", "Pod")),
        "DaemonSet" => Some(("DaemonSet", "api/v1/pods", "Pod")),
        "CronJob" => Some(("CronJob", "apis/batch/v1/jobs", "Job")),
        _ => None,
    }
}

fn child_name(owner: &str, rev: usize) -> String {
    format!("{owner}-7d9f8c6b5-r{rev}")
}

/// What a rollout storm did: how many objects it put and deleted, and the workloads it
/// created and deleted.
#[derive(Debug, Default)]
pub struct Storm {
    pub puts: usize,
    pub deletes: usize,
    pub created: BTreeSet<(String, String, String)>,
    pub deleted: BTreeSet<(String, String, String)>,
}

/// A rollout storm on a served fleet: every Deployment's pod template changes (a new
/// revision: same images) and its pod is replaced by one of the new revision; every
/// `delete_every`-th workload of every kind is deleted (with its child) and as many new
/// workloads are created (new names, the fleet's images). Returns what it changed.
pub fn rollout_storm(api: &WatchApi, f: &Fleet, images: &[String], delete_every: usize) -> Storm {
    let mut storm = Storm::default();
    let mut next = Fleet::empty(f.shape);
    let mut i = 0;
    for (coll, kind, per_mille) in KINDS {
        let count = f.shape.workloads * per_mille as usize / 1000;
        for _ in 0..count {
            let ns = namespace(i % f.shape.namespaces);
            let name = format!("{}-{i:05}", kind.to_ascii_lowercase());
            let child = child_of(kind);
            if i.is_multiple_of(delete_every) {
                api.delete(coll, &ns, &name);
                storm.deletes += 1;
                if let Some((_, child_coll, _)) = child {
                    api.delete(child_coll, &ns, &child_name(&name, 0));
                    storm.deletes += 1;
                }
                storm.deleted.insert((ns, kind.to_string(), name));
                // A new workload in its place: a name the fleet never had.
                let new_i = 50_000 + i;
                next.add(coll, kind, new_i, images, 0);
                storm.created.insert((
                    namespace(new_i % f.shape.namespaces),
                    kind.to_string(),
                    format!("{}-{new_i:05}", kind.to_ascii_lowercase()),
                ));
            } else if kind == "Deployment" {
                // The rollout: the new template, the old pod gone, the new one up.
                next.add(coll, kind, i, images, 1);
                if let Some((_, child_coll, _)) = child {
                    api.delete(child_coll, &ns, &child_name(&name, 0));
                    storm.deletes += 1;
                }
            }
            i += 1;
        }
    }
    for (coll, obj) in next.objects {
        api.put(coll, obj);
        storm.puts += 1;
    }
    storm
}

/// The workloads with a `workload_image_available` series on serve's metrics page, and the
/// number of such series.
pub fn workload_series(base: &str) -> (BTreeSet<(String, String, String)>, usize) {
    let (code, text) = super::scrape::get(&format!("{base}/metrics"));
    assert_eq!(code, 200, "metrics page");
    let label = |line: &str, key: &str| -> String {
        let start = format!("{key}=\"");
        line.split_once(&start)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(v, _)| v.to_string())
            .unwrap_or_default()
    };
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ecr_pull_probe_workload_image_available{"))
        .collect();
    let workloads = lines
        .iter()
        .map(|l| (label(l, "namespace"), label(l, "kind"), label(l, "name")))
        .collect();
    (workloads, lines.len())
}

/// The (namespace, kind, name) of every workload in a `/report`.
pub fn report_workloads(r: &Value) -> BTreeSet<(String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    r["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| (s(&w["namespace"]), s(&w["kind"]), s(&w["name"])))
        .collect()
}
