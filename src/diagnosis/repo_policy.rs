//! A repository policy, read for one refused principal: which statements mention the pull
//! actions, and whether any names the principal (its role, its account root, or everyone,
//! with or without conditions), so that a denial's fix can say "add the role to statement
//! `CrossAccountPull`" instead of a generic statement.
//!
//! IAM's grammar (IAM User Guide, "IAM JSON policy elements reference"): `Statement` is one
//! object or a list; `Principal` is `"*"` or a map whose `AWS` entry is a string or a list of
//! ARNs, account IDs (short for the account root) or `"*"`; `Action` a string or list with
//! `*`/`?` wildcards, case-insensitive. A cross-account grant to an account root delegates to
//! that account's IAM: the role's own identity policy must then allow the actions too. A
//! principal shown as a unique ID (`AROA…`) is a role that was deleted, since IAM rewrites the
//! ARN of a deleted role in resource policies.

use serde_json::Value;

/// What a puller needs from the repository (the managed `AmazonEC2ContainerRegistryPullOnly`).
pub const PULL_ACTIONS: [&str; 3] = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
];

/// The most statements read, and the most principals kept per statement for the evidence.
pub const MAX_STATEMENTS: usize = 50;
pub const MAX_PRINCIPALS_SHOWN: usize = 10;

/// How a statement names the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// The role (or the session) itself.
    Role,
    /// The root of the principal's own account.
    AccountRoot,
    /// `*`.
    Everyone,
}

/// One statement that mentions a pull action.
#[derive(Debug, Clone, PartialEq)]
pub struct PullStatement {
    pub sid: Option<String>,
    pub allow: bool,
    /// The pull actions it covers.
    pub actions: Vec<&'static str>,
    /// Its AWS principals as written (capped).
    pub principals: Vec<String>,
    pub naming: Option<Naming>,
    /// The condition keys (`aws:PrincipalOrgID`, `aws:SourceVpce`, …).
    pub conditions: Vec<String>,
    /// Principals that are unique IDs of deleted roles.
    pub stale_ids: Vec<String>,
    /// The statement as written, for the fix.
    pub raw: Value,
}

/// What the policy says about the principal's pull.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A statement allows the pull without conditions.
    Allowed(usize),
    /// Allowed only if the conditions hold.
    AllowedIf(usize),
    /// A statement denies the principal.
    Denied(usize),
    /// No statement names the principal for the pull.
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub statements: Vec<PullStatement>,
    pub verdict: Verdict,
}

/// IAM's action wildcards, case-insensitive.
fn action_matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// `arn:<p>:sts::<acct>:assumed-role/<role>/<session>` or a role ARN: (partition, account,
/// role ARN).
fn principal_parts(principal: &str) -> Option<(String, String, String)> {
    let role = super::denied::role_arn_of(principal).unwrap_or_else(|| principal.to_string());
    let parts: Vec<&str> = role.splitn(6, ':').collect();
    (parts.len() == 6 && parts[2] == "iam" && parts[5].starts_with("role/"))
        .then(|| (parts[1].to_string(), parts[4].to_string(), role.clone()))
}

fn naming(
    entry: &str,
    principal: &str,
    (partition, account, role): &(String, String, String),
) -> Option<Naming> {
    if entry == "*" {
        Some(Naming::Everyone)
    } else if entry == role || entry == principal {
        Some(Naming::Role)
    } else if entry == account || entry == format!("arn:{partition}:iam::{account}:root") {
        Some(Naming::AccountRoot)
    } else {
        None
    }
}

