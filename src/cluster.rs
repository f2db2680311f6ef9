//! The cluster side, through the Kubernetes API: the workload a rollout will run (its images,
//! ServiceAccount, pull secrets, node selector) and the pull secrets themselves.
//!
//! In a pod the client uses the pod's ServiceAccount (in-cluster config); elsewhere the
//! kubeconfig. Turning API objects into what the probe needs is pure and tested alone.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, Secret as K8sSecret, ServiceAccount};
use kube::{Api, Client, Config};

use crate::diagnosis;
use crate::pullsecret::{self, SecretSet};

/// Plain data of the report, produced here.
pub use crate::report::{ContainerImage, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
    Job,
    Pod,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `KIND/NAME`, as `kubectl` writes it (`deployment/naming-server`, `deploy/x`, `cronjob/y`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --images-from {input:?}: expected KIND/NAME with KIND one of deployment, statefulset, daemonset, cronjob, job, pod"
)]
pub struct WorkloadRefError {
    pub input: String,
}

impl FromStr for WorkloadRef {
    type Err = WorkloadRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || WorkloadRefError {
            input: s.to_string(),
        };
        let (kind, name) = s.split_once('/').ok_or_else(err)?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
            "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
            "daemonset" | "daemonsets" | "ds" => WorkloadKind::DaemonSet,
            "cronjob" | "cronjobs" | "cj" => WorkloadKind::CronJob,
            "job" | "jobs" => WorkloadKind::Job,
            "pod" | "pods" | "po" => WorkloadKind::Pod,
            _ => return Err(err()),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(err());
        }
        Ok(WorkloadRef {
            kind,
            name: name.to_string(),
        })
    }
}

/// A pull Secret's docker config (`.dockerconfigjson`, else the legacy `.dockercfg`), parsed as
/// the kubelet reads it; a Secret with neither is an empty config, hence malformed.
pub fn parse_pull_secret(
    secret: K8sSecret,
) -> Result<Vec<pullsecret::Entry>, pullsecret::Malformed> {
    let data = secret.data.unwrap_or_default();
    let raw = data
        .get(".dockerconfigjson")
        .or_else(|| data.get(".dockercfg"))
        .map(|b| b.0.as_slice())
        .unwrap_or_default();
    pullsecret::parse(raw)
}

/// The workload's view of a pod spec.
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
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        containers: spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| image(c, true))
            .chain(spec.containers.iter().map(|c| image(c, false)))
            .collect(),
    }
}

/// The pull secrets a pod of this workload will carry: its own, or, when it lists none, its
/// ServiceAccount's (what the ServiceAccount admission controller adds).
pub fn effective_pull_secrets(
    workload: &Workload,
    sa_secrets: &[String],
) -> (Vec<String>, &'static str) {
    if workload.image_pull_secrets.is_empty() {
        (sa_secrets.to_vec(), "serviceaccount")
    } else {
        (workload.image_pull_secrets.clone(), "pod")
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

    /// The pull secrets the workload's pods will carry, read and parsed, plus (with `global`)
    /// OpenShift's global pull secret. Each problem is a finding, not an error: the kubelet
    /// also carries on without a missing secret.
    pub async fn pull_secrets(&self, w: &Workload, global: bool) -> SecretSet {
        let mut set = SecretSet::default();
        let sa = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.namespace)
            .get(&w.service_account)
            .await;
        let sa_secrets: Vec<String> = match &sa {
            Ok(sa) => sa
                .image_pull_secrets
                .iter()
                .flatten()
                .map(|r| r.name.clone())
                .collect(),
            Err(e) => {
                set.findings.push(diagnosis::cluster_read_failed(
                    "ServiceAccount",
                    &self.namespace,
                    &w.service_account,
                    &crate::error_chain(e),
                ));
                vec![]
            }
        };
        let (names, from) = effective_pull_secrets(w, &sa_secrets);
        let mut wanted: Vec<(String, String, bool)> = names
            .into_iter()
            .map(|n| (self.namespace.clone(), n, false))
            .collect();
        if global {
            wanted.push(("openshift-config".into(), "pull-secret".into(), true));
            wanted.push(("kube-system".into(), "additional-pull-secret".into(), true));
        }
        for (ns, name, optional) in wanted {
            let source = format!("secret/{ns}/{name}");
            match Api::<K8sSecret>::namespaced(self.client.clone(), &ns)
                .get(&name)
                .await
            {
                Ok(secret) => {
                    set.add(&source, parse_pull_secret(secret));
                }
                Err(e) if not_found(&e) && optional => {}
                Err(e) if not_found(&e) => {
                    set.findings
                        .push(diagnosis::pull_secret_missing(&ns, &name, from));
                }
                Err(e) => set.findings.push(diagnosis::cluster_read_failed(
                    "Secret",
                    &ns,
                    &name,
                    &crate::error_chain(&e),
                )),
            }
        }
        set
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

    #[test]
    fn the_serviceaccounts_secrets_apply_only_when_the_pod_lists_none() {
        let spec: PodSpec =
            serde_json::from_str(r#"{"containers":[{"name":"a","image":"x"}]}"#).unwrap();
        let mut w = workload_from_spec(WorkloadKind::Pod, "ns", "p", &spec);
        assert_eq!(w.service_account, "default");
        let sa = vec!["from-sa".to_string()];
        assert_eq!(
            effective_pull_secrets(&w, &sa),
            (sa.clone(), "serviceaccount")
        );
        w.image_pull_secrets = vec!["own".into()];
        assert_eq!(
            effective_pull_secrets(&w, &sa),
            (vec!["own".to_string()], "pod")
        );
    }
}
