//! ECR lifecycle policies, read: which rule of a repository's policy selects an image with a
//! given tag, so that a missing tag is told apart (expired by rule N, or never selected by any
//! rule, so never pushed or deleted by hand).
//!
//! The rules, from the ECR user guide, "Lifecycle policy properties"
//! (docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html):
//! rules apply lowest `rulePriority` first; `tagStatus` is `tagged`, `untagged` or `any` (an
//! `any` rule must have the highest priority); a `tagged` rule has a `tagPrefixList` or a
//! `tagPatternList` (`*` wildcards, at most four per pattern), and with several entries "only
//! images with all of the tags are selected"; an image matched by a rule is not considered by
//! rules of lower priority. Since the archive storage class (2025), `selection.storageClass`
//! (`standard`, `archive`) says which images a rule looks at and `action.type` is `expire` or
//! `transition` (to `archive`). ECR keeps no record of what a rule removed: a tag a rule selects
//! is the likely explanation, never a certainty, and the finding says so.

use serde::Deserialize;

/// The most rules read from a policy: the text is outside input, and the evidence names only
/// the rules that decide.
pub const MAX_RULES: usize = 100;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub rule_priority: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub selection: Selection,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    pub tag_status: String,
    #[serde(default)]
    pub tag_prefix_list: Vec<String>,
    #[serde(default)]
    pub tag_pattern_list: Vec<String>,
    /// `standard` (the default) or `archive`.
    #[serde(default)]
    pub storage_class: Option<String>,
    pub count_type: String,
    #[serde(default)]
    pub count_unit: Option<String>,
    pub count_number: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub target_storage_class: Option<String>,
}

#[derive(Deserialize)]
struct Policy {
    rules: Vec<Rule>,
}

/// Parses `lifecyclePolicyText`. An unreadable policy is an error string for the evidence.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let mut p: Policy = serde_json::from_str(text).map_err(|e| e.to_string())?;
    p.rules.truncate(MAX_RULES);
    p.rules.sort_by_key(|r| r.rule_priority);
    Ok(p.rules)
}

/// `*` matches any run of characters (also none); everything else literally, as ECR's
/// `tagPatternList` does.
pub fn wildcard_match(pattern: &str, tag: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == tag;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !tag.starts_with(first) || tag.len() < first.len() + last.len() || !tag.ends_with(last) {
        return false;
    }
    let mut rest = &tag[first.len()..tag.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Selection {
    fn archive(&self) -> bool {
        self.storage_class
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("archive"))
    }

    /// Whether this selection takes an image whose only tag is `tag`.
    pub fn selects_tag(&self, tag: &str) -> bool {
        match self.tag_status.as_str() {
            "any" => true,
            "tagged" => {
                (!self.tag_prefix_list.is_empty()
                    && self
                        .tag_prefix_list
                        .iter()
                        .all(|p| tag.starts_with(p.as_str())))
                    || (!self.tag_pattern_list.is_empty()
                        && self.tag_pattern_list.iter().all(|p| wildcard_match(p, tag)))
            }
            _ => false,
        }
    }

    /// The age or count condition, in words: `more than 10 images`, `pushed over 30 days ago`.
    pub fn condition(&self) -> String {
        let unit = self.count_unit.as_deref().unwrap_or("days");
        match self.count_type.as_str() {
            "imageCountMoreThan" => format!("more than {} such images", self.count_number),
            "sinceImagePushed" => format!("pushed over {} {unit} ago", self.count_number),
            "sinceImagePulled" => format!("not pulled for {} {unit}", self.count_number),
            "sinceImageTransitioned" => {
                format!("archived over {} {unit} ago", self.count_number)
            }
            other => format!("{other} {}", self.count_number),
        }
    }
}

impl Rule {
    fn expires(&self) -> bool {
        self.action.kind.eq_ignore_ascii_case("expire")
    }
}

/// What the policy would have done to an image tagged `tag`.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate<'a> {
    /// No rule selects it: the policy never removed such a tag.
    Untouched,
    /// Expired (deleted) by this rule.
    Expired(&'a Rule),
    /// Moved to the archive by the first rule; then deleted by the second, if one selects
    /// archived images with this tag.
    Archived(&'a Rule, Option<&'a Rule>),
}

/// The first rule (by priority) among those for `archive` (or standard) storage that selects
/// the tag: later rules never see an image an earlier one matched.
fn first<'a>(rules: &'a [Rule], tag: &str, archive: bool) -> Option<&'a Rule> {
    rules
        .iter()
        .filter(|r| r.selection.archive() == archive)
        .find(|r| r.selection.selects_tag(tag))
}

/// Which rule would have removed an image whose only tag is `tag`. `rules` as [`parse`]
/// returns them (by priority).
pub fn fate<'a>(rules: &'a [Rule], tag: &str) -> Fate<'a> {
    match first(rules, tag, false) {
        None => Fate::Untouched,
        Some(r) if r.expires() => Fate::Expired(r),
        Some(r) => Fate::Archived(r, first(rules, tag, true).filter(|a| a.expires())),
    }
}

