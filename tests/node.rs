//! The node provider path against the local stack: a credential provider plugin that speaks
//! the kubelet's protocol (`tests/plugins/ecr-credential-provider-local`, which assumes a
//! distinct node role in moto and gets its password with GetAuthorizationToken), run by the
//! probe from a CredentialProviderConfig as the kubelet runs it; then the real pull.

mod common;

use std::path::{Path, PathBuf};

use common::fault::{Fault, FaultRegistry};
use common::report::{Finding, KubeletStatus, ProviderPath, Report, Severity, Status};
use common::*;

const NODE_ROLE: &str = "arn:aws:iam::818140567777:role/eks-node-role";
const PLUGIN: &str = "ecr-credential-provider";

/// A node: a bin dir with the plugin under `name`, and a config file.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    /// The local plugin as `name`, with `env` as the provider's env; `config` overrides the
    /// whole config when given.
    fn new(match_images: &[&str], env: &[(&str, &str)]) -> Node {
        let node = Node::bare();
        node.install(PLUGIN, &plugin_source());
        node.config(&provider_config(PLUGIN, match_images, env, None));
        node
    }

    fn bare() -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        Node { dir }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    fn install(&self, name: &str, source: &Path) {
        std::os::unix::fs::symlink(source, self.bin().join(name)).unwrap();
    }

    fn install_script(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.bin().join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    fn check(&self, image: &str, extra_env: &[(&str, Option<&str>)]) -> Run {
        let mut env: Vec<(&str, Option<&str>)> = vec![];
        env.extend_from_slice(extra_env);
        probe(
            &[
                "check",
                image,
                "--credential-provider-config",
                self.config_path().to_str().unwrap(),
                "--credential-provider-bin-dir",
                self.bin().to_str().unwrap(),
            ],
            &env,
        )
    }
}

fn plugin_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/ecr-credential-provider-local")
}

/// The node role's "instance profile": what the plugin assumes the node role with, and where
/// it reaches AWS (moto). Both come through the provider's `env`, as on a real node: the plugin
/// gets the kubelet's environment, never the probe's `AWS_*` (issue 21 point 2).
fn node_env() -> Vec<(&'static str, &'static str)> {
    vec![
        plugin_aws_endpoint(),
        ("NODE_ROLE_ARN", NODE_ROLE),
        ("NODE_ACCESS_KEY_ID", "AKIANODEINSTANCEPROFILE"),
        ("NODE_SECRET_ACCESS_KEY", "node-instance-profile-secret-key"),
    ]
}

fn node_path(r: &Report) -> &ProviderPath {
    r.only_image()
        .paths
        .node_credential_provider
        .as_ref()
        .expect("a node provider path")
}

/// The finding with `code` on the node path, its stages' findings searched first.
fn node_finding<'a>(r: &'a Report, code: &str) -> &'a Finding {
    node_path(r).finding(code)
}

#[test]
fn the_node_provider_pulls_with_the_nodes_credentials() {
    let s = Stack::get();
    let node = Node::new(&["*.dkr.ecr.*.amazonaws.com"], &node_env());
    let run = node.check(
        &s.image("naming-server-service:latest"),
        &[(
            "ECR_PULL_PROBE_NODE_NAME",
            Some("ip-10-0-1-23.ec2.internal"),
        )],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.typed();
    assert_eq!(r.require, "auto");
    let p = node_path(&r);
    assert_eq!(p.status, Status::Pass, "{p:#?}");
    assert_eq!(p.provider.as_deref(), Some(PLUGIN));
    assert_eq!(p.match_image.as_deref(), Some("*.dkr.ecr.*.amazonaws.com"));
    // ecr-credential-provider keys its answer by the image's host.
    assert_eq!(p.auth_key.as_deref(), Some(s.var("STACK_ECR_HOST")));
    assert_eq!(p.username.as_deref(), Some("AWS"));
    assert_eq!(p.cache_key_type.as_deref(), Some("Registry"));
    assert_eq!(p.node.as_deref(), Some("ip-10-0-1-23.ec2.internal"));
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "credential_provider",
            "registry_auth",
            "manifest",
            "config",
            "layers"
        ]
    );
    // The plugin's password never leaves the process.
    let password = s.var("STACK_REGISTRY_PASSWORD");
    assert!(!run.stdout.contains(password) && !run.stderr.contains(password));
}

