//! The catalogue of findings: one stable code per known way a pull fails, with its default
//! severity, cause and fix. `docs/findings.md` is generated from this table (a test fails when
//! they differ), so the documentation cannot drift from the code.

use serde::{Deserialize, Serialize};

/// How much a finding matters. Defined with the catalogue, which gives every code its
/// default, so the catalogue depends on nothing else in the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// A catalogue entry.
#[derive(Debug)]
pub struct Spec {
    pub code: Code,
    pub name: &'static str,
    pub severity: Severity,
    /// A finding with this code means the probe itself is misconfigured (exit 2), not that the
    /// pull path is broken (exit 1).
    pub configuration_error: bool,
    pub title: &'static str,
    pub cause: &'static str,
    pub remediation: &'static str,
}

macro_rules! catalogue {
    ($( $code:ident : $sev:ident, $cfg:literal, $title:literal,
        cause: $cause:literal, fix: $fix:literal; )*) => {
        /// A stable finding code. Serialised as its name; never renamed once released.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[allow(non_camel_case_types)]
        pub enum Code { $($code),* }

        pub static CATALOGUE: &[Spec] = &[$(
            Spec {
                code: Code::$code,
                name: stringify!($code),
                severity: Severity::$sev,
                configuration_error: $cfg,
                title: $title,
                cause: $cause,
                remediation: $fix,
            }
        ),*];
    };
}

