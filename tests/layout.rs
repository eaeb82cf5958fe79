//! The house's shape, checked like behaviour: no two folders of `src/` import each other
//! (directly or round a longer circle), and no function in the controller or the plan is
//! longer than a screen. Unit tests may reach across (the simulator's test that it decides as
//! the operator does), so test modules are left out of the import graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to: `src/plan/mod.rs` → `plan`, `src/rng.rs` → `rng`.
fn room(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// Which rooms each room names as `crate::<room>`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let from = room(&f);
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        if from == "bin" || from == "main" || name.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        // A file's unit tests come last, from its `#[cfg(test)]` on.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for part in text.split("crate::").skip(1) {
            let to: String = part
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !to.is_empty() && to != from {
                out.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    out
}

fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(r) = todo.pop() {
        if r == to {
            return true;
        }
        if seen.insert(r.clone()) {
            todo.extend(graph.get(&r).into_iter().flatten().cloned());
        }
    }
    false
}

#[test]
fn no_import_circle_between_folders() {
    let graph = imports();
    let mut circles = Vec::new();
    for (from, tos) in &graph {
        for to in tos {
            if reaches(&graph, to, from) {
                circles.push(format!("{from} -> {to} -> ... -> {from}"));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// A line without its visibility and qualifiers: `pub(super) async fn x` reads `fn x`.
fn signature(line: &str) -> &str {
    let mut rest = line;
    loop {
        let before = rest;
        if let Some(r) = rest.strip_prefix("pub(") {
            rest = r.split_once(") ").map_or(r, |(_, after)| after);
        }
        for q in ["pub ", "async ", "const ", "unsafe "] {
            rest = rest.strip_prefix(q).unwrap_or(rest);
        }
        if rest == before {
            return rest;
        }
    }
}

/// Lines of each `fn` from its signature to its closing brace at the same indent.
fn long_functions(path: &Path, limit: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let is_fn = signature(body).starts_with("fn ");
        if !is_fn || body.ends_with(';') {
            continue;
        }
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines[i + 1..].iter().position(|l| l.starts_with(&close))
            && end + 2 > limit
        {
            out.push(format!("{}:{} ({} lines)", path.display(), i + 1, end + 2));
        }
    }
    out
}

#[test]
fn no_function_in_the_controller_or_the_plan_over_80_lines() {
    let mut files = Vec::new();
    rust_files(&src().join("controller"), &mut files);
    rust_files(&src().join("plan"), &mut files);
    let long: Vec<String> = files.iter().flat_map(|f| long_functions(f, 80)).collect();
    assert!(
        long.is_empty(),
        "functions over 80 lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn a_signature_is_read_whatever_its_visibility() {
    assert!(signature("pub(super) async fn read(").starts_with("fn "));
    assert!(signature("pub(crate) fn key(").starts_with("fn "));
    assert!(signature("const fn x(").starts_with("fn "));
    assert!(!signature("let f = 1;").starts_with("fn "));
}