/// The incident: the node role is refused by the repository policy of another account. The
/// node path names the node principal and the statement that would let it pull.
#[test]
fn a_refused_node_role_is_named_with_the_policy_that_would_let_it_pull() {
    const NODE_DENIED: &str = "User: arn:aws:sts::111122223333:assumed-role/eks-node-role/i-0node is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/faulty because no resource-based policy allows the ecr:BatchGetImage action";
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::DenyManifest(NODE_DENIED));
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let node = Node::new(&["*.dkr.ecr.*.amazonaws.com"], &node_env());
    let run = node.check(
        &s.image("faulty:latest"),
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.typed();
    assert_eq!(node_path(&r).status, Status::Fail);
    let f = node_finding(&r, "REGISTRY_DENIED_RESOURCE_POLICY");
    assert_eq!(
        f.evidence["principal"],
        "arn:aws:sts::111122223333:assumed-role/eks-node-role/i-0node"
    );
    let fix = &f.remediation;
    assert!(
        fix.contains("arn:aws:iam::111122223333:role/eks-node-role")
            && fix.contains("ecr:BatchGetImage"),
        "{fix}"
    );
    // The text report leads with the kubelet's answer.
    let text = node.check(
        &s.image("faulty:latest"),
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
            ("ECR_PULL_PROBE_OUTPUT", Some("text")),
        ],
    );
    assert!(
        text.stdout
            .starts_with("FAIL: 1 of 1 image cannot be pulled, kubelet path checked: yes, the verdict is the kubelet's"),
        "{}",
        text.stdout
    );
}

#[test]
fn no_matching_provider_means_no_node_credentials() {
    let s = Stack::get();
    let node = Node::new(
        &["*.dkr.ecr.*.amazonaws.com.cn", "registry.example.com"],
        &node_env(),
    );
    let run = node.check(&s.image("naming-server-service:latest"), &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.typed();
    let f = node_finding(&r, "NODE_PROVIDER_NO_MATCH");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.evidence["match_images"][PLUGIN],
        serde_json::json!(["*.dkr.ecr.*.amazonaws.com.cn", "registry.example.com"])
    );
    // The provider holds nothing for the image; the kubelet's list is empty, so it makes
    // the anonymous pull, which is refused.
    assert_eq!(node_path(&r).status, Status::Skip);
    let k = r.only_image().paths.kubelet.as_ref().expect("the kubelet");
    assert_eq!(k.status, KubeletStatus::Fail, "{k:#?}");
    assert_eq!(k.credentials[0].source, "anonymous");
    assert_eq!(k.findings[0].code, "KUBELET_NO_CREDENTIALS");
    let refused = report::all_findings(&k.stages, &[])
        .find(|f| f.code == "REGISTRY_UNAUTHORIZED")
        .unwrap_or_else(|| panic!("{k:#?}"));
    assert!(refused.summary.contains("none apply"), "{refused:#?}");
}

#[test]
fn a_missing_plugin_binary() {
    let s = Stack::get();
    let node = Node::bare();
    node.config(&provider_config(
        PLUGIN,
        &["*.dkr.ecr.*.amazonaws.com"],
        &[],
        None,
    ));
    let run = node.check(&s.image("naming-server-service:latest"), &[]);
    assert_eq!(run.code, 1);
    let r = run.typed();
    let f = node_finding(&r, "NODE_PROVIDER_PLUGIN_NOT_FOUND");
    assert!(f.summary.contains("does not exist"), "{f:#?}");
}

/// A node without an instance role: the plugin's own error, in the evidence, with a fix that
/// fits it.
#[test]
fn a_plugin_that_fails_is_quoted() {
    let s = Stack::get();
    let node = Node::new(
        &["*.dkr.ecr.*.amazonaws.com"],
        &[("NODE_ROLE_ARN", NODE_ROLE)],
    );
    let run = node.check(&s.image("naming-server-service:latest"), &[]);
    assert_eq!(run.code, 1);
    let r = run.typed();
    let f = node_finding(&r, "NODE_PROVIDER_PLUGIN_FAILED");
    assert_eq!(f.evidence["exit_code"], 1);
    assert!(f.summary.contains("no EC2 IMDS role found"), "{f:#?}");
    assert!(f.remediation.contains("instance profile"));
}

