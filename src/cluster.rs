//! The cluster side, through the Kubernetes API: the workload a rollout will run (its images,
//! ServiceAccount, pull secrets, node selector) and the pull secrets themselves.
//!
//! In a pod the client uses the pod's ServiceAccount (in-cluster config); elsewhere the
//! kubeconfig. Turning API objects into what the probe needs is pure and tested alone.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, Secret as K8sSecret, ServiceAccount};
use kube::{Api, Client, Config};

use crate::diagnosis;
use crate::pullsecret::{self, SecretSet};

/// Plain data of the report, produced here.
pub use crate::report::{ContainerImage, Placement, Workload};

/// What a workload reference is, plain data: [`crate::workload`].
pub use crate::workload::{WorkloadKind, WorkloadRef, WorkloadRefError};

/// Adds a pull Secret to `set` as the kubelet's `MakeDockerKeyring` reads it
/// (`pkg/credentialprovider/secrets`): `.dockerconfigjson` only from a
/// `kubernetes.io/dockerconfigjson` Secret, `.dockercfg` only from a `kubernetes.io/dockercfg`
/// one, each only when not empty; any other Secret is skipped as the kubelet skips it, and
/// said as such (`PULL_SECRET_WRONG_TYPE`). One that cannot be parsed is recorded as
/// malformed: for the pod's pull secrets the kubelet then fails every pull of the pod.
pub fn add_pull_secret(set: &mut SecretSet, source: &str, secret: K8sSecret) {
    let data = secret.data.unwrap_or_default();
    let secret_type = secret.type_.unwrap_or_else(|| "Opaque".into());
    let (key, format) = match secret_type.as_str() {
        DOCKER_CONFIG_JSON_TYPE => (".dockerconfigjson", pullsecret::Format::ConfigJson),
        DOCKERCFG_TYPE => (".dockercfg", pullsecret::Format::Dockercfg),
        _ => {
            set.findings.push(diagnosis::pull_secret_wrong_type(
                source,
                &secret_type,
                data.keys().map(String::as_str),
                None,
            ));
            return;
        }
    };
    match data
        .get(key)
        .map(|b| b.0.as_slice())
        .filter(|b| !b.is_empty())
    {
        Some(bytes) => set.add(source, pullsecret::parse_as(bytes, format)),
        None => set.findings.push(diagnosis::pull_secret_wrong_type(
            source,
            &secret_type,
            data.keys().map(String::as_str),
            Some(key),
        )),
    }
}

/// The two Secret types the kubelet reads a docker config from.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
pub const DOCKERCFG_TYPE: &str = "kubernetes.io/dockercfg";

/// What reading the workload's ServiceAccount gave, for [`effective_pull_secrets`].
#[derive(Clone)]
pub enum ServiceAccountRead {
    /// Its `imagePullSecrets` names.
    Found(Vec<String>),
    /// It does not exist.
    Missing,
    /// It could not be read (already a finding).
    Failed(crate::report::Finding),
}

/// The pull secrets a workload's pods carry, by the rules that put them there: the
/// ServiceAccount admission plugin copies the ServiceAccount's `imagePullSecrets` only when
/// the pod lists none (counted on the raw list, so `[{name: ""}]` counts), and only at
/// admission, so an existing Pod has its own list alone; it refuses every pod whose
/// ServiceAccount does not exist. The kubelet's `getPullSecretsForPod` then skips empty
/// names. Problems go into `set` (findings, or a blocker for a missing ServiceAccount).
/// Returns the names and who listed them (`pod` or `serviceaccount`).
pub fn effective_pull_secrets(
    workload: &Workload,
    service_account: ServiceAccountRead,
    set: &mut SecretSet,
) -> (Vec<String>, &'static str) {
    let is_pod = workload.kind == WorkloadKind::Pod.to_string();
    if is_pod || workload.pull_secrets_listed {
        return (workload.image_pull_secrets.clone(), "pod");
    }
    match service_account {
        ServiceAccountRead::Found(names) => (
            names.into_iter().filter(|n| !n.is_empty()).collect(),
            "serviceaccount",
        ),
        ServiceAccountRead::Missing => {
            set.blockers.push(diagnosis::service_account_missing(
                &workload.namespace,
                &workload.service_account,
                &workload.kind,
                &workload.name,
            ));
            (vec![], "serviceaccount")
        }
        ServiceAccountRead::Failed(f) => {
            set.findings.push(f);
            (vec![], "serviceaccount")
        }
    }
}

