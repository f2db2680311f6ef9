//! The documentation holds together: every relative link between the Markdown pages reaches a
//! file and, with a `#fragment`, a heading of it; every `docs/*.md` the code names exists; every
//! README section the code points to (`README, "Exit codes"`) is a heading of the README; and
//! docs/layout.md names every file of `src/` and `tests/common/`. Files only, no stack.
//!
//! Anchors are GitHub's, which GitHub does not specify; this follows Flet/github-slugger, the
//! library written to match it: the heading's text lower-cased, stripped of everything but
//! letters, digits, `-`, `_` and spaces, each space made `-` (not collapsed: "Limits & Retries"
//! is `limits--retries`), a repeated heading suffixed `-1`, `-2`. The rendered reports'
//! `docs/findings.md#pod_identity_can_pull` links rely on the same rule.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, sorted, skipping `target/`, `.git/` and the rendered reports of
/// `tests/golden/` (their links are relative to wherever a report is shown).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !path.is_dir() {
                out.push(path);
            } else if !matches!(name.as_str(), "target" | ".git" | "golden") {
                walk(&path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// The hand-written Markdown of the repository.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = files_under(&root());
    files.retain(|f| f.extension().is_some_and(|x| x == "md"));
    files
}

/// GitHub's anchor for a heading's text.
fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

struct Page {
    headings: Vec<String>,
    anchors: BTreeSet<String>,
    /// (link target as written, line)
    links: Vec<(String, usize)>,
}

fn read_page(path: &Path) -> Page {
    let text = fs::read_to_string(path).unwrap();
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let (mut headings, mut links) = (Vec::new(), Vec::new());
    let mut heading: Option<String> = None;
    for (event, range) in Parser::new_ext(&text, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => headings.extend(heading.take()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                links.push((dest_url.into_string(), line_of(range.start)))
            }
            _ => {}
        }
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for h in &headings {
        let base = slug(h);
        let n = seen.entry(base.clone()).or_insert(0);
        anchors.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    Page {
        headings,
        anchors,
        links,
    }
}

/// `a/b/../c` -> `a/c`, without touching the file system (the target may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_relative_link_between_the_pages_resolves() {
    let files = markdown_files();
    assert!(
        files.iter().any(|f| f.ends_with("docs/layout.md")),
        "no docs/ found"
    );
    let mut pages: BTreeMap<PathBuf, Page> = BTreeMap::new();
    for f in &files {
        pages.insert(f.clone(), read_page(f));
    }
    let mut broken = Vec::new();
    for (file, page) in &pages {
        for (dest, line) in &page.links {
            if dest.contains("://") || dest.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = match dest.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (dest.as_str(), None),
            };
            let target = if path.is_empty() {
                file.clone()
            } else {
                normalize(&file.parent().unwrap().join(path))
            };
            let at = format!("{}:{line}: ({dest})", relative(file));
            if !target.exists() {
                broken.push(format!("{at}: no file {}", relative(&target)));
                continue;
            }
            let Some(fragment) = fragment else { continue };
            match pages.get(&target) {
                Some(t) if t.anchors.contains(fragment) => {}
                Some(_) => broken.push(format!(
                    "{at}: no heading #{fragment} in {}",
                    relative(&target)
                )),
                None => broken.push(format!(
                    "{at}: a #fragment into a file that is not Markdown"
                )),
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The code's own pointers into the documentation: `docs/NAME.md` in a comment, a message or a
/// test, and `README, "SECTION"` (the exit-code help of `config.rs` prints one to users).
#[test]
fn the_pages_and_readme_sections_the_code_names_exist() {
    let docs = regex::Regex::new(r"\bdocs/[A-Za-z0-9_-]+\.md").unwrap();
    let section = regex::Regex::new(r#"README,? \\?"([^"\\]+)\\?""#).unwrap();
    let readme = read_page(&root().join("README.md"));
    let headings: BTreeSet<String> = readme
        .headings
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut missing = Vec::new();
    let files = ["src", "tests", "scripts", ".ci", "manifests"]
        .iter()
        .flat_map(|dir| files_under(&root().join(dir)));
    for file in files {
        // This file spells the patterns themselves.
        if file.ends_with("tests/docs.rs") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for m in docs.find_iter(&text) {
            let path = root().join(m.as_str());
            if !path.exists() {
                missing.push(format!(
                    "{}: {} does not exist",
                    relative(&file),
                    m.as_str()
                ));
            }
        }
        for c in section.captures_iter(&text) {
            if !headings.contains(&c[1]) {
                missing.push(format!(
                    "{}: the README has no section \"{}\"",
                    relative(&file),
                    &c[1]
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// docs/layout.md lists every module: each `src/NAME.rs` by its path, each file of a folder by
/// its folder (`src/NAME/`, or `src/NAME.rs` for a module with children) and its name (`x509.rs`,
/// or `denied` in a list of a folder's modules), and every file of `tests/common/`.
#[test]
fn the_layout_names_every_module() {
    let layout = fs::read_to_string(root().join("docs/layout.md")).unwrap();
    let mut unnamed = Vec::new();
    let files = ["src", "tests/common"]
        .iter()
        .flat_map(|dir| files_under(&root().join(dir)))
        .filter(|f| f.extension().is_some_and(|x| x == "rs"));
    for file in files {
        let rel = relative(&file);
        let parts: Vec<&str> = rel.split('/').collect();
        let name = parts[parts.len() - 1];
        let stem = name.trim_end_matches(".rs");
        let word = regex::Regex::new(&format!(r"\b{}\b", regex::escape(stem))).unwrap();
        let listed = layout.contains(name) || word.is_match(&layout);
        let named = match parts.as_slice() {
            ["src", _] => layout.contains(&rel),
            ["src", folder, ..] => {
                let module = layout.contains(&format!("src/{folder}/"))
                    || layout.contains(&format!("src/{folder}.rs"));
                module && listed
            }
            _ => layout.contains(name),
        };
        if !named {
            unnamed.push(rel);
        }
    }
    assert!(
        unnamed.is_empty(),
        "docs/layout.md does not name: {}",
        unnamed.join(", ")
    );
}