/// Analyses `policy_text` for `principal` (an assumed-role session or role ARN, as the
/// denial names it). `None` when the text is not a policy.
pub fn analyse(policy_text: &str, principal: &str) -> Option<Analysis> {
    let doc: Value = serde_json::from_str(policy_text).ok()?;
    let raw = match doc.get("Statement")? {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => return None,
    };
    let who = principal_parts(principal);
    let mut statements = Vec::new();
    for s in raw.into_iter().take(MAX_STATEMENTS) {
        let actions: Vec<&'static str> = {
            let listed = strings(s.get("Action"));
            PULL_ACTIONS
                .into_iter()
                .filter(|a| listed.iter().any(|p| action_matches(p, a)))
                .collect()
        };
        if actions.is_empty() {
            continue;
        }
        let principals = match s.get("Principal") {
            Some(Value::String(p)) => vec![p.clone()],
            Some(Value::Object(m)) => strings(m.get("AWS")),
            _ => vec![],
        };
        let best = who.as_ref().and_then(|w| {
            principals
                .iter()
                .filter_map(|p| naming(p, principal, w))
                .min_by_key(|n| *n as u8)
        });
        let conditions = match s.get("Condition") {
            Some(Value::Object(ops)) => ops
                .values()
                .filter_map(Value::as_object)
                .flat_map(|m| m.keys().cloned())
                .collect(),
            _ => vec![],
        };
        let stale_ids = principals
            .iter()
            .filter(|p| p.starts_with("AROA") && !p.contains(':'))
            .cloned()
            .collect();
        statements.push(PullStatement {
            sid: s.get("Sid").and_then(Value::as_str).map(str::to_string),
            allow: s.get("Effect").and_then(Value::as_str) == Some("Allow"),
            actions,
            principals: principals.into_iter().take(MAX_PRINCIPALS_SHOWN).collect(),
            naming: best,
            conditions,
            stale_ids,
            raw: s,
        });
    }
    let covers_manifest = |s: &PullStatement| s.actions.contains(&"ecr:BatchGetImage");
    let verdict = if let Some(i) = statements
        .iter()
        .position(|s| !s.allow && s.naming.is_some() && s.conditions.is_empty())
    {
        Verdict::Denied(i)
    } else if let Some(i) = statements.iter().position(|s| {
        s.allow && covers_manifest(s) && s.naming.is_some() && s.conditions.is_empty()
    }) {
        Verdict::Allowed(i)
    } else if let Some(i) = statements
        .iter()
        .position(|s| s.allow && covers_manifest(s) && s.naming.is_some())
    {
        Verdict::AllowedIf(i)
    } else {
        Verdict::Missing
    };
    Some(Analysis {
        statements,
        verdict,
    })
}