/// The one reader of a workload's pull secrets, for `check` and `serve --watch` alike:
/// its ServiceAccount, the names [`effective_pull_secrets`] keeps, then each Secret by
/// [`add_pull_secret`]'s rules; a missing or unreadable one is a finding. `check` reads once;
/// watch keeps one reader with a cache ([`PullSecretReader::cached`]) and clears it every
/// interval, so many workloads of a namespace cost one read of each object per interval.
pub struct PullSecretReader {
    client: Client,
    cache: Option<ReadCache>,
}

/// What a cached reader has read this interval, by (namespace, name).
#[derive(Default)]
struct ReadCache {
    service_accounts: HashMap<(String, String), ServiceAccountRead>,
    secrets: HashMap<(String, String), SecretRead>,
}

#[derive(Clone)]
enum SecretRead {
    Found(Box<K8sSecret>),
    Missing,
    Failed(String),
}

impl PullSecretReader {
    /// Reads every object from the API, every time.
    pub fn new(client: Client) -> Self {
        PullSecretReader {
            client,
            cache: None,
        }
    }

    /// Reads each ServiceAccount and Secret once until [`PullSecretReader::clear`].
    pub fn cached(client: Client) -> Self {
        PullSecretReader {
            client,
            cache: Some(ReadCache::default()),
        }
    }

    /// Forgets what was read, so changed Secrets and ServiceAccounts are seen.
    pub fn clear(&mut self) {
        if let Some(c) = &mut self.cache {
            *c = ReadCache::default();
        }
    }

    /// The pull secrets the kubelet would have for the workload's pods, and who listed them
    /// (`pod` or `serviceaccount`).
    pub async fn read(&mut self, w: &Workload) -> (SecretSet, &'static str) {
        let ns = &w.namespace;
        let mut set = SecretSet::default();
        let sa = self.service_account(ns, &w.service_account).await;
        let (names, from) = effective_pull_secrets(w, sa, &mut set);
        for name in names {
            match self.secret(ns, &name).await {
                SecretRead::Found(secret) => {
                    add_pull_secret(&mut set, &format!("secret/{ns}/{name}"), *secret)
                }
                SecretRead::Missing => set
                    .findings
                    .push(diagnosis::pull_secret_missing(ns, &name, from)),
                SecretRead::Failed(detail) => set
                    .findings
                    .push(diagnosis::cluster_read_failed("Secret", ns, &name, &detail)),
            }
        }
        (set, from)
    }

    async fn service_account(&mut self, ns: &str, name: &str) -> ServiceAccountRead {
        let key = (ns.to_string(), name.to_string());
        if let Some(read) = self
            .cache
            .as_ref()
            .and_then(|c| c.service_accounts.get(&key))
        {
            return read.clone();
        }
        let read = match Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .get(name)
            .await
        {
            Ok(sa) => ServiceAccountRead::Found(
                sa.image_pull_secrets
                    .iter()
                    .flatten()
                    .map(|r| r.name.clone())
                    .collect(),
            ),
            Err(e) if not_found(&e) => ServiceAccountRead::Missing,
            Err(e) => ServiceAccountRead::Failed(diagnosis::cluster_read_failed(
                "ServiceAccount",
                ns,
                name,
                &crate::error_chain(&e),
            )),
        };
        if let Some(c) = &mut self.cache {
            c.service_accounts.insert(key, read.clone());
        }
        read
    }

