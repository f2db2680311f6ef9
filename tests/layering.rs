//! The modules of `src/` are layered: no two top-level modules import each other, directly or
//! through others (docs/layout.md, "Layout"). A circle is how data modules end up knowing the
//! stages above them (the report importing the node cache, the config importing the modes), and
//! once there it grows, so this test reads the source and names any circle it finds.
//!
//! A top-level module is `src/NAME.rs` with `src/NAME/**`. Its imports are the `crate::NAME`
//! paths in its code; comments (doc links among them), `#[cfg(test)] mod … { … }` blocks and
//! the `tests.rs`, `proptests.rs` and `*_tests.rs` files are left out: a test may build its
//! input with a module above the one it tests. Files only, no stack.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Whether a file holds only tests of its module.
fn is_test_file(path: &Path) -> bool {
    let stem = path.file_stem().unwrap().to_string_lossy();
    stem == "tests" || stem == "proptests" || stem.ends_with("_tests")
}

/// `source` without comment lines and without `#[cfg(test)]` modules (counted by braces, which
/// holds for this crate's formatted code).
fn code_of(source: &str) -> String {
    let module = regex::Regex::new(r"^\s*(pub(\([a-z]+\))? )?mod [a-z_0-9]+ \{").unwrap();
    let mut out = String::new();
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" && lines.peek().is_some_and(|l| module.is_match(l)) {
            let mut depth = 0i64;
            for inner in lines.by_ref() {
                depth += inner.matches('{').count() as i64 - inner.matches('}').count() as i64;
                if depth <= 0 {
                    break;
                }
            }
        } else if !line.trim_start().starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The top-level modules of `src/` and which of the others each one's code names.
fn module_imports() -> Graph {
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if !matches!(name.as_str(), "lib" | "main") {
            modules.entry(name).or_insert_with(Vec::new).push(path);
        }
    }
    let path = regex::Regex::new(r"crate::([a-z_0-9]+)|crate::\{([^}]*)\}").unwrap();
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, roots) in &modules {
        let mut files = Vec::new();
        for root in roots {
            if root.is_dir() {
                rust_files(root, &mut files);
            } else {
                files.push(root.clone());
            }
        }
        let imports = graph.entry(module.clone()).or_default();
        for file in files.iter().filter(|f| !is_test_file(f)) {
            let code = code_of(&fs::read_to_string(file).unwrap());
            for c in path.captures_iter(&code) {
                let named: Vec<&str> = match (c.get(1), c.get(2)) {
                    (Some(one), _) => vec![one.as_str()],
                    (None, Some(list)) => list
                        .as_str()
                        .split(',')
                        .map(|p| p.trim().split("::").next().unwrap_or_default())
                        .collect(),
                    (None, None) => vec![],
                };
                for n in named {
                    if names.contains(n) && n != module {
                        imports.insert(n.to_string());
                    }
                }
            }
        }
    }
    graph
}

/// A circle in `graph` as the path that closes it (`a -> b -> a`), or `None`. Depth first,
/// in name order, so the same tree names the same circle.
fn find_circle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, done, path) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_circle_finder_finds_a_circle_and_only_a_circle() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    // A diamond shares a module below two others: not a circle.
    let diamond = graph(&[
        ("cli", "probe"),
        ("cli", "watch"),
        ("probe", "report"),
        ("watch", "report"),
    ]);
    assert_eq!(find_circle(&diamond), None);
    // The config naming the modes that import it, through one of them.
    let circle = graph(&[
        ("config", "gate"),
        ("gate", "diagnose"),
        ("diagnose", "config"),
        ("gate", "report"),
    ]);
    assert_eq!(
        find_circle(&circle).unwrap(),
        ["config", "gate", "diagnose", "config"]
    );
}

#[test]
fn the_code_filter_drops_comments_and_test_modules_only() {
    let code = code_of(
        "use crate::report;\n/// [`crate::probe`]\nfn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::watch;\n    fn g() { let _ = 1; }\n}\nuse crate::wire;\n",
    );
    assert!(
        code.contains("crate::report") && code.contains("crate::wire"),
        "{code}"
    );
    assert!(
        !code.contains("crate::probe") && !code.contains("crate::watch"),
        "{code}"
    );
}

#[test]
fn the_top_level_modules_import_without_a_circle() {
    let graph = module_imports();
    // The reader found the crate: the report is imported, and imports nothing of the modes.
    assert!(graph["probe"].contains("report"), "{graph:?}");
    assert!(!graph["report"].contains("probe"), "{graph:?}");
    if let Some(circle) = find_circle(&graph) {
        panic!(
            "the modules of src/ import each other in a circle: {} (docs/layout.md: data at \
             the bottom imports nothing above it; move what both need down, or the caller's \
             part up)",
            circle.join(" -> ")
        );
    }
}
