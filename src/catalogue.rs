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
        cause: "`NAME_UNKNOWN`: no repository of that name in the registry's account and region. With a pull-through cache prefix, the cache rule may be missing or the identity may lack `ecr:CreateRepository`/`ecr:BatchImportUpstreamImage`.",
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
    PULL_SECRET_MALFORMED: Error, false, "The pull secret cannot be parsed",
        cause: "The `.dockerconfigjson` / `.dockercfg` content is not JSON, or an entry has no usable `auth` (base64 `user:password`) or `username`/`password`; the kubelet ignores it.",
        fix: "Recreate the Secret with `kubectl create secret docker-registry` or from a generator such as the External Secrets Operator `ECRAuthorizationToken`.";
    PULL_SECRET_MISSING: Warning, false, "A referenced pull secret does not exist",
        cause: "The pod (or its ServiceAccount) names an `imagePullSecret` that is not in the namespace; the kubelet skips it with a warning and pulls without it.",
        fix: "Create the Secret in the workload's namespace, or remove the stale reference.";
    CLUSTER_READ_FAILED: Warning, false, "The probe could not read a Kubernetes object",
        cause: "Reading a ServiceAccount or Secret through the API failed, usually because the probe's own ServiceAccount lacks RBAC for it (see manifests/rbac/); that part of the kubelet's path is not checked.",
        fix: "Grant the probe's ServiceAccount `get` on the named object (a Role with `resourceNames`), or mount the pull secret and use `--docker-config`.";
    PULL_SECRET_NO_MATCH: Error, false, "No pull-secret entry covers the registry",
        cause: "None of the docker config's keys matches the image's registry host (and path) by the kubelet's rules, so the kubelet sends no credentials from it.",
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
        cause: "The pod's web identity pulls the image, but the credentials the kubelet would use (the pull secrets) do not: an `ImagePullBackOff` follows although the pod's role is fine. This is the incident this probe was written for.",
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
    NODE_PROVIDER_NO_MATCH: Error, false, "No node credential provider matches the image",
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
        cause: "A request failed in a way that can pass on another try (a reset or refused connection, a body that broke off, HTTP 429 or 500/502/503/504) and was retried with backoff, as the kubelet retries a pull. The stage's result is the last try's; the causes are in the evidence. Repeated retries point at an overloaded registry or proxy, throttling, or a flaky network path.",
        fix: "Nothing if it passed; if it recurs, look at the causes: throttling (429) wants fewer parallel pulls or a pull-through cache, 5xx a registry or proxy problem, resets the network path (NAT, proxy, MTU).";
    NODE_PROVIDER_TOKEN_EXPIRED: Error, false, "The credential provider returned an expired ECR token",
        cause: "The password the plugin returned is an ECR token whose `expiration` has passed: a cache on the plugin's side, or a clock far off.",
        fix: "Check the node's clock and the plugin's own caching; the kubelet caches for the response's `cacheDuration`.";
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
         renamed or reused.\n\n\
         | code | severity | exit | title |\n|---|---|---|---|\n",
    );
    for s in CATALOGUE {
        let sev = crate::report::wire_name(&s.severity);
        let exit = match (s.severity, s.configuration_error) {
            (_, true) => "2",
            (Severity::Error, false) => "1",
            _ => "0",
        };
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
