//! The server's folders follow the data flow, and no import circle spans two of
//! them: this reads `src/` and fails on a cycle between folders (each file at the
//! root of `src/` counts as its own node; `lib.rs` and `main.rs` are left out).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Node -> the nodes it names as `crate::NODE` outside comments.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let mut parts = rel.components();
        let first = parts
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let node = first.trim_end_matches(".rs").to_string();
        if node == "lib" || node == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let deps = g.entry(node.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != node {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if g.contains_key(m)
                && let Some(c) = visit(m, g, path, done)
            {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_circle_spans_two_folders() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    for folder in ["ingest", "hub", "door", "api", "integrations", "cli"] {
        assert!(g.contains_key(folder), "folder {folder} is missing");
    }
    assert_eq!(find_cycle(&g), None, "import graph: {g:#?}");
}

#[test]
fn the_hub_and_ingest_know_nothing_of_http_handlers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    for low in ["hub", "ingest", "door"] {
        for high in ["api", "integrations", "cli", "router", "serve"] {
            assert!(
                !g[low].contains(high),
                "{low} must not use {high}: {:?}",
                g[low]
            );
        }
    }
}