impl Code {
    pub fn spec(self) -> &'static Spec {
        &CATALOGUE[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The exit code of a run this finding decides (README, "Exit codes"): 2 for a
    /// configuration error, 3 for an inconclusive failure, 1 for any other error, else 0.
    pub fn exit_code(self) -> u8 {
        let spec = self.spec();
        match (spec.severity, spec.configuration_error) {
            (_, true) => 2,
            (Severity::Error, false) if self.inconclusive() => 3,
            (Severity::Error, false) => 1,
            _ => 0,
        }
    }

    /// A failure with this code says "could not tell", not "no": the probe did not get an
    /// answer (a deadline, a host it could not reach, a throttled call, a canary that never
    /// reported), so a run whose failures are all of these exits 3, not 1 (see [`crate::exit`]).
    pub fn inconclusive(self) -> bool {
        matches!(
            self,
            Code::DEADLINE_EXCEEDED
                | Code::REGISTRY_UNREACHABLE
                | Code::AWS_API_UNREACHABLE
                | Code::LAYER_STORAGE_UNREACHABLE
                | Code::AWS_THROTTLED
                | Code::CANARY_INCONCLUSIVE
                | Code::KUBELET_VERDICT_UNKNOWN
                | Code::NODE_DOCKER_CONFIG_UNREADABLE
        )
    }
}

catalogue! {
    WEB_IDENTITY_NOT_CONFIGURED: Warning, false, "Web identity is not configured for this pod",
        cause: "`AWS_ROLE_ARN` and/or `AWS_WEB_IDENTITY_TOKEN_FILE` are missing, so the SDK falls back to other credential sources (profiles, instance metadata, which pods on OpenShift cannot reach). The ServiceAccount lacks the `eks.amazonaws.com/role-arn` annotation, the pod identity webhook did not mutate the pod, or the pod was created before the annotation.",
        fix: "Annotate the ServiceAccount with `eks.amazonaws.com/role-arn: <role ARN>` and recreate the pod, or set both variables and a projected token volume (audience `sts.amazonaws.com`) in the pod spec.";
    WEB_IDENTITY_TOKEN_UNREADABLE: Error, true, "The projected web identity token cannot be read",
        cause: "The file named by `AWS_WEB_IDENTITY_TOKEN_FILE` is missing or not readable by the pod's uid: the projected volume is not mounted at that path, or its mode and the pod's fsGroup/runAsUser do not let this uid read it.",
        fix: "Mount a projected `serviceAccountToken` volume (audience `sts.amazonaws.com`) at the path the variable names, and make it readable: set `fsGroup` (restricted-v2 does) or run as the uid the kubelet chowns it to.";
    WEB_IDENTITY_TOKEN_MALFORMED: Error, false, "The web identity token is not a JWT",
        cause: "The token file does not hold a compact JWT (three base64url parts with JSON claims); STS rejects it as `InvalidIdentityToken`.",
        fix: "Point `AWS_WEB_IDENTITY_TOKEN_FILE` at the projected ServiceAccount token, not at another file or a Secret.";
    WEB_IDENTITY_TOKEN_EXPIRED: Error, false, "The web identity token has expired",
        cause: "The token's `exp` is in the past. The kubelet refreshes projected tokens; an expired one means a copied or static token, a stopped kubelet refresh, or a wrong local clock.",
        fix: "Use the kubelet-projected token (not a copy), check the node's clock, and restart the pod to get a fresh token.";
    WEB_IDENTITY_TOKEN_NOT_YET_VALID: Error, false, "The web identity token is not valid yet",
        cause: "The token's `nbf` is in the future: the local clock and the cluster's token issuer disagree.",
        fix: "Fix time synchronisation (chrony/NTP) on the node running the pod.";
    WEB_IDENTITY_AUDIENCE_MISMATCH: Error, false, "The web identity token is not for STS",
        cause: "The token's `aud` lacks `sts.amazonaws.com`; STS answers `InvalidIdentityToken: Incorrect token audience`.",
        fix: "Set `audience: sts.amazonaws.com` on the projected token volume (the pod identity webhook does this), and list that audience on the IAM OIDC provider.";
    STS_TRUST_POLICY_DENIED: Error, false, "The role's trust policy does not admit this ServiceAccount",
        cause: "`AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity`: the role's trust policy names another OIDC provider, another `sub` (namespace/ServiceAccount) or another `aud`, or uses the wrong condition key.",
        fix: "Add a trust-policy statement that admits this token: federated principal `arn:aws:iam::<role account>:oidc-provider/<issuer host>`, condition `StringEquals` on `<issuer host>:sub` = `system:serviceaccount:<namespace>:<serviceaccount>` and `<issuer host>:aud` = `sts.amazonaws.com`.";
    STS_OIDC_PROVIDER_NOT_FOUND: Error, false, "No IAM OIDC provider for the token's issuer in the role's account",
        cause: "`InvalidIdentityToken: No OpenIDConnect provider found in your account for <issuer>`: the IAM OIDC provider must exist in the same account as the role, so a role in another account (the ECR account) needs its own provider entry.",
        fix: "Create the IAM OIDC provider for the cluster's issuer (the token's `iss`) in the role's account, with audience `sts.amazonaws.com`.";
    STS_OIDC_KEYS_UNREACHABLE: Error, false, "STS cannot fetch or trust the issuer's signing keys",
        cause: "`Couldn't retrieve verification key from your identity provider` or a thumbprint mismatch: the issuer's discovery document or JWKS is not publicly reachable over HTTPS, or its certificate changed.",
        fix: "Make `<issuer>/.well-known/openid-configuration` and its `jwks_uri` reachable from the internet (for ROSA, the managed OIDC config), and update the provider's thumbprint if the certificate changed.";
    STS_TOKEN_REJECTED: Error, false, "STS rejected the web identity token",
        cause: "STS answered `InvalidIdentityToken` or `ExpiredTokenException` for a reason no narrower rule names.",
        fix: "Compare the token's `iss`, `aud` and `exp` (in the evidence) with the IAM OIDC provider and the role's trust policy.";
    AWS_CREDENTIALS_UNAVAILABLE: Error, false, "No AWS credentials could be obtained",
        cause: "The default credential chain found no usable source, or the source failed for a reason no narrower rule names.",
        fix: "Configure web identity for the pod (see WEB_IDENTITY_NOT_CONFIGURED), or provide credentials through a supported source.";
    STS_CALL_FAILED: Error, false, "An STS call failed",
        cause: "STS answered an error no narrower rule names.",
        fix: "Read the AWS error code and message in the evidence.";
    CLOCK_SKEW: Warning, false, "The local clock differs from the server's",
        cause: "The `Date` header of an AWS or registry response differs from the local clock by more than five minutes; request signatures expire (`Signature expired`) and token validity is misjudged.",
        fix: "Fix time synchronisation (chrony/NTP) on the node.";
    AWS_API_UNREACHABLE: Error, false, "An AWS API endpoint cannot be reached",
        cause: "DNS, connection or TLS failure towards the STS or ECR API endpoint: no egress to AWS, a missing interface VPC endpoint, or a proxy that is not configured or not bypassed.",
        fix: "Allow egress to the named host, or create the interface VPC endpoints `com.amazonaws.<region>.sts`, `ecr.api` and `ecr.dkr` with private DNS; check `HTTPS_PROXY`/`NO_PROXY`.";
    AWS_THROTTLED: Error, false, "AWS throttled the call",
        cause: "The call was throttled and the SDK's retries did not get through.",
        fix: "Run the probe less often or for fewer images at once, and look for other callers sharing the account's rate limit.";
    ECR_AUTH_DENIED: Error, false, "The identity may not get an ECR authorization token",
        cause: "GetAuthorizationToken was denied: the identity's policies do not allow `ecr:GetAuthorizationToken` (resource `*`), or an SCP or permissions boundary denies it.",
        fix: "Allow `ecr:GetAuthorizationToken` on `*` in the role's identity policy (for example with the managed policy `AmazonEC2ContainerRegistryReadOnly`).";
    ECR_API_ERROR: Error, false, "The ECR API answered an error",
        cause: "GetAuthorizationToken failed for a reason no narrower rule names.",
        fix: "Read the AWS error code and message in the evidence.";
    ECR_TOKEN_EXPIRED_AT_ISSUE: Warning, false, "The ECR token is already expired when issued",
        cause: "The token's expiry (`expiresAt` or the password's `expiration`) is in the past at the moment it was received: the local clock is ahead, or an emulator or proxy hands out fixed tokens.",
        fix: "Check the node's clock; a real ECR token is valid for 12 hours.";
    REGISTRY_NOT_ECR: Info, false, "Not an ECR registry: pulled without ECR credentials",
        cause: "The image's host is not an Amazon ECR registry, so no ECR token applies; the probe pulls anonymously (with a registry-issued anonymous token where the registry asks for one).",
        fix: "Nothing to do if the image is public; a private registry needs an `imagePullSecret`, which the pod's own path does not use: check the kubelet's path with `--docker-config` or `--images-from`.";
    REGISTRY_UNREACHABLE: Error, false, "The registry cannot be reached",
        cause: "DNS, connection or timeout failure towards the registry host: no egress, no `ecr.dkr` VPC endpoint, or a proxy in the way.",
        fix: "Allow egress to the registry host on 443, or create the interface VPC endpoint `com.amazonaws.<region>.ecr.dkr` with private DNS; check `HTTPS_PROXY`/`NO_PROXY`.";
    REGISTRY_REDIRECT_REFUSED: Error, false, "The registry sent the probe somewhere it must not go",
        cause: "A redirect or a token realm pointed to plain HTTP on another host, or to a loopback, link-local or instance-metadata address that is not the configured endpoint. A registry, or something posing as it, is trying to make the puller fetch internal URLs; the probe does not follow it and does not echo what is there.",
        fix: "Check that the host name reaches the real registry (DNS, proxies, `--registry-endpoint`). A mirror that really redirects to an internal host must be configured as the endpoint itself.";
    REGISTRY_TLS_UNTRUSTED: Error, false, "The registry's TLS certificate is not trusted",
        cause: "The certificate chain presented by the registry (or a TLS-intercepting proxy) does not lead to a trusted CA. The evidence names the presented certificate's subject and issuer: a proxy's or an internal CA's name says who re-signs the traffic.",
        fix: "If a proxy re-signs TLS, add its CA (`--ca-file` or `SSL_CERT_FILE`); otherwise check that the host name reaches the real registry.";
    REGISTRY_UNAUTHORIZED: Error, false, "The registry rejected the credentials",
        cause: "HTTP 401: the registry did not accept the credentials the path offered. With a token freshly minted from the pod's identity, it is for another region or partition than the registry host (ECR tokens are region-bound) or the registry is not the ECR it claims to be; with a pull secret, its password is wrong, or its ECR token has expired (12 hours) or was minted in another region; with the node's credential provider, the provider returned a token for another registry or region. From a registry with Bearer token auth (Docker Hub, GHCR, Harbor), a 401 on the manifest whose challenge says `insufficient_scope` means its token service accepted the credentials (or none) but granted no pull on the repository: it is private, it does not exist, or the account lacks access; the fix is then access, not a password. The summary names the credentials.",
        fix: "Make sure the token is minted in the registry's own region (the probe does; a pull secret may not) and that the host name is the real ECR registry.";
    REGISTRY_TOKEN_EXPIRED: Error, false, "The registry says the authorization token has expired",
        cause: "`denied: Your authorization token has expired. Reauthenticate and try again.` ECR tokens last 12 hours; the clock may also be off.",
        fix: "Mint a new token; for pull secrets, refresh them well within 12 hours (for example with the External Secrets Operator `ECRAuthorizationToken` generator).";
    REGISTRY_DENIED_IDENTITY_POLICY: Error, false, "The identity's own policies do not allow the pull",
        cause: "`… because no identity-based policy allows the <action> action`: the role lacks ECR read permissions on the repository.",
        fix: "Allow `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer` and `ecr:BatchCheckLayerAvailability` on the repository ARN in the role's identity policy.";
    REGISTRY_DENIED_RESOURCE_POLICY: Error, false, "The repository policy does not allow this principal",
        cause: "`… because no resource-based policy allows the <action> action`: for a cross-account pull, the repository (or registry) policy in the image's account must name the puller.",
        fix: "Add a statement to the repository policy that allows the principal `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer` and `ecr:BatchCheckLayerAvailability`.";
    REGISTRY_DENIED_EXPLICIT: Error, false, "An explicit deny blocks the pull",
        cause: "`… with an explicit deny in a service control policy / VPC endpoint policy / permissions boundary / session policy`: an allow elsewhere cannot override it.",
        fix: "Find the named policy type and the statement that denies the action for this principal, repository or network path.";
    REGISTRY_DENIED: Error, false, "The registry denied access",
        cause: "HTTP 403 / `DENIED` whose message names no policy class.",
        fix: "Check the identity policy, the repository policy and any SCP or VPC endpoint policy for the ECR read actions.";
    REPOSITORY_NOT_FOUND: Error, false, "The repository does not exist",
        cause: "`NAME_UNKNOWN` on the manifest, or `MANIFEST_UNKNOWN` on the manifest and then `NAME_UNKNOWN` on the repository's tag list (how a registry that answers `MANIFEST_UNKNOWN` for both is told apart; the summary says which): no repository of that name in the registry's account and region. With a pull-through cache prefix, the cache rule may be missing or the identity may lack `ecr:CreateRepository`/`ecr:BatchImportUpstreamImage`.",
        fix: "Check the repository name, account and region in the image reference; for pull-through cache, check the rule and those permissions.";
    MANIFEST_NOT_FOUND: Error, false, "The tag or digest does not exist",
        cause: "`MANIFEST_UNKNOWN`: the repository exists but not this tag or digest; a lifecycle policy may have expired it.",
        fix: "Push the image or fix the tag; check the repository's lifecycle policy.";
    MANIFEST_INVALID: Error, false, "The manifest cannot be used",
        cause: "The manifest is too large, of an unsupported type (such as Docker schema 1) or not valid JSON, or its digest is not the one asked for.",
        fix: "Re-push the image with a current client (OCI or Docker schema 2).";
    PLATFORM_NOT_IN_INDEX: Error, false, "The image has no manifest for this platform",
        cause: "The tag is an index / manifest list without an entry for the node's platform; runtimes report `no match for platform in manifest`.",
        fix: "Build and push the image for this platform, or schedule the workload on nodes of a platform the index lists.";
    LAYER_DENIED: Error, false, "The manifest is readable but a layer is denied",
        cause: "The blob request was refused after the manifest succeeded: the identity is allowed `ecr:BatchGetImage` but not `ecr:GetDownloadUrlForLayer`.",
        fix: "Allow `ecr:GetDownloadUrlForLayer` (and `ecr:BatchCheckLayerAvailability`) on the repository, in the identity policy and, cross-account, in the repository policy.";
    LAYER_STORAGE_UNREACHABLE: Error, false, "Layer storage cannot be reached",
        cause: "The registry redirected a blob to its storage (for ECR, the S3 bucket `prod-<region>-starport-layer-bucket`), and that host could not be reached or refused the request.",
        fix: "Allow egress to S3 in the registry's region, or add an S3 gateway VPC endpoint whose policy allows `arn:aws:s3:::prod-<region>-starport-layer-bucket/*`; add S3 to `NO_PROXY` when a proxy is in use.";
    BLOB_DIGEST_MISMATCH: Error, false, "A blob's content does not match its digest",
        cause: "The bytes received hash to another digest than the manifest names: corruption in storage, a broken proxy or cache, or tampering.",
        fix: "Pull again; if it persists, re-push the image and inspect any proxy or cache between the pod and the registry.";
    BLOB_TRUNCATED: Error, false, "A blob arrived incomplete",
        cause: "The connection ended before the blob's declared size was received: a proxy, firewall or registry cut it.",
        fix: "Check proxies and firewalls for size or time limits on long downloads.";
    REGISTRY_ERROR: Error, false, "The registry answered an unexpected error",
        cause: "An HTTP status or error no narrower rule names.",
        fix: "Read the status, error codes and host in the evidence.";
    DEADLINE_EXCEEDED: Error, false, "The run's deadline passed",
        cause: "A stage was still running when the deadline (`--timeout`) passed: a stalled server, a slow network, or a deadline too short for the image's size.",
        fix: "Look at the stage named in the evidence; raise `--timeout` for large images, or find what stalls.";
    KMS_ERROR: Error, false, "The repository's KMS key cannot be used",
        cause: "ECR reports `KmsError`: the customer-managed key that encrypts the repository is disabled, pending deletion, or its grant to ECR was revoked.",
        fix: "Enable the key or restore ECR's grant on it.";
    PULL_SECRET_MALFORMED: Error, false, "A pull secret cannot be parsed: the kubelet fails every pull of the pod",
        cause: "The `.dockerconfigjson` / `.dockercfg` content is not JSON of a docker config's shape, or an entry's `auth` is not base64 `user:password` (Go's rules: padded or not, field names without case, `null` as absent). The kubelet does not skip such a Secret: building the pod's keyring fails (`secretsToTrackedDockerConfigs`), so every image of the pod fails to pull, whatever the other secrets and the node hold.",
        fix: "Recreate the Secret with `kubectl create secret docker-registry` or from a generator such as the External Secrets Operator `ECRAuthorizationToken`.";
    PULL_SECRET_MISSING: Warning, false, "A referenced pull secret does not exist",
        cause: "The pod (or its ServiceAccount) names an `imagePullSecret` that is not in the namespace; the kubelet skips it with a warning and pulls without it.",
        fix: "Create the Secret in the workload's namespace, or remove the stale reference.";
    CLUSTER_READ_FAILED: Warning, false, "The probe could not read a Kubernetes object",
        cause: "Reading a ServiceAccount or Secret through the API failed, usually because the probe's own ServiceAccount lacks RBAC for it (see manifests/rbac/); that part of the kubelet's path is not checked.",
        fix: "Grant the probe's ServiceAccount `get` on the named object (a Role with `resourceNames`), or mount the pull secret and use `--docker-config`.";
    PULL_SECRET_NO_MATCH: Warning, false, "No pull-secret entry covers the registry",
        cause: "None of the docker config's keys matches the image's registry host (and path) by the kubelet's rules, so the kubelet takes no credentials from it and goes on down its list (the node-wide docker config, the credential providers); with nothing there either it pulls anonymously.",
        fix: "Add an entry whose key is the registry host exactly as in the image reference (for ECR `<account>.dkr.ecr.<region>.amazonaws.com`).";
    PULL_SECRET_WRONG_REGION: Error, false, "The pull secret is for the account's registry in another region",
        cause: "The docker config has an entry for this ECR account in another region; ECR tokens are region-bound, so it cannot open this registry.",
        fix: "Mint the token in the image's region (for the External Secrets Operator generator, its `region`) and key the entry by this registry host.";
    PULL_SECRET_TOKEN_EXPIRED: Error, false, "The ECR token in the pull secret has expired",
        cause: "The entry's password is an ECR token whose `expiration` has passed; ECR tokens last 12 hours and the Secret was not refreshed.",
        fix: "Refresh the Secret well within 12 hours (External Secrets Operator `ECRAuthorizationToken` with `refreshInterval` under 12h), or pull with the node role instead.";
    KUBELET_CANARY_PULL_FAILED: Error, false, "The kubelet could not pull the image in a canary pod",
        cause: "A short-lived pod with the workload's ServiceAccount, pull secrets and placement, and `imagePullPolicy: Always`, got `ErrImagePull` / `ImagePullBackOff`: the node's credentials (the worker role through the kubelet credential provider, or the pull secrets) cannot pull. The kubelet's exact message is in the evidence.",
        fix: "Give the node (worker) role ECR read access and name it in the repository policy for a cross-account repository, or attach a fresh pull secret; the message tells which registry answer the kubelet got.";
    CANARY_INCONCLUSIVE: Warning, false, "The canary pod gave no answer",
        cause: "The canary pod could not be created (RBAC), was not scheduled, or the kubelet had not reported by the deadline; the node's path is unverified, not broken.",
        fix: "Grant the canary RBAC (manifests/rbac/), check the reason in the evidence (scheduler message, quota), or raise --canary-timeout.";
    KUBELET_PATH_FAILS_POD_PATH_PASSES: Warning, false, "The pod's identity can pull, the kubelet's credentials cannot",
        cause: "The pod's web identity pulls the image, but none of the credentials the kubelet would try (the pull secrets, the node-wide docker config, the node's credential providers; the evidence names which failed) does: an `ImagePullBackOff` follows although the pod's role is fine. This is the incident this probe was written for.",
        fix: "Fix the kubelet's path: refresh or correct the pull secret, or give the node (worker) role ECR read access and name it in the repository policy for a cross-account repository; on Kubernetes 1.34+ consider the ECR credential provider's service-account-token mode.";
    POD_PATH_FAILS_KUBELET_PATH_PASSES: Info, false, "The kubelet's credentials can pull, the pod's identity cannot",
        cause: "The pull secrets open the registry but the pod's web identity does not. Image pulls will work; only an application that pulls or reads ECR with its own role is affected.",
        fix: "Nothing to do for image pulls; grant the pod's role ECR read access only if the application itself needs it.";
    NODE_PROVIDER_HOST_NOT_MATCHED: Warning, false, "Node credential providers may not match this ECR host form",
        cause: "The image uses a dual-stack ECR host (`*.dkr-ecr.*.on.aws`), which the default `matchImages` of the kubelet ECR credential provider on OpenShift/ROSA does not list, so nodes send no ECR credentials for it.",
        fix: "Use the standard host `<account>.dkr.ecr.<region>.amazonaws.com`, or add the dual-stack pattern to the credential provider's `matchImages`, or use a pull secret keyed by this host.";
    POD_IDENTITY_CAN_PULL: Info, false, "This pod's identity can pull the image; the kubelet may pull with other credentials",
        cause: "The kubelet (CRI-O, containerd) pulls with the node's credentials (the worker role through the kubelet's image credential provider) or with `imagePullSecrets`, not with the pod's web identity. Since Kubernetes 1.34 (KEP-4412, beta) a credential provider with `tokenAttributes` may pull with a role assumed from the pod's ServiceAccount token: `ecr-credential-provider` v1.34+ assumes the role of the ServiceAccount annotation `eks.amazonaws.com/ecr-role-arn` (not IRSA's `eks.amazonaws.com/role-arn`). Either way the pod's own role is not what decides the pull; an `ImagePullBackOff` with this result points at the node's path or the pull secrets.",
        fix: "Check the kubelet's path with this probe: `--credential-provider-config`/`--credential-provider-bin-dir` (the node's provider), `--docker-config` or `--images-from` (pull secrets), `--canary` (the kubelet itself). To let the node pull, give the node (worker) role ECR read permissions and name it in the repository policy for a cross-account repository; or attach an `imagePullSecret` refreshed within 12 hours; or, with the provider in service-account-token mode, annotate the ServiceAccount with `eks.amazonaws.com/ecr-role-arn`.";
    NODE_PROVIDER_CONFIG_INVALID: Error, false, "The node's credential provider config is one no kubelet would accept",
        cause: "The `CredentialProviderConfig` (the kubelet's `--image-credential-provider-config`) cannot be read, does not decode, or breaks a rule the kubelet checks at start: no providers, a name with `/` or spaces, duplicate names, an unsupported `apiVersion`, empty or unparsable `matchImages`, a missing or negative `defaultCacheDuration`, or invalid `tokenAttributes`. A kubelet with this config does not start, so the node pulls nothing.",
        fix: "Fix the rule the evidence names (compare with the node's working config, e.g. `/etc/eks/image-credential-provider/config.json` on EKS AL2023), or point `--credential-provider-config` at the node's actual file.";
    NODE_PROVIDER_NO_MATCH: Warning, false, "No node credential provider matches the image",
        cause: "None of the providers' `matchImages` covers the image by the kubelet's rules (a `*` matches one DNS label and never spans a dot, ports must match, a path is a prefix), so the kubelet asks no plugin and sends no node credentials: the runtime pulls anonymously and ECR answers `no basic auth credentials` / `authorization failed` (containerd) or `authentication required` (CRI-O).",
        fix: "Add a pattern for this registry host to the provider's `matchImages` (the EKS default covers `*.dkr.ecr.*.amazonaws.com`, `*.dkr-ecr.*.on.aws` and the other partitions), use the standard ECR host form, or give the pod an `imagePullSecret`.";
    NODE_PROVIDER_PLUGIN_NOT_FOUND: Error, false, "The credential provider plugin binary is missing",
        cause: "The provider's `name` is the plugin's file name in the kubelet's `--image-credential-provider-bin-dir`, and there is no such file: the kubelet fails every pull that matches it (`plugin binary directory ... did not exist` at start, or an exec error per pull).",
        fix: "Install the plugin (e.g. `ecr-credential-provider`) into the bin dir under exactly the provider's name, or point `--credential-provider-bin-dir` at the node's directory.";
    NODE_PROVIDER_PLUGIN_FAILED: Error, false, "The credential provider plugin failed",
        cause: "The plugin exited non-zero, was killed at the deadline, or could not be run; the kubelet logs `Failed getting credential from external registry credential provider: error execing credential provider plugin ...` and pulls without the node's credentials. Common plugin messages: `no EC2 IMDS role found` (no instance role, or IMDS unreachable from where it runs: IMDSv2's hop limit from a pod network), `AccessDenied` on AssumeRoleWithWebIdentity (the role's trust policy refuses the ServiceAccount token's subject or audience), `no arn provided, cannot assume role using ServiceAccountToken` (v1.34.x without the `eks.amazonaws.com/ecr-role-arn` annotation). The plugin's stderr, secrets removed, is in the evidence.",
        fix: "Act on the plugin's message in the evidence: attach an instance profile with ECR read access to the node, run the check from the host network (the DaemonSet in manifests/node/), fix the trust policy of the role it assumes, or set the ServiceAccount annotation the plugin needs.";
    NODE_PROVIDER_RESPONSE_INVALID: Error, false, "The credential provider's answer is not one the kubelet uses",
        cause: "The plugin's stdout is not a `CredentialProviderResponse` the kubelet accepts (not JSON, an `apiVersion` other than the provider's, a wrong `kind`, an unknown `cacheKeyType`), or none of its `auth` keys covers the image, so the kubelet has no node credentials for this pull.",
        fix: "Make the provider's `apiVersion` in the config match what the plugin speaks (`credentialprovider.kubelet.k8s.io/v1` for current plugins), upgrade the plugin, or check that its `auth` keys cover the image's registry.";
    NODE_PROVIDER_SA_ANNOTATION_MISSING: Error, false, "The ServiceAccount lacks an annotation the credential provider requires",
        cause: "The provider's `tokenAttributes.requiredServiceAccountAnnotationKeys` (KEP-4412) names an annotation the pod's ServiceAccount does not have: the kubelet does not call the plugin (it logs `required annotation <key> not found` only at verbosity 5) and pulls without that provider's credentials, which ECR refuses.",
        fix: "Annotate the pod's ServiceAccount with the required key (for `ecr-credential-provider`, `eks.amazonaws.com/ecr-role-arn: <role ARN>`), or drop the key from the provider's required list.";
    NODE_PROVIDER_ECR_ROLE_ANNOTATION: Warning, false, "The ServiceAccount has no eks.amazonaws.com/ecr-role-arn for the ECR provider",
        cause: "`ecr-credential-provider` in service-account-token mode (v1.34+) reads the role to assume from the ServiceAccount annotation `eks.amazonaws.com/ecr-role-arn` (or env `AWS_ECR_ROLE_ARN`), not from IRSA's `eks.amazonaws.com/role-arn`. Without it, v1.34.x fails every matching pull with `no arn provided, cannot assume role using ServiceAccountToken`; v1.35+ falls back to the node's credentials.",
        fix: "Annotate the ServiceAccount with `eks.amazonaws.com/ecr-role-arn: <role ARN>` (a role whose trust policy accepts this ServiceAccount's token for the provider's audience), or rely on the node role with a v1.35+ plugin.";
    NODE_PROVIDER_SA_TOKEN_MISSING: Error, true, "The credential provider needs a ServiceAccount token the probe was not given",
        cause: "The provider has `tokenAttributes` (KEP-4412): the kubelet sends it a token of the pod's ServiceAccount for `serviceAccountTokenAudience`. The probe had none for that audience. In a cluster the kubelet may also be refused such a token (`ServiceAccountNodeAudienceRestriction`: the audience must appear in the pod spec's projected volumes, or `system:nodes` must be allowed `request-serviceaccounts-token-audience` for it); then the plugin is never called and the kubelet logs `audience ... not found in pod spec volume`.",
        fix: "Mount a projected ServiceAccount token with the provider's audience and pass it with `--service-account-token-file`, or use `--images-from` (the probe then requests one for the workload's ServiceAccount; RBAC in manifests/rbac/).";
    REGISTRY_RETRIED: Warning, false, "Transient registry failures were retried",
        cause: "A request failed in a way that can pass on another try (a reset or refused connection, a body that broke off, HTTP 408, 429 or 500/502/503/504, or an answer whose registry error codes all say to try again, such as `TOOMANYREQUESTS`) and was retried with backoff, as the kubelet retries a pull. The stage's result is the last try's; the causes are in the evidence. Repeated retries point at an overloaded registry or proxy, throttling, or a flaky network path.",
        fix: "Nothing if it passed; if it recurs, look at the causes: throttling (429) wants fewer parallel pulls or a pull-through cache, 5xx a registry or proxy problem, resets the network path (NAT, proxy, MTU).";
    NODE_PROVIDER_TOKEN_EXPIRED: Error, false, "The credential provider returned an expired ECR token",
        cause: "The password the plugin returned is an ECR token whose `expiration` has passed: a cache on the plugin's side, or a clock far off.",
        fix: "Check the node's clock and the plugin's own caching; the kubelet caches for the response's `cacheDuration`.";
    PULL_SECRET_WRONG_TYPE: Warning, false, "A pull secret is of a type the kubelet reads nothing from",
        cause: "The kubelet reads `.dockerconfigjson` only from a Secret of type `kubernetes.io/dockerconfigjson` and `.dockercfg` only from `kubernetes.io/dockercfg`, each only when not empty (`MakeDockerKeyring`). An `Opaque` Secret with the same data, or one whose type's key is missing or empty, is skipped without an event: the pod pulls as if it were not listed.",
        fix: "Recreate it with `kubectl create secret docker-registry NAME --docker-server=... ` or with `type: kubernetes.io/dockerconfigjson` and the config under `.dockerconfigjson`.";
    SERVICE_ACCOUNT_MISSING: Error, false, "The workload's ServiceAccount does not exist: its pods are refused at admission",
        cause: "The ServiceAccount admission plugin refuses every pod whose ServiceAccount is not in the namespace (`error looking up service account <ns>/<name>`), so the controller creates no pods and nothing is pulled; the controller's events show `FailedCreate`.",
        fix: "Create the ServiceAccount (with the annotations and `imagePullSecrets` the pods need), or fix `serviceAccountName` in the pod template.";
    CREDENTIAL_KEY_SKIPPED: Warning, false, "A registry key was skipped; the others are used",
        cause: "A key of a docker config or of a credential provider's answer cannot be used: the kubelet skips a key it cannot parse as a URL, and the probe also skips one past its caps (length, wildcards) that keep matching bounded. Only that key is dropped.",
        fix: "Write the key as a registry host with an optional port and path (`<account>.dkr.ecr.<region>.amazonaws.com`), with at most a few `*` labels.";
    NODE_DOCKER_CONFIG_ABSENT: Info, false, "The node has no node-wide docker config",
        cause: "The file given with `--node-docker-config` does not exist. The kubelet's default keyring then adds nothing from it: usual on EKS, where nodes pull through the ECR credential provider; on OpenShift and ROSA the machine-config operator writes the global pull secret there (`/var/lib/kubelet/config.json`).",
        fix: "Nothing on EKS. On OpenShift, check that the DaemonSet mounts the node's `/var/lib/kubelet/config.json` (manifests/node/openshift).";
    NODE_DOCKER_CONFIG_UNREADABLE: Warning, false, "The node-wide docker config cannot be read by the probe",
        cause: "The file given with `--node-docker-config` exists but this pod may not read it: on OpenShift `/var/lib/kubelet/config.json` holds the cluster's global pull secret and may be readable by root only, while the probe runs as a non-root uid without capabilities. That source of the kubelet's list is then unknown: where the other credentials fail, the kubelet's answer is `unknown`, not a guess.",
        fix: "Read the same content through the API instead (`--images-from ... --global-pull-secret`, RBAC in manifests/rbac/global-pull-secret.yaml), or, where policy allows it, give the DaemonSet read access to that one file (a group that owns it; the probe adds no capability of its own).";
    NODE_DOCKER_CONFIG_REPLACED: Warning, false, "The node-wide docker config changed on the node since this container started",
        cause: "A `hostPath` mount of a single file keeps the inode it was mounted with. The machine-config daemon (and nodeadm) write the file by an atomic rename, after which the mounted inode has no name on the host (link count 0) and still shows the old content: the probe would check stale credentials.",
        fix: "Nothing by hand: `serve` answers `/healthz` with 503 while this holds, so the kubelet restarts the container and the mount picks up the new file. A one-off `check` should be run again in a new pod.";
    NODE_DOCKER_CONFIG_MALFORMED: Warning, false, "The node-wide docker config cannot be parsed; the kubelet skips it",
        cause: "The node's docker config (on OpenShift the global pull secret, written to `/var/lib/kubelet/config.json`) is not a docker config by Go's rules. The kubelet's `.dockercfg` provider skips a file it cannot read, so the node has no credentials from it.",
        fix: "On OpenShift fix the global pull secret: `oc set data secret/pull-secret -n openshift-config --from-file=.dockerconfigjson=<file>` (classic), or on ROSA HCP `kube-system/additional-pull-secret` on a NodePool with the Replace upgrade strategy.";
    NODE_DOCKER_CONFIG_TOKEN_EXPIRED: Error, false, "The ECR token in the node's docker config has expired",
        cause: "The node-wide docker config (on OpenShift and ROSA the global pull secret) holds an ECR token whose `expiration` has passed. A common ROSA workaround puts an ECR token there with a job that refreshes it every few hours; when the job stops, every pull that reaches this credential fails with `authentication required` twelve hours later.",
        fix: "Refresh the token (classic: `oc set data secret/pull-secret -n openshift-config`; HCP: `kube-system/additional-pull-secret`) and fix the refresher, or better, pull with the node role through the ECR credential provider (name the worker role in the repository policy) so no token has to be kept fresh.";
    KUBELET_VERDICT_UNKNOWN: Warning, false, "The kubelet's answer cannot be known from this run",
        cause: "The credentials this run knows of (the pod's pull secrets) do not pull, and the kubelet would go on to the node's own: the node-wide docker config and the credential providers, which this run was not given. Whether the kubelet pulls depends on them; the probe says so instead of guessing.",
        fix: "Run where the node's config can be read: the node DaemonSet (manifests/node/) with `--credential-provider-config`/`--credential-provider-bin-dir` and `--node-docker-config`, or `--canary` to let the kubelet pull itself.";
    KUBELET_EARLIER_CREDENTIAL_FAILS: Info, false, "The kubelet tries failing credentials before the one that works",
        cause: "The kubelet tries every credential that matches the image in its order (pull secrets, the node-wide docker config, the credential providers; more specific keys first) until one pulls. Those before the working one fail first: the pull works, more slowly, and the runtime logs their errors.",
        fix: "Remove or fix the failing credentials named in the evidence.";
    KUBELET_NO_CREDENTIALS: Info, false, "The kubelet pulls this image without credentials",
        cause: "No credential the kubelet would have matches the image: neither a pull secret, nor the node-wide docker config, nor a credential provider's answer. The kubelet then asks the runtime for an anonymous pull, which only a public image survives (ECR refuses it: `no basic auth credentials`, `authentication required`).",
        fix: "If the image is private, give the kubelet credentials for its registry: an `imagePullSecret` keyed by the registry host, or a credential provider whose `matchImages` covers it.";
    PLUGIN_ENVIRONMENT_WITHHELD: Info, false, "The credential provider plugin ran without the probe's AWS settings",
        cause: "The kubelet gives a plugin its own environment plus the provider's `env`, never a pod's. The probe runs the plugin the same way: `PATH`, `HOME`, `LANG`, `TZ` and the proxy variables the kubelet unit usually carries, plus the provider's `env`; the probe's `AWS_*` (its web identity, keys, profile) and `ECR_PULL_PROBE_*` variables are withheld, so the node path cannot pass on the pod's role. The evidence names what was withheld, never the values.",
        fix: "Nothing to do; to give the plugin a setting, put it in the provider's `env` in the CredentialProviderConfig, as the node must.";
    NODE_IMAGE_CACHED_UNVERIFIED: Warning, false, "This node would start the image from its cache without checking credentials",
        cause: "The kubelet's pulled-image records (`/var/lib/kubelet/image_manager/pulled`, KEP-2535) show this node holds the image, and under its `imagePullCredentialsVerificationPolicy` a pod asking for it with `imagePullPolicy: IfNotPresent` starts from the cache without any registry check: the record says the image was pulled with node-wide or anonymous credentials (`nodePodsAccessible`), the policy is `NeverVerify`, the image is on the `NeverVerifyAllowlistedImages` allowlist, or the `KubeletEnsureSecretPulledImages` feature gate is off. Pods already running here say nothing about a node that must pull it: \"works on node A, fails on node B\".",
        fix: "Judge the image by a fresh pull (this probe's other paths, `--canary`, which pulls with `imagePullPolicy: Always`), not by pods that run. For the containers named in the evidence, `imagePullPolicy: Always` makes every start check the registry; `imagePullCredentialsVerificationPolicy: AlwaysVerify` makes the kubelet re-check credentials for images pulled with a pod's secrets or ServiceAccount.";
    NODE_CACHE_UNREADABLE: Warning, false, "The kubelet's image records or config could not be read",
        cause: "`--kubelet-image-manager-dir` or `--kubelet-config` was given but the directory, a record, or the config cannot be read or decoded as the kubelet's types (`ImagePulledRecord` of `kubelet.config.k8s.io/v1alpha1` or `v1beta1`, `KubeletConfiguration`). The kubelet itself ignores a record it cannot decode and verifies the image again; the probe cannot say which images this node would start unverified.",
        fix: "Mount `/var/lib/kubelet/image_manager` and the kubelet's config file read-only at the paths given (manifests/node/), or check the path in the evidence.";
    NODE_PROVIDER_CACHE_GRACE: Info, false, "The kubelet may keep pulling from its cached credentials for a while",
        cause: "The kubelet caches a credential provider's answer for the response's `cacheDuration` (else the provider's `defaultCacheDuration`), per `cacheKeyType` (`Image`: that image, `Registry`: every image of the registry, `Global`: every image the provider matches), across pods. A node whose plugin or role just broke still pulls with the cached answer until it expires, so this fresh failure is an early warning: pulls on this node may keep succeeding until the time in the evidence, then fail.",
        fix: "Fix what the node path's findings name before the cached answer expires; do not read pulls that still succeed on this node as a sign the fix is not needed.";
    ECR_API_NOT_PERMITTED: Info, false, "The identity may not ask the ECR API what would explain the failure",
        cause: "After a registry failure the probe asks the ECR API (DescribeImages, GetLifecyclePolicy, GetRepositoryPolicy, DescribeRepositories, DescribePullThroughCacheRules) what the registry did not say; the API answered `AccessDeniedException`. The evidence names the permission and what it would have told. `AmazonEC2ContainerRegistryReadOnly` grants DescribeImages, GetRepositoryPolicy and DescribeRepositories; a pull-only or hand-written policy often lacks them.",
        fix: "Allow the named permission on the repository in the role's identity policy, or read the answer yourself with the AWS CLI.";
    TAG_NEVER_PUSHED: Error, false, "The tag was never pushed to this repository",
        cause: "DescribeImages has no image with this tag, and no rule of the repository's lifecycle policy (or no policy) selects such a tag, so no lifecycle rule removed it: it was never pushed here, or was deleted by hand (CloudTrail `BatchDeleteImage` tells). The fix names the most recently pushed tags.",
        fix: "Push the image with this tag, or deploy a tag that exists; check that the pipeline pushes to this account and region.";
    TAG_EXPIRED_BY_LIFECYCLE: Error, false, "A lifecycle rule expires such a tag",
        cause: "DescribeImages has no image with this tag, and the repository's lifecycle policy has a rule (named in the evidence, by priority) that selects such a tag for expiry: the image was most likely removed by that rule. ECR keeps no record of what a rule removed, so this is the likely cause, not a proof.",
        fix: "Push the tag again or deploy one that exists; narrow the rule's tag selection or count, or add a rule of higher priority that keeps tags in use.";
    IMAGE_ARCHIVED: Error, false, "The image is archived",
        cause: "DescribeImages shows the image's status `ARCHIVED` (moved to ECR's archive storage class by hand or by a lifecycle `transition` rule) or `ACTIVATING` (being restored). An archived image cannot be pulled; the registry answers 404.",
        fix: "Restore it with `aws ecr update-image-storage-class ... --target-storage-class STANDARD` (or re-push it) and wait for `ACTIVE`; review the lifecycle policy's transition rules.";
    REPOSITORY_ELSEWHERE: Error, false, "The repository exists in another region or account",
        cause: "The registry has no repository of this name, but DescribeRepositories finds it in the caller's own account or in the run's other region: the image was pushed elsewhere, or the reference names the wrong account or region.",
        fix: "Use the registry host of the account and region that hold the repository, or push (or replicate) the image to the one the reference names.";
    REPOSITORY_POLICY_MISSES_PRINCIPAL: Error, false, "The repository policy does not name the refused principal",
        cause: "The pull was refused for lack of a resource-based allow, and GetRepositoryPolicy shows why: the statements that mention the pull actions name other principals (another account's root, other roles, a deleted role's unique ID `AROA…`), or the repository has no policy. The evidence lists those statements.",
        fix: "Add the principal to the statement the summary names (the fix shows the statement with it), or add a statement allowing it the pull actions.";
    REPOSITORY_POLICY_DENIES_PRINCIPAL: Error, false, "A statement of the repository policy denies the principal",
        cause: "GetRepositoryPolicy shows a `Deny` statement for the pull actions that names the principal (or everyone) without conditions; no allow can override it.",
        fix: "Remove the principal from the Deny statement, or narrow that statement.";
    REPOSITORY_POLICY_NAMES_PRINCIPAL: Info, false, "The repository policy allows the principal",
        cause: "GetRepositoryPolicy shows a statement allowing the pull actions that names the principal, its account root (which delegates to that account's IAM) or everyone. Without conditions, the repository policy is not what refused: look at the identity policy, an explicit deny (SCP, permissions boundary, VPC endpoint policy) or the token. With conditions (`aws:PrincipalOrgID`, `aws:SourceVpce`, `aws:SourceIp`) it is a warning: the pull passes only when they hold.",
        fix: "Check the identity policy and explicit denies; for a conditional statement, check the conditions against the request.";
    PULL_THROUGH_CACHE_RULE_MISSING: Error, false, "No pull-through cache rule for the repository's prefix",
        cause: "The repository begins with a pull-through cache prefix (`docker-hub/`, `ecr-public/`, `quay/`, `k8s/`, ...), the registry has no such repository, and DescribePullThroughCacheRules lists no rule for the prefix in this region: nothing will import the image.",
        fix: "Create the pull-through cache rule for the prefix in the image's region (`aws ecr create-pull-through-cache-rule`), or fix the repository name.";
    PULL_THROUGH_CACHE_IMPORT_DENIED: Error, false, "The first pull through the cache cannot import the image",
        cause: "The repository is under a pull-through cache rule and the image is not cached yet: the first pull imports it from upstream, which needs `ecr:BatchImportUpstreamImage` (and `ecr:CreateRepository` while the cache repository does not exist). `AmazonEC2ContainerRegistryReadOnly` lacks the first; `AmazonEC2ContainerRegistryPullOnly` has it. Without them ECR answers as if the repository or tag did not exist.",
        fix: "Grant the puller `ecr:BatchImportUpstreamImage` (and `ecr:CreateRepository` on the cache prefix) in its identity policy or the registry policy, or attach `AmazonEC2ContainerRegistryPullOnly`; or check that the image exists upstream.";
    PULL_THROUGH_CACHE_UPSTREAM_AUTH_FAILED: Error, false, "ECR cannot authenticate to the cache rule's upstream registry",
        cause: "ECR answers `The authentication to the upstream registry failed. Verify that the credentials provided in the pull through cache rule are correct, and try again.` (or BatchGetImage's `UpstreamAccessDenied`): the Secrets Manager secret of the rule holds wrong or expired upstream credentials, or cannot be used: its name must begin with `ecr-pullthroughcache/` and it must be in the rule's own account and region.",
        fix: "Update the secret named by the rule's `credentialArn` with valid upstream credentials (a Docker Hub access token, a GitHub PAT), keep it named `ecr-pullthroughcache/...` in the rule's account and region, then `aws ecr validate-pull-through-cache-rule`.";
    PULL_THROUGH_CACHE_UPSTREAM_UNREACHABLE: Error, false, "ECR cannot reach the cache rule's upstream registry",
        cause: "BatchGetImage reports `UpstreamUnavailable`: the first pull of an uncached image could not fetch it from upstream. A cluster reaching ECR only through PrivateLink (interface VPC endpoints) still needs the first pull of a cached image to get to the upstream, which ECR reaches over the internet.",
        fix: "Retry later if the upstream is down; otherwise make the first pull from a network with a route to the upstream (a NAT gateway), or pre-pull the image into the cache.";
    ECR_THROTTLED: Warning, false, "ECR throttled requests",
        cause: "The registry answered `429 Too Many Requests` or the ECR API `ThrottlingException`: the account's per-region request rate was exceeded (GetAuthorizationToken is 20 per second sustained). The probe retried as the server's `Retry-After` asked; the evidence lists the tries. A warning when the pull then passed, an error when it did not. In `serve --watch`, `--registry-rate` spaces each registry's requests.",
        fix: "Spread pulls over time, reduce parallel pulls or the watch's rate and interval, or raise the quota in Service Quotas.";
    KUBELET_PULL_FAILED: Error, false, "The kubelet reported a pull error for the target pod",
        cause: "`diagnose` read the pod's container statuses and events: the kubelet on its node got `ErrImagePull` / `ImagePullBackOff` (or another pull error) and its message says too little to name a registry answer. The kubelet's exact message and the node are in the evidence; when the message does say more, the finding carries that code instead (`REGISTRY_UNAUTHORIZED`, `MANIFEST_NOT_FOUND`, ...).",
        fix: "Read the paths checked on the same node beside it: the one the kubelet uses (the node's credential provider, the pull secrets) is the one to fix; the pod's own identity is not what the kubelet pulls with.";
    NODE_REPORT_UNAVAILABLE: Warning, false, "The node's own report could not be read",
        cause: "`diagnose` reads the node DaemonSet's report (`manifests/node/`) for the pod's node through the API server's pod proxy. No DaemonSet pod runs on that node, the caller may not `get pods/proxy` in its namespace, or its report does not cover the image; the node's credential provider path on that node is then unchecked.",
        fix: "Install the DaemonSet (`kubectl apply -k manifests/node/`, listing the image in its `ECR_PULL_PROBE_IMAGES`), and grant the caller `list pods` and `get pods/proxy` in its namespace (`manifests/rbac/diagnose.yaml`).";
}

/// The catalogue as Markdown, the content of `docs/findings.md`.
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Finding codes\n\n\
         Generated from `src/catalogue.rs` by `UPDATE_DOCS=1 cargo test findings_doc`; \
         a test fails when this file and the code differ. Codes are stable: they are never \
         renamed or reused. The exit column is the code a run exits with when this finding \
         decides it (README, \"Exit codes\").\n\n\
         | code | severity | exit | title |\n|---|---|---|---|\n",
    );
    for s in CATALOGUE {
        let sev = crate::wire::wire_name(&s.severity);
        let exit = s.code.exit_code();
        out.push_str(&format!(
            "| [`{}`](#{}) | {sev} | {exit} | {} |\n",
            s.name,
            s.name.to_ascii_lowercase(),
            s.title
        ));
    }
    for s in CATALOGUE {
        out.push_str(&format!(
            "\n## {}\n\n**{}**\n\n*Cause.* {}\n\n*Fix.* {}\n",
            s.name, s.title, s.cause, s.remediation
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_indexed_by_code() {
        for (i, s) in CATALOGUE.iter().enumerate() {
            assert_eq!(s.code as usize, i);
            assert_eq!(serde_json::to_value(s.code).unwrap(), s.name);
            assert!(
                !s.title.is_empty() && !s.cause.is_empty() && !s.remediation.is_empty(),
                "{}",
                s.name
            );
        }
    }

    /// `docs/findings.md` is the catalogue, rendered. `UPDATE_DOCS=1` rewrites it.
    #[test]
    fn findings_doc_matches_the_catalogue() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/findings.md");
        let rendered = render_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &rendered).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == rendered,
            "docs/findings.md is out of date: run `UPDATE_DOCS=1 cargo test findings_doc`"
        );
    }
}