    async fn secret(&mut self, ns: &str, name: &str) -> SecretRead {
        let key = (ns.to_string(), name.to_string());
        if let Some(read) = self.cache.as_ref().and_then(|c| c.secrets.get(&key)) {
            return read.clone();
        }
        let read = match Api::<K8sSecret>::namespaced(self.client.clone(), ns)
            .get(name)
            .await
        {
            Ok(secret) => SecretRead::Found(Box::new(secret)),
            Err(e) if not_found(&e) => SecretRead::Missing,
            Err(e) => SecretRead::Failed(crate::error_chain(&e)),
        };
        if let Some(c) = &mut self.cache {
            c.secrets.insert(key, read.clone());
        }
        read
    }
}

pub fn workload_from_spec(
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    spec: &PodSpec,
) -> Workload {
    let image = |c: &k8s_openapi::api::core::v1::Container, init: bool| ContainerImage {
        container: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        init,
        image_pull_policy: c.image_pull_policy.clone(),
    };
    Workload {
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        service_account: spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into()),
        image_pull_secrets: spec
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty())
            .collect(),
        pull_secrets_listed: spec
            .image_pull_secrets
            .as_ref()
            .is_some_and(|l| !l.is_empty()),
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        containers: spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| image(c, true))
            .chain(spec.containers.iter().map(|c| image(c, false)))
            .collect(),
        placement: Placement {
            affinity: spec
                .affinity
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok()),
            tolerations: spec
                .tolerations
                .iter()
                .flatten()
                .filter_map(|t| serde_json::to_value(t).ok())
                .collect(),
            runtime_class_name: spec.runtime_class_name.clone().filter(|s| !s.is_empty()),
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no Kubernetes configuration: neither in-cluster nor a kubeconfig")]
    Config(#[source] kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("cannot read {kind} {namespace}/{name}")]
    Read {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {namespace}/{name} has no pod template")]
    NoTemplate {
        kind: String,
        namespace: String,
        name: String,
    },
}

/// A Kubernetes client bound to one namespace.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    pub namespace: String,
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl Cluster {
    pub async fn connect(namespace: Option<&str>) -> Result<Cluster, ClusterError> {
        let config = Config::infer().await.map_err(ClusterError::Config)?;
        let namespace = namespace
            .map(str::to_string)
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(ClusterError::Client)?;
        Ok(Cluster { client, namespace })
    }

    /// A client built elsewhere (`job::connect`: a kubeconfig context, request timeouts).
    pub fn from_client(client: Client, namespace: String) -> Cluster {
        Cluster { client, namespace }
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    fn read_err(&self, kind: &str, name: &str) -> impl FnOnce(kube::Error) -> ClusterError {
        let (kind, name, namespace) = (kind.to_string(), name.to_string(), self.namespace.clone());
        move |source| ClusterError::Read {
            kind,
            namespace,
            name,
            source,
        }
    }

    /// One namespaced object, with the failure named for the object.
    async fn get<K>(&self, name: &str) -> Result<K, ClusterError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + fmt::Debug,
        K::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).to_string();
        Api::<K>::namespaced(self.client.clone(), &self.namespace)
            .get(name)
            .await
            .map_err(self.read_err(&kind, name))
    }

    /// Reads the workload and extracts its pod template.
    pub async fn workload(&self, r: &WorkloadRef) -> Result<Workload, ClusterError> {
        let ns = &self.namespace;
        let name = r.name.as_str();
        let spec: Option<PodSpec> = match r.kind {
            WorkloadKind::Deployment => self
                .get::<Deployment>(name)
                .await?
                .spec
                .and_then(|s| s.template.spec),
            WorkloadKind::StatefulSet => self
                .get::<StatefulSet>(name)
                .await?
                .spec
                .and_then(|s| s.template.spec),
            WorkloadKind::DaemonSet => self
                .get::<DaemonSet>(name)
                .await?
                .spec
                .and_then(|s| s.template.spec),
            WorkloadKind::Job => self
                .get::<Job>(name)
                .await?
                .spec
                .and_then(|s| s.template.spec),
            WorkloadKind::CronJob => self
                .get::<CronJob>(name)
                .await?
                .spec
                .and_then(|s| s.job_template.spec)
                .and_then(|s| s.template.spec),
            WorkloadKind::Pod => self.get::<Pod>(name).await?.spec,
        };
        let kind = r.kind.to_string();
        let spec = spec.ok_or_else(|| ClusterError::NoTemplate {
            kind: kind.clone(),
            namespace: ns.clone(),
            name: r.name.clone(),
        })?;
        Ok(workload_from_spec(r.kind, ns, &r.name, &spec))
    }

    /// A ServiceAccount's annotations, as a KEP-4412 credential provider is sent them.
    pub async fn service_account_annotations(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, kube::Error> {
        let sa = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.namespace)
            .get(name)
            .await?;
        Ok(sa.metadata.annotations.unwrap_or_default())
    }

    /// A short-lived token of the ServiceAccount for `audience` (a TokenRequest, as the
    /// kubelet makes for a KEP-4412 provider). Needs `create` on `serviceaccounts/token`.
    pub async fn service_account_token(
        &self,
        name: &str,
        audience: &str,
    ) -> Result<crate::secret::Secret<String>, kube::Error> {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![audience.to_string()],
                // The API's minimum; the probe needs it for seconds.
                expiration_seconds: Some(600),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.namespace)
            .create_token_request(name, &Default::default(), &request)
            .await?;
        Ok(crate::secret::Secret::new(
            answer.status.map(|s| s.token).unwrap_or_default(),
        ))
    }

    /// The pull secrets the workload's pods will carry, read and parsed. Each problem is a
    /// finding, not an error: the kubelet also carries on without a missing secret.
    pub async fn pull_secrets(&self, w: &Workload) -> SecretSet {
        PullSecretReader::new(self.client.clone()).read(w).await.0
    }

    /// OpenShift's global pull secret, which the machine-config operator writes to every
    /// node's `/var/lib/kubelet/config.json` (`openshift-config/pull-secret`), with ROSA HCP's
    /// `kube-system/additional-pull-secret` merged in as HyperShift's DaemonSet merges it:
    /// the original's keys win. Node-wide config, so `None` when neither can be read.
    pub async fn global_pull_secret(
        &self,
    ) -> Option<(
        String,
        Result<Vec<pullsecret::Entry>, pullsecret::Malformed>,
    )> {
        let mut parts = Vec::new();
        for (ns, name) in [
            ("openshift-config", "pull-secret"),
            ("kube-system", "additional-pull-secret"),
        ] {
            if let Ok(secret) = Api::<K8sSecret>::namespaced(self.client.clone(), ns)
                .get(name)
                .await
            {
                let mut one = SecretSet::default();
                add_pull_secret(&mut one, &format!("secret/{ns}/{name}"), secret);
                parts.push((format!("secret/{ns}/{name}"), one));
            }
        }
        if parts.is_empty() {
            return None;
        }
        let source = parts
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(" + ");
        let mut entries: Vec<pullsecret::Entry> = Vec::new();
        for (_, part) in parts {
            if let Some((_, m)) = part.malformed.into_iter().next() {
                return Some((source, Err(m)));
            }
            for e in part.entries {
                if !entries.iter().any(|have| have.key == e.key) {
                    entries.push(e);
                }
            }
        }
        Some((source, Ok(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_workload_references() {
        let r: WorkloadRef = "deploy/naming-server".parse().unwrap();
        assert_eq!(
            (r.kind, r.name.as_str()),
            (WorkloadKind::Deployment, "naming-server")
        );
        assert_eq!(
            "CronJob/nightly".parse::<WorkloadRef>().unwrap().kind,
            WorkloadKind::CronJob
        );
        for bad in [
            "naming-server",
            "service/x",
            "deployment/",
            "deployment/Upper",
            "pod/a/b",
        ] {
            let e = bad.parse::<WorkloadRef>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    /// A Deployment's pod template, as a real API server returns it.
    const TEMPLATE: &str = r#"{
      "serviceAccountName": "naming-server",
      "imagePullSecrets": [{"name": "ecr-pull"}],
      "nodeSelector": {"node-role.kubernetes.io/worker": ""},
      "initContainers": [{"name": "migrate", "image": "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/migrate:1", "imagePullPolicy": "IfNotPresent"}],
      "containers": [{"name": "app", "image": "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest", "imagePullPolicy": "Always"}]
    }"#;

    #[test]
    fn takes_images_secrets_and_placement_from_a_pod_template() {
        let spec: PodSpec = serde_json::from_str(TEMPLATE).unwrap();
        let w = workload_from_spec(
            WorkloadKind::Deployment,
            "consultingfirm",
            "naming-server",
            &spec,
        );
        assert_eq!(w.service_account, "naming-server");
        assert_eq!(w.image_pull_secrets, vec!["ecr-pull"]);
        assert_eq!(w.node_selector.len(), 1);
        assert_eq!(w.containers.len(), 2);
        assert!(w.containers[0].init && w.containers[0].container == "migrate");
        assert_eq!(w.containers[1].image_pull_policy.as_deref(), Some("Always"));
    }

    fn from_spec(kind: WorkloadKind, spec: &str) -> Workload {
        let spec: PodSpec = serde_json::from_str(spec).unwrap();
        workload_from_spec(kind, "ns", "w", &spec)
    }

    fn names(w: &Workload, sa: ServiceAccountRead) -> (Vec<String>, &'static str, SecretSet) {
        let mut set = SecretSet::default();
        let (n, from) = effective_pull_secrets(w, sa, &mut set);
        (n, from, set)
    }

    fn found(names: &[&str]) -> ServiceAccountRead {
        ServiceAccountRead::Found(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn the_serviceaccounts_secrets_apply_only_when_the_pod_lists_none() {
        let w = from_spec(
            WorkloadKind::Deployment,
            r#"{"containers":[{"name":"a","image":"x"}]}"#,
        );
        assert_eq!(w.service_account, "default");
        let (n, from, _) = names(&w, found(&["from-sa"]));
        assert_eq!((n, from), (vec!["from-sa".to_string()], "serviceaccount"));
        let w = from_spec(
            WorkloadKind::Deployment,
            r#"{"imagePullSecrets":[{"name":"own"}],"containers":[{"name":"a","image":"x"}]}"#,
        );
        let (n, from, _) = names(&w, found(&["from-sa"]));
        assert_eq!((n, from), (vec!["own".to_string()], "pod"));
    }

    /// Issue 21 point 5, the three admission cases.
    #[test]
    fn pull_secrets_follow_the_serviceaccount_admission_plugin() {
        // `[{name: ""}]` counts as a list at admission (nothing is copied), and the kubelet
        // skips the empty name: the pods have no pull secrets at all.
        let w = from_spec(
            WorkloadKind::Deployment,
            r#"{"imagePullSecrets":[{"name":""}],"containers":[{"name":"a","image":"x"}]}"#,
        );
        let (n, from, set) = names(&w, found(&["from-sa"]));
        assert_eq!((n, from), (vec![], "pod"));
        assert!(set.is_empty());
        // An existing Pod was admitted already: its own list alone, never the
        // ServiceAccount's current one.
        let pod = from_spec(
            WorkloadKind::Pod,
            r#"{"containers":[{"name":"a","image":"x"}]}"#,
        );
        let (n, from, _) = names(&pod, found(&["added-later"]));
        assert_eq!((n, from), (vec![], "pod"));
        // A missing ServiceAccount: admission refuses every pod of the workload.
        let (n, _, set) = names(&w_without_list(), ServiceAccountRead::Missing);
        assert!(n.is_empty());
        assert_eq!(set.blockers.len(), 1);
        assert_eq!(
            set.blockers[0].code,
            diagnosis::Code::SERVICE_ACCOUNT_MISSING
        );
        // ... but not a Pod that exists.
        let (_, _, set) = names(&pod, ServiceAccountRead::Missing);
        assert!(set.blockers.is_empty());
    }

    fn w_without_list() -> Workload {
        from_spec(
            WorkloadKind::Deployment,
            r#"{"serviceAccountName":"gone","containers":[{"name":"a","image":"x"}]}"#,
        )
    }

    fn secret(type_: Option<&str>, data: &[(&str, &str)]) -> K8sSecret {
        K8sSecret {
            type_: type_.map(str::to_string),
            data: Some(
                data.iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            k8s_openapi::ByteString(v.as_bytes().to_vec()),
                        )
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    /// kubernetes `pkg/credentialprovider/secrets/secrets_test.go` `Test_MakeDockerKeyring`:
    /// each key read only from its own Secret type; plus an `Opaque` Secret and empty data.
    #[test]
    fn secrets_are_read_by_their_type_as_make_docker_keyring_reads_them() {
        let json = r#"{"auths": {"test.registry.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}}"#;
        let cfg = r#"{"test.registry.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}"#;
        let userpass =
            r#"{"auths": {"test.registry.io": {"username": "user", "password": "password"}}}"#;
        let cases: [(&str, Option<&str>, &str, &str, bool); 8] = [
            (
                "with .dockerconfigjson and auth field",
                Some(DOCKER_CONFIG_JSON_TYPE),
                ".dockerconfigjson",
                json,
                true,
            ),
            (
                "with .dockerconfig and auth field",
                Some(DOCKERCFG_TYPE),
                ".dockercfg",
                cfg,
                true,
            ),
            (
                "with .dockerconfigjson and username/password fields",
                Some(DOCKER_CONFIG_JSON_TYPE),
                ".dockerconfigjson",
                userpass,
                true,
            ),
            (
                "with .dockerconfigjson but with wrong Secret Type",
                Some(DOCKERCFG_TYPE),
                ".dockerconfigjson",
                json,
                false,
            ),
            (
                "with .dockerconfig but with wrong Secret Type",
                Some(DOCKER_CONFIG_JSON_TYPE),
                ".dockercfg",
                cfg,
                false,
            ),
            (
                "an Opaque Secret with a .dockerconfigjson",
                Some("Opaque"),
                ".dockerconfigjson",
                json,
                false,
            ),
            ("no type at all", None, ".dockerconfigjson", json, false),
            (
                "empty data is skipped",
                Some(DOCKER_CONFIG_JSON_TYPE),
                ".dockerconfigjson",
                "",
                false,
            ),
        ];
        for (name, type_, key, data, used) in cases {
            let mut set = SecretSet::default();
            add_pull_secret(&mut set, "secret/ns/s", secret(type_, &[(key, data)]));
            assert_eq!(set.entries.len(), usize::from(used), "{name}");
            if used {
                assert_eq!(set.entries[0].username, "user", "{name}");
                assert!(set.findings.is_empty(), "{name}");
            } else {
                assert_eq!(
                    set.findings[0].code,
                    diagnosis::Code::PULL_SECRET_WRONG_TYPE,
                    "{name}"
                );
                assert!(set.malformed.is_empty(), "{name}");
            }
        }
        // Unparsable content of the right type: malformed (the kubelet fails the pod's pulls).
        let mut set = SecretSet::default();
        add_pull_secret(
            &mut set,
            "secret/ns/s",
            secret(Some(DOCKER_CONFIG_JSON_TYPE), &[(".dockerconfigjson", "{")]),
        );
        assert_eq!(set.malformed.len(), 1);
    }
}
