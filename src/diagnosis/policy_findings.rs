//! The repository policy, read for a principal the registry refused, as findings: the
//! statement that misses it (with the statement to paste), denies it, or already allows it
//! (so the refusal comes from elsewhere). Pure, like the rest of [`super::ecr_api`], whose
//! [`Asked`] answer it reads; the analysis of the policy itself is [`super::repo_policy`].

use serde_json::Value;

use super::Code;
use super::ecr_api::{Asked, capped, not_permitted};
use super::repo_policy::{self, Naming, Verdict};
use crate::reference::ImageRef;
use crate::report::{Finding, Severity};

/// The repository policy, read for the refused `principal`.
pub fn policy_findings(img: &ImageRef, principal: &str, policy: &Asked<String>) -> Vec<Finding> {
    let role = super::denied::role_arn_of(principal).unwrap_or_else(|| principal.to_string());
    let on = PolicyOf {
        repo: &img.repository,
        account: img.ecr.as_ref().map(|e| e.account.as_str()).unwrap_or("?"),
        role: &role,
    };
    let text = match policy {
        Asked::Denied => {
            return vec![not_permitted(
                img,
                "ecr:GetRepositoryPolicy",
                "which statements of the repository policy name the principal",
            )];
        }
        Asked::NotFound => return vec![on.absent().with("principal", principal.to_string())],
        Asked::Got(t) => t,
        Asked::Unavailable(_) | Asked::NotAsked => return vec![],
    };
    let Some(a) = repo_policy::analyse(text, principal) else {
        return vec![];
    };
    let f = match a.verdict {
        Verdict::Missing => on.misses(&a),
        Verdict::Denied(i) => on.denies(&a, i),
        Verdict::Allowed(i) | Verdict::AllowedIf(i) => on.names(&a, i),
    };
    vec![
        f.with("operation", "GetRepositoryPolicy")
            .with("principal", principal.to_string())
            .with("pull_statements", pull_statements(&a))
            .with("repository_policy", capped(text)),
    ]
}

/// The pull statements of a policy, as the evidence shows them.
fn pull_statements(a: &repo_policy::Analysis) -> Vec<Value> {
    a.statements
        .iter()
        .map(|s| {
            serde_json::json!({
                "sid": s.sid,
                "effect": if s.allow { "Allow" } else { "Deny" },
                "actions": s.actions,
                "principals": s.principals,
                "names_principal": s.naming.map(|n| match n {
                    Naming::Role => "role",
                    Naming::AccountRoot => "account_root",
                    Naming::Everyone => "everyone",
                }),
                "conditions": s.conditions,
            })
        })
        .collect()
}

/// A statement's name in a finding: its `Sid`, or its place in the policy.
fn sid(a: &repo_policy::Analysis, i: usize) -> String {
    a.statements[i]
        .sid
        .clone()
        .unwrap_or_else(|| format!("#{}", i + 1))
}

/// The repository whose policy is read, its account, and the refused role: what every
/// policy finding names. One method per verdict.
struct PolicyOf<'a> {
    repo: &'a str,
    account: &'a str,
    role: &'a str,
}

impl PolicyOf<'_> {
    /// No repository policy at all: nothing grants a principal outside the account the pull.
    fn absent(&self) -> Finding {
        let Self {
            repo,
            account,
            role,
        } = self;
        Finding::new(
            Code::REPOSITORY_POLICY_MISSES_PRINCIPAL,
            format!("repository {repo} has no repository policy, so nothing grants {role} (outside account {account}) the pull"),
        )
        .with("repository_policy", Value::Null)
        .fix(format!(
            "Set a repository policy on {repo} (in account {account}) with this statement:\n{}",
            super::registry::repository_policy_statement(role)
        ))
    }

    /// No statement names the role: the first Allow statement, with the role added, is the fix.
    fn misses(&self, a: &repo_policy::Analysis) -> Finding {
        let Self {
            repo,
            account,
            role,
        } = self;
        let stale: Vec<String> = a
            .statements
            .iter()
            .flat_map(|s| s.stale_ids.clone())
            .collect();
        let (summary, fix) = match a.statements.iter().position(|s| s.allow) {
            Some(i) => {
                let s = &a.statements[i];
                let fixed = repo_policy::with_principal(&s.raw, role);
                (
                    format!(
                        "the role {role} is missing from statement {} of the policy of repository {repo} (it names {})",
                        sid(a, i),
                        if s.principals.is_empty() {
                            "no AWS principal".to_string()
                        } else {
                            s.principals.join(", ")
                        }
                    ),
                    format!(
                        "Add `{role}` to the `Principal.AWS` of statement `{}` in the policy of repository {repo} (account {account}):\n{}",
                        sid(a, i),
                        serde_json::to_string_pretty(&fixed).unwrap_or_default()
                    ),
                )
            }
            None => (
                format!(
                    "no statement of the policy of repository {repo} allows the pull actions to {role}"
                ),
                format!(
                    "Add this statement to the policy of repository {repo} (account {account}):\n{}",
                    super::registry::repository_policy_statement(role)
                ),
            ),
        };
        let summary = if stale.is_empty() {
            summary
        } else {
            format!(
                "{summary}; it names {}, the unique ID of a deleted role: a role recreated under the same name must be added again",
                stale.join(", ")
            )
        };
        Finding::new(Code::REPOSITORY_POLICY_MISSES_PRINCIPAL, summary).fix(fix)
    }

    /// Statement `i` denies the pull to the role.
    fn denies(&self, a: &repo_policy::Analysis, i: usize) -> Finding {
        let Self { repo, role, .. } = self;
        Finding::new(
            Code::REPOSITORY_POLICY_DENIES_PRINCIPAL,
            format!(
                "statement {} of the policy of repository {repo} denies the pull to {role}",
                sid(a, i)
            ),
        )
        .fix(format!(
            "Remove {role} from the Deny statement `{}` of repository {repo}, or narrow the statement.",
            sid(a, i)
        ))
    }

    /// Statement `i` allows the role (maybe under conditions): the refusal comes from elsewhere,
    /// or from a condition that did not hold.
    fn names(&self, a: &repo_policy::Analysis, i: usize) -> Finding {
        let Self { repo, role, .. } = self;
        let s = &a.statements[i];
        let how = match s.naming {
            Some(Naming::Role) => "names the role",
            Some(Naming::AccountRoot) => {
                "names the role's account root, which delegates to that account's IAM"
            }
            _ => "allows everyone",
        };
        let f = Finding::new(
            Code::REPOSITORY_POLICY_NAMES_PRINCIPAL,
            if s.conditions.is_empty() {
                format!(
                    "statement {} of the policy of repository {repo} {how}: the repository policy allows {role} to pull, so the refusal comes from elsewhere",
                    sid(a, i)
                )
            } else {
                format!(
                    "statement {} of the policy of repository {repo} {how}, under conditions on {}: the pull is allowed only when they hold",
                    sid(a, i),
                    s.conditions.join(", ")
                )
            },
        );
        if !s.conditions.is_empty() {
            f.severity(Severity::Warning).fix(format!(
                "Check the conditions of statement `{}` ({}) against the request: the caller's organisation, the VPC endpoint or source address it came through.",
                sid(a, i),
                s.conditions.join(", ")
            ))
        } else if s.naming == Some(Naming::AccountRoot) {
            f.fix("Allow the pull actions in the role's own identity policy too (`AmazonEC2ContainerRegistryPullOnly`), and look for an explicit deny (SCP, permissions boundary, VPC endpoint policy).".to_string())
        } else {
            f
        }
    }
}