/// `statement` with `role_arn` added to its `Principal.AWS`: the smallest change that lets
/// the role pull.
pub fn with_principal(statement: &Value, role_arn: &str) -> Value {
    let mut s = statement.clone();
    let mut aws = strings(s.get("Principal").and_then(|p| p.get("AWS")));
    if !aws.iter().any(|a| a == role_arn) {
        aws.push(role_arn.to_string());
    }
    if let Some(obj) = s.as_object_mut() {
        obj.insert(
            "Principal".into(),
            serde_json::json!({ "AWS": if aws.len() == 1 { Value::from(aws[0].clone()) } else { Value::from(aws) } }),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str =
        "arn:aws:sts::111122223333:assumed-role/naming-server-ecr-pull/ecr-pull-probe";
    const ROLE: &str = "arn:aws:iam::111122223333:role/naming-server-ecr-pull";

    /// The seed's first repository policy, as we read it: statement `CrossAccountPull` grants
    /// the pull actions to the root of the repository's own account (818140567777), which
    /// does not cover a role in the cluster's account.
    pub const SEED_ROOT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"CrossAccountPull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::818140567777:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#;
    /// The seed's second: the same statement naming the role.
    pub const SEED_ROLE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"CrossAccountPull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::818140567777:root","arn:aws:iam::111122223333:role/naming-server-ecr-pull"]},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#;

    #[test]
    fn the_seeds_two_policies() {
        let a = analyse(SEED_ROOT_POLICY, SESSION).unwrap();
        assert_eq!(a.verdict, Verdict::Missing);
        assert_eq!(a.statements[0].sid.as_deref(), Some("CrossAccountPull"));
        assert_eq!(a.statements[0].actions, PULL_ACTIONS.to_vec());
        let a = analyse(SEED_ROLE_POLICY, SESSION).unwrap();
        assert_eq!(a.verdict, Verdict::Allowed(0));
        assert_eq!(a.statements[0].naming, Some(Naming::Role));
    }

    #[test]
    fn principals_and_actions_as_iam_reads_them() {
        // (statement, verdict, naming): one table of IAM's forms.
        let cases: Vec<(&str, Verdict, Option<Naming>)> = vec![
            // Account ID shorthand for the principal's own account root.
            (
                r#"{"Sid":"A","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"ecr:*"}"#,
                Verdict::Allowed(0),
                Some(Naming::AccountRoot),
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:Batch*","ecr:GetDownloadUrlForLayer"]}"#,
                Verdict::Allowed(0),
                Some(Naming::AccountRoot),
            ),
            // Everyone, under an organisation condition: the conditions decide.
            (
                r#"{"Sid":"Org","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}}"#,
                Verdict::AllowedIf(0),
                Some(Naming::Everyone),
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*"}"#,
                Verdict::Allowed(0),
                Some(Naming::Everyone),
            ),
            // Actions in another case still match; a layer-only grant does not open the manifest.
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/naming-server-ecr-pull"},"Action":"ECR:batchgetimage"}"#,
                Verdict::Allowed(0),
                Some(Naming::Role),
            ),
            (
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/naming-server-ecr-pull"},"Action":"ecr:GetDownloadUrlForLayer"}"#,
                Verdict::Missing,
                Some(Naming::Role),
            ),
            // Another role of the same account, and a deleted role's unique ID.
            (
                r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/other","AROAEXAMPLEID12345678"]},"Action":"ecr:BatchGetImage"}"#,
                Verdict::Missing,
                None,
            ),
            // An explicit deny that names the role wins.
            (
                r#"{"Sid":"NoPull","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/naming-server-ecr-pull"},"Action":"ecr:BatchGetImage"}"#,
                Verdict::Denied(0),
                Some(Naming::Role),
            ),
        ];
        for (stmt, verdict, naming) in cases {
            let policy = format!(r#"{{"Version":"2012-10-17","Statement":{stmt}}}"#);
            let a = analyse(&policy, SESSION).unwrap();
            assert_eq!(a.verdict, verdict, "{stmt}");
            assert_eq!(a.statements[0].naming, naming, "{stmt}");
        }
        let a = analyse(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"AROAEXAMPLEID12345678"},"Action":"ecr:BatchGetImage"}]}"#,
            SESSION,
        )
        .unwrap();
        assert_eq!(a.statements[0].stale_ids, ["AROAEXAMPLEID12345678"]);
    }

    #[test]
    fn statements_without_pull_actions_are_left_out() {
        let a = analyse(
            r#"{"Statement":[{"Sid":"Push","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["ecr:PutImage","ecr:InitiateLayerUpload"]}]}"#,
            SESSION,
        )
        .unwrap();
        assert!(a.statements.is_empty());
        assert_eq!(a.verdict, Verdict::Missing);
        assert_eq!(analyse("not json", SESSION), None);
        assert_eq!(analyse(r#"{"Statement":3}"#, SESSION), None);
    }

    #[test]
    fn the_fix_adds_the_role_to_the_statement() {
        let a = analyse(SEED_ROOT_POLICY, SESSION).unwrap();
        let fixed = with_principal(&a.statements[0].raw, ROLE);
        assert_eq!(
            fixed["Principal"]["AWS"],
            serde_json::json!(["arn:aws:iam::818140567777:root", ROLE])
        );
        assert_eq!(fixed["Sid"], "CrossAccountPull");
        let again = format!(
            r#"{{"Statement":[{}]}}"#,
            serde_json::to_string(&fixed).unwrap()
        );
        assert_eq!(
            analyse(&again, SESSION).unwrap().verdict,
            Verdict::Allowed(0)
        );
    }

    /// Property tests (docs/property-tests.md): a repository policy is an API answer, outside
    /// input; any text gives an answer, never a panic; a statement naming the role in any of
    /// IAM's forms (string or list, among others) allows it.
    mod proptests {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn never_panics(s in any::<String>(), p in any::<String>()) {
                let _ = analyse(&s, &p);
                let _ = action_matches(&s, &p);
            }

            #[test]
            fn never_panics_on_its_own_vocabulary(
                words in prop::collection::vec(prop::sample::select(vec![
                    "{", "}", "[", "]", ",", ":", "\"Statement\"", "\"Principal\"", "\"AWS\"",
                    "\"Action\"", "\"Effect\"", "\"Allow\"", "\"Deny\"", "\"*\"", "\"Condition\"",
                    "\"ecr:*\"", "\"111122223333\"", "null", "3",
                ]), 0..40),
            ) {
                let _ = analyse(&words.concat(), SESSION);
            }

            #[test]
            fn the_role_among_others_is_named(
                others in prop::collection::vec("arn:aws:iam::[0-9]{12}:role/[a-z]{1,8}", 0..5),
                at in 0usize..6,
                single in any::<bool>(),
            ) {
                let mut principals = others.clone();
                principals.insert(at.min(principals.len()), ROLE.to_string());
                let aws = if single && principals.len() == 1 {
                    serde_json::json!(ROLE)
                } else {
                    serde_json::json!(principals)
                };
                let policy = serde_json::json!({"Statement": [{
                    "Sid": "P", "Effect": "Allow", "Principal": {"AWS": aws},
                    "Action": PULL_ACTIONS,
                }]});
                let a = analyse(&policy.to_string(), SESSION).unwrap();
                prop_assert_eq!(a.verdict, Verdict::Allowed(0));
            }
        }
    }
}