/// A rule as evidence: its priority, description and selection in a few words.
pub fn describe(rule: &Rule) -> serde_json::Value {
    let s = &rule.selection;
    serde_json::json!({
        "rule_priority": rule.rule_priority,
        "description": rule.description,
        "tag_status": s.tag_status,
        "tag_prefix_list": s.tag_prefix_list,
        "tag_pattern_list": s.tag_pattern_list,
        "storage_class": s.storage_class,
        "condition": s.condition(),
        "action": rule.action.kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patterns and tags from the ECR user guide's "Examples of lifecycle policies" and
    /// "Lifecycle policy properties" (the `prod*` example, several patterns meaning all).
    #[test]
    fn tag_patterns_match_as_the_user_guide_says() {
        let cases = [
            ("prod*", "prod", true),
            ("prod*", "prod1", true),
            ("prod*", "production-2", true),
            ("prod*", "preprod", false),
            ("*test*1*2*3", "mytest-1-2-3", true),
            ("*test*1*2*3", "mytest-1-2-4", false),
            ("test*1*2*3*", "test123", true),
            ("v*.*.*", "v1.4.2", true),
            ("v*.*.*", "v1.4", false),
            ("latest", "latest", true),
            ("latest", "latest2", false),
            ("*", "", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
        ];
        for (pattern, tag, want) in cases {
            assert_eq!(wildcard_match(pattern, tag), want, "{pattern} ~ {tag}");
        }
    }

    fn rules(json: &str) -> Vec<Rule> {
        parse(json).unwrap()
    }

    /// The user guide's "Filtering on multiple rules" example shape: a tagged `prod` rule
    /// before an `any` rule.
    const TWO_RULES: &str = r#"{"rules":[
        {"rulePriority":2,"description":"Expire anything older than 30 days","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}},
        {"rulePriority":1,"description":"Keep 10 release images","selection":{"tagStatus":"tagged","tagPrefixList":["release-"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}
    ]}"#;

    #[test]
    fn the_first_rule_that_selects_a_tag_decides() {
        let r = rules(TWO_RULES);
        assert_eq!(r[0].rule_priority, 1, "sorted by priority");
        match fate(&r, "release-7") {
            Fate::Expired(rule) => assert_eq!(rule.rule_priority, 1),
            f => panic!("{f:?}"),
        }
        match fate(&r, "feature-x") {
            Fate::Expired(rule) => assert_eq!(rule.rule_priority, 2),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn tags_no_rule_selects_are_untouched() {
        let r = rules(
            r#"{"rules":[
            {"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}},
            {"rulePriority":2,"selection":{"tagStatus":"tagged","tagPatternList":["dev-*"],"countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}},
            {"rulePriority":3,"selection":{"tagStatus":"tagged","tagPrefixList":["prod","release"],"countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}
        ]}"#,
        );
        assert_eq!(fate(&r, "v1.4.2"), Fate::Untouched);
        // Several prefixes select only an image with all of them: one tag cannot be both.
        assert_eq!(fate(&r, "prod-1"), Fate::Untouched);
        assert!(matches!(fate(&r, "dev-42"), Fate::Expired(x) if x.rule_priority == 2));
        assert_eq!(fate(&[], "anything"), Fate::Untouched);
    }

    /// The archive storage class (lifecycle_policy_examples: "Archive images", then "expire
    /// archived images"): a transition rule archives; a rule with `storageClass: archive`
    /// may delete it later.
    #[test]
    fn transition_rules_archive_and_archive_rules_expire() {
        let r = rules(
            r#"{"rules":[
            {"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},"action":{"type":"transition","targetStorageClass":"archive"}},
            {"rulePriority":2,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},"action":{"type":"expire"}}
        ]}"#,
        );
        match fate(&r, "v1") {
            Fate::Archived(a, Some(e)) => {
                assert_eq!((a.rule_priority, e.rule_priority), (1, 2));
                assert_eq!(e.selection.condition(), "archived over 365 days ago");
            }
            f => panic!("{f:?}"),
        }
        assert!(matches!(fate(&r[..1], "v1"), Fate::Archived(_, None)));
    }

    #[test]
    fn unreadable_policies_are_errors_not_panics() {
        assert!(parse("").is_err());
        assert!(parse(r#"{"rules":[{"rulePriority":1}]}"#).is_err());
        assert!(parse(r#"{"rules":[]}"#).unwrap().is_empty());
    }

    /// Property tests (docs/property-tests.md): a lifecycle policy is an API answer, outside
    /// input: any text gives an answer, never a panic; a pattern without `*` matches only
    /// itself, and `*` around any tag matches it.
    mod proptests {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn never_panics(s in any::<String>(), tag in any::<String>()) {
                if let Ok(r) = parse(&s) {
                    let _ = fate(&r, &tag);
                }
                let _ = wildcard_match(&s, &tag);
            }

            #[test]
            fn patterns_match_as_globs(
                parts in prop::collection::vec("[a-z0-9.-]{0,4}", 1..6),
                fill in prop::collection::vec("[a-z0-9.*-]{0,4}", 5),
            ) {
                let pattern = parts.join("*");
                // Each `*` filled with anything gives a matching tag.
                let tag: String = parts.iter().enumerate().map(|(i, p)| {
                    if i == 0 { p.clone() } else { format!("{}{p}", fill[i - 1]) }
                }).collect();
                prop_assert!(wildcard_match(&pattern, &tag), "{} ~ {}", pattern, tag);
                prop_assert!(wildcard_match(&parts.concat(), &parts.concat()));
                if parts.len() == 1 {
                    let longer = format!("{}x", parts[0]);
                    prop_assert!(!wildcard_match(&parts[0], &longer));
                }
            }

            #[test]
            fn a_tag_in_a_prefix_rule_is_selected_by_it(prefix in "[a-z]{1,8}", rest in "[a-z0-9.-]{0,8}") {
                let text = format!(r#"{{"rules":[{{"rulePriority":1,"selection":{{"tagStatus":"tagged","tagPrefixList":["{prefix}"],"countType":"imageCountMoreThan","countNumber":1}},"action":{{"type":"expire"}}}}]}}"#);
                let r = parse(&text).unwrap();
                let tag = format!("{prefix}{rest}");
                prop_assert!(matches!(fate(&r, &tag), Fate::Expired(_)));
            }
        }
    }
}