/// A plugin that never answers is killed at the run's deadline, and no process is left.
#[test]
fn a_hung_plugin_is_killed_at_the_deadline() {
    let s = Stack::get();
    let node = Node::bare();
    let marker = format!("hung-plugin-{}", std::process::id());
    node.install_script(PLUGIN, &format!("#!/bin/sh\nexec sleep 300 # {marker}\n"));
    node.config(&provider_config(
        PLUGIN,
        &["*.dkr.ecr.*.amazonaws.com"],
        &[],
        None,
    ));
    let started = std::time::Instant::now();
    let run = probe(
        &[
            "check",
            &s.image("naming-server-service:latest"),
            "--credential-provider-config",
            node.config_path().to_str().unwrap(),
            "--credential-provider-bin-dir",
            node.bin().to_str().unwrap(),
            "--timeout",
            "3s",
        ],
        &[],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.typed();
    let f = node_finding(&r, "NODE_PROVIDER_PLUGIN_FAILED");
    assert!(f.summary.contains("deadline"), "{f:#?}");
    let left = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn garbage_on_the_plugins_stdout() {
    let s = Stack::get();
    for (script, want) in [
        ("echo 'not json at all'", "not a JSON"),
        (
            "echo '{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1beta1\",\"cacheKeyType\":\"Registry\",\"auth\":{}}'",
            "does not match",
        ),
        (
            "echo '{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"cacheKeyType\":\"Registry\",\"auth\":{\"other.example.com\":{\"username\":\"u\",\"password\":\"leaked-password-123\"}}}'",
            "no auth entry",
        ),
    ] {
        let node = Node::bare();
        node.install_script(PLUGIN, &format!("#!/bin/sh\ncat >/dev/null\n{script}\n"));
        node.config(&provider_config(
            PLUGIN,
            &["*.dkr.ecr.*.amazonaws.com"],
            &[],
            None,
        ));
        let run = node.check(&s.image("naming-server-service:latest"), &[]);
        assert_eq!(run.code, 1);
        let r = run.typed();
        let f = node_finding(&r, "NODE_PROVIDER_RESPONSE_INVALID");
        assert!(f.summary.contains(want), "{want}: {f:#?}");
        assert!(!run.stdout.contains("leaked-password-123"));
    }
}

#[test]
fn a_config_no_kubelet_would_accept() {
    let s = Stack::get();
    let node = Node::new(&["*.dkr.ecr.*.amazonaws.com"], &node_env());
    node.config(
        &provider_config(PLUGIN, &["*.dkr.ecr.*.amazonaws.com"], &[], None)
            .replace("    defaultCacheDuration: 12h\n", ""),
    );
    let run = node.check(&s.image("naming-server-service:latest"), &[]);
    assert_eq!(run.code, 1);
    let r = run.typed();
    let f = node_finding(&r, "NODE_PROVIDER_CONFIG_INVALID");
    assert!(
        f.evidence["rule"]
            .as_str()
            .unwrap()
            .contains("defaultCacheDuration is required"),
        "{f:#?}"
    );
}

/// KEP-4412: a provider with tokenAttributes gets the ServiceAccount token; without the
/// `eks.amazonaws.com/ecr-role-arn` annotation a v1.34 plugin refuses, and the probe says why.
#[test]
fn a_service_account_token_provider_without_the_ecr_role_annotation() {
    let s = Stack::get();
    let node = Node::bare();
    node.install(PLUGIN, &plugin_source());
    let mut env = node_env();
    env.push(("PLUGIN_BEHAVIOUR", "v1.34"));
    node.config(&provider_config(
        PLUGIN,
        &["*.dkr.ecr.*.amazonaws.com"],
        &env,
        Some(
            "    tokenAttributes:
      serviceAccountTokenAudience: sts.amazonaws.com
      requireServiceAccount: false
      cacheType: ServiceAccount
",
        ),
    ));
    let token = s.var("AWS_WEB_IDENTITY_TOKEN_FILE");
    let run = probe(
        &[
            "check",
            &s.image("naming-server-service:latest"),
            "--credential-provider-config",
            node.config_path().to_str().unwrap(),
            "--credential-provider-bin-dir",
            node.bin().to_str().unwrap(),
            "--service-account-token-file",
            token,
        ],
        &[("RUST_LOG", Some("trace"))],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.typed();
    let warn = node_finding(&r, "NODE_PROVIDER_ECR_ROLE_ANNOTATION");
    assert_eq!(warn.severity, Severity::Warning);
    let f = node_finding(&r, "NODE_PROVIDER_PLUGIN_FAILED");
    assert!(f.summary.contains("no arn provided"), "{f:#?}");
    assert!(f.remediation.contains("eks.amazonaws.com/ecr-role-arn"));
    // The token the plugin was sent stays in the process, at every log level.
    let jwt = std::fs::read_to_string(token).unwrap();
    let jwt = jwt.trim();
    assert!(!run.stdout.contains(jwt) && !run.stderr.contains(jwt));
}

/// Issue 21 point 1, the first reproduced wrong verdict: a matching pull secret with a wrong
/// password beside a provider that does not match. The kubelet's list holds only the
/// secret, so it fails (the probe used to pull anonymously on the node path and count that).
#[test]
fn a_wrong_secret_beside_a_provider_without_a_match_fails_as_the_kubelet_fails() {
    let s = Stack::get();
    let node = Node::new(&["registry.example.com"], &node_env());
    let dir = tempfile::tempdir().unwrap();
    let secret = write_docker_config(
        dir.path(),
        s.var("STACK_ECR_HOST"),
        "AWS",
        "not-the-password",
    );
    let run = node.check(
        &s.image("naming-server-service:latest"),
        &[(
            "ECR_PULL_PROBE_DOCKER_CONFIG",
            Some(secret.to_str().unwrap()),
        )],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.typed();
    let p = &r.only_image().paths;
    let secrets = p.pull_secrets.as_ref().expect("a pull-secret path");
    assert_eq!(secrets.status, Status::Fail);
    assert_eq!(node_path(&r).status, Status::Skip);
    let k = p.kubelet.as_ref().expect("the kubelet");
    assert_eq!(k.status, KubeletStatus::Fail, "{k:#?}");
    let sources: Vec<&str> = k.credentials.iter().map(|c| c.source.as_str()).collect();
    assert_eq!(sources, ["pull_secrets"], "only the secret is sent: {k:#?}");
    assert!(k.stages.is_empty(), "no anonymous pull");
}

/// A plugin that writes what it was given (its environment) and then answers as the local
/// plugin does.
const RECORDING_PLUGIN: &str = "#!/bin/sh\nenv > \"$RECORD_TO\"\nexec \"$REAL_PLUGIN\"\n";

/// Issue 21 point 2: the plugin gets the kubelet's environment plus the provider's `env`. With
/// web identity, static keys and a profile all set for the probe, none reaches the plugin; the
/// report names what was withheld, never the values.
#[test]
fn the_plugin_never_sees_the_probes_aws_identity() {
    let s = Stack::get();
    let node = Node::bare();
    node.install_script(PLUGIN, RECORDING_PLUGIN);
    let record = node.dir.path().join("env.txt");
    let mut env = node_env();
    let real = plugin_source();
    env.push(("RECORD_TO", record.to_str().unwrap()));
    env.push(("REAL_PLUGIN", real.to_str().unwrap()));
    node.config(&provider_config(
        PLUGIN,
        &["*.dkr.ecr.*.amazonaws.com"],
        &env,
        None,
    ));
    let run = node.check(
        &s.image("naming-server-service:latest"),
        &[
            ("AWS_ACCESS_KEY_ID", Some("AKIAPODSTATICKEY0000")),
            ("AWS_SECRET_ACCESS_KEY", Some("pod-static-secret-key")),
            ("AWS_PROFILE", Some("pod-profile")),
            (
                "ECR_PULL_PROBE_NODE_NAME",
                Some("ip-10-0-1-23.ec2.internal"),
            ),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let seen = std::fs::read_to_string(&record).unwrap();
    let names: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    for banned in [
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "ECR_PULL_PROBE_NODE_NAME",
    ] {
        assert!(
            !names.contains(&banned),
            "{banned} reached the plugin: {names:?}"
        );
    }
    // The provider's own env arrives, as the kubelet merges it.
    assert!(
        names.contains(&"AWS_ENDPOINT_URL") && names.contains(&"NODE_ROLE_ARN"),
        "{names:?}"
    );
    let r = run.typed();
    let withheld = &node_path(&r).environment_withheld;
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        assert!(withheld.iter().any(|w| w == name), "{withheld:?}");
    }
    assert!(
        !run.stdout.contains("pod-static-secret-key")
            && !run.stdout.contains("AKIAPODSTATICKEY0000")
    );
}

/// A node-wide docker config with one ECR entry.
fn node_docker_config(dir: &Path, password: &str) -> PathBuf {
    write_docker_config(dir, Stack::get().var("STACK_ECR_HOST"), "AWS", password)
}

/// The node-wide docker config's path and the kubelet's answer of a one-image run.
fn node_config_and_kubelet(r: &Report) -> (&report::SecretPath, &report::Kubelet) {
    let p = &r.only_image().paths;
    (
        p.node_docker_config
            .as_ref()
            .expect("a node docker config path"),
        p.kubelet.as_ref().expect("the kubelet"),
    )
}

fn check_with_node_config(image: &str, config: &Path) -> Run {
    probe(
        &[
            "check",
            image,
            "--node-docker-config",
            config.to_str().unwrap(),
        ],
        &[],
    )
}

/// Issue 21 point 4: `--node-docker-config` as its own path feeding the kubelet's list:
/// passing, an expired ECR token named as OpenShift's global pull secret, no match (then
/// the anonymous pull), and absent (EKS).
#[test]
fn the_node_wide_docker_config_is_a_source_of_the_kubelets_list() {
    let s = Stack::get();
    let image = s.image("naming-server-service:latest");
    let dir = tempfile::tempdir().unwrap();

    let good = node_docker_config(dir.path(), s.var("STACK_REGISTRY_PASSWORD"));
    let run = check_with_node_config(&image, &good);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let r = run.typed();
    let (config, kubelet) = node_config_and_kubelet(&r);
    assert_eq!(config.status, Status::Pass);
    assert_eq!(config.entry.as_deref(), Some(s.var("STACK_ECR_HOST")));
    assert_eq!(kubelet.credentials[0].source, "node_docker_config");
    assert_eq!(kubelet.used, Some(0));
    assert!(!run.stdout.contains(s.var("STACK_REGISTRY_PASSWORD")));

    let expired = ecr_password(now() - 600);
    let stale = node_docker_config(dir.path(), &expired);
    let run = check_with_node_config(&image, &stale);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.typed();
    let (config, kubelet) = node_config_and_kubelet(&r);
    let f = &config.findings[0];
    assert_eq!(f.code, "NODE_DOCKER_CONFIG_TOKEN_EXPIRED", "{f:#?}");
    assert!(f.summary.contains("global pull secret"), "{f:#?}");
    assert_eq!(kubelet.status, KubeletStatus::Fail);
    assert!(!run.stdout.contains(&expired));

    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"auths":{"quay.io":{"auth":"dTpw"}}}"#).unwrap();
    let run = check_with_node_config(&image, &other);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.typed();
    let (config, kubelet) = node_config_and_kubelet(&r);
    assert_eq!(config.status, Status::Skip);
    assert_eq!(config.findings[0].severity, Severity::Info);
    assert_eq!(kubelet.credentials[0].source, "anonymous");
    assert_eq!(kubelet.findings[0].code, "KUBELET_NO_CREDENTIALS");

    let run = check_with_node_config(&image, &dir.path().join("absent.json"));
    let r = run.typed();
    let f = &node_config_and_kubelet(&r).0.findings[0];
    assert_eq!(
        (f.code.as_str(), f.severity),
        ("NODE_DOCKER_CONFIG_ABSENT", Severity::Info)
    );
}

/// The single-file mount: after the node's file is replaced by a rename (as the
/// machine-config daemon writes it), a bind mount of the old file still shows the old
/// content. The probe says so instead of checking stale credentials. Needs a mount
/// namespace (root, `unshare`): may skip on a laptop, never under CI=true.
#[test]
fn a_node_config_replaced_under_its_bind_mount_is_named() {
    let s = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let host = node_docker_config(dir.path(), s.var("STACK_REGISTRY_PASSWORD"));
    let mounted = dir.path().join("mounted.json");
    std::fs::write(&mounted, "").unwrap();
    let probe_bin = env!("CARGO_BIN_EXE_ecr-pull-probe");
    let script = format!(
        "mount --bind {host} {mounted} && cp {host} {host}.new && mv {host}.new {host} && exec {probe_bin} check {image} --node-docker-config {mounted}",
        host = host.display(),
        mounted = mounted.display(),
        image = s.image("naming-server-service:latest"),
    );
    let out = probe_command_of(Path::new("unshare"), &["-m", "sh", "-c", &script], &[])
        .output()
        .expect("unshare runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim().is_empty() && std::env::var("CI").as_deref() != Ok("true") {
        eprintln!(
            "skipped: no mount namespace here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: stdout.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
    .typed();
    let config = r.only_image().paths.node_docker_config.as_ref();
    let codes: Vec<&str> = config
        .expect("a node docker config path")
        .findings
        .iter()
        .map(|f| f.code.as_str())
        .collect();
    assert!(codes.contains(&"NODE_DOCKER_CONFIG_REPLACED"), "{codes:?}");
}
