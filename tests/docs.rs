//! The book under docs/ is checked like code: its generated reference pages are current, every
//! relative link and anchor resolves, every flag of `headroom run` is explained somewhere, and
//! every `LIMITED` value has its troubleshooting row. `scripts/docs.sh` builds it with mdbook.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn headroom(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_headroom"))
        .args(args)
        .output()
        .expect("run headroom");
    assert!(out.status.success(), "headroom {args:?} failed");
    String::from_utf8(out.stdout).expect("utf-8")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pages() -> Vec<PathBuf> {
    let mut out = vec![repo().join("README.md")];
    let mut dirs = vec![repo().join("docs/src")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).expect("docs/src").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The flags page as `scripts/docs.sh` writes it.
fn flags_page() -> String {
    format!(
        "# headroom run flags\n\nGenerated from `headroom run --help` by `scripts/docs.sh`; a test fails when this page is stale. What each one is for: [operating it](../operations.md#flags).\n\n```text\n{}```\n",
        headroom(&["run", "--help"])
    )
}

#[test]
fn the_reference_pages_are_current() {
    let crd = headroom(&["crd", "--reference"]);
    assert!(
        read(&repo().join("docs/src/reference/crd.md")) == crd,
        "docs/src/reference/crd.md is stale: run `bash scripts/docs.sh`"
    );
    assert!(
        read(&repo().join("docs/src/reference/flags.md")) == flags_page(),
        "docs/src/reference/flags.md is stale: run `bash scripts/docs.sh`"
    );
}

/// mdbook's heading ids: lower case, spaces to `-`, only letters, digits, `-` and `_` kept.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// `(target)` of every `[text](target)` outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code is not a link, whatever brackets it holds.
        let prose: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect();
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = read(&page);
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().expect("a folder").join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", page.display()));
                continue;
            }
            let is_md = target.extension().is_some_and(|x| x == "md");
            if !anchor.is_empty() && is_md && !anchors(&read(&target)).contains(anchor) {
                broken.push(format!("{}: {link} (no such heading)", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_chapter_is_in_the_summary() {
    let summary = read(&repo().join("docs/src/SUMMARY.md"));
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    for page in pages()
        .iter()
        .filter(|p| p.starts_with(repo().join("docs/src")))
    {
        let rel = page
            .strip_prefix(repo().join("docs/src"))
            .expect("under docs/src")
            .to_string_lossy()
            .into_owned();
        if rel != "SUMMARY.md" {
            assert!(listed.contains(&rel), "{rel} is not in SUMMARY.md");
        }
    }
}

/// Every flag of `headroom run` is explained in a chapter, not only listed in the reference.
#[test]
fn every_run_flag_is_explained() {
    let help = headroom(&["run", "--help"]);
    let chapters: String = pages()
        .iter()
        .filter(|p| !p.ends_with("reference/flags.md"))
        .map(|p| read(p))
        .collect();
    let flags: BTreeSet<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split('=').next().unwrap_or(w))
        .filter(|w| *w != "--help")
        .collect();
    assert!(flags.len() > 20, "run --help lists {} flags", flags.len());
    let missing: Vec<&&str> = flags
        .iter()
        .filter(|f| !chapters.contains(&format!("`{f}")))
        .collect();
    assert!(missing.is_empty(), "flags no chapter explains: {missing:?}");
}

/// Every value of `LIMITED` (src/decision/mod.rs) has a row in the troubleshooting table.
#[test]
fn every_limited_value_is_in_troubleshooting() {
    let source = read(&repo().join("src/decision/mod.rs"));
    let page = read(&repo().join("docs/src/troubleshooting.md"));
    let values: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Limit::"))
        .filter_map(|l| l.split_once(" => \""))
        .map(|(_, v)| v.trim_end_matches("\","))
        .filter(|v| v.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    assert!(values.len() > 15, "found {} LIMITED values", values.len());
    for v in values {
        assert!(
            page.contains(&format!("`{v}`")),
            "{v} not in troubleshooting.md"
        );
    }
}
