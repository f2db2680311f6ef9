//! The kubelet's image credential provider protocol: the config the kubelet reads
//! ([`config`]), the request it writes to a plugin and the response it accepts, and running
//! the plugin ([`plugin`], the one process edge). The node provider path
//! (`crate::paths::node_provider`) uses it; the diagnosis reads its errors.

pub mod config;
pub mod plugin;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// The annotation `ecr-credential-provider` v1.34+ reads the role to assume from
/// (cloud-provider-aws PR #1155), distinct from IRSA's.
pub const ECR_ROLE_ANNOTATION: &str = "eks.amazonaws.com/ecr-role-arn";
/// IRSA's annotation (the pod identity webhook's), often put where the one above belongs.
pub const IRSA_ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// Removes every known secret, and anything shaped like a token (a JWT, a long base64 run),
/// from a plugin's stderr before it becomes evidence.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(s.as_str(), "[redacted]");
    }
    let is_tok = |c: char| c.is_ascii_alphanumeric() || "+/=_-.".contains(c);
    let mut result = String::with_capacity(out.len());
    let mut run = String::new();
    let flush = |run: &mut String, result: &mut String| {
        let looks_secret = run.len() >= 64
            || (run.matches('.').count() == 2 && run.starts_with("eyJ") && run.len() >= 20);
        if looks_secret {
            result.push_str("[redacted]");
        } else {
            result.push_str(run);
        }
        run.clear();
    };
    for c in out.chars() {
        if is_tok(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut result);
            result.push(c);
        }
    }
    flush(&mut run, &mut result);
    result
}
