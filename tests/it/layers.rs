//! The layers of src/ point one way: no file depends, through any chain of imports, on itself. A file
//! depends on another when it names it by a `crate::` or `super::` path, or by the name of a child
//! module it declares (`mod git;` ... `git::Request`). Test modules (`#[cfg(test)] mod tests`) and
//! comments do not count. When this fails, it prints each circle: move what both sides need down a layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[test]
fn no_file_of_src_depends_on_itself_through_imports() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    assert!(graph.len() > 20, "src/ was not read: {} files", graph.len());
    let circles = circles(&graph);
    assert!(circles.is_empty(), "files of src/ that import each other in a circle:\n{}", circles.join("\n"));
}

#[test]
fn the_checker_finds_a_planted_circle() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    write("a.rs", "use crate::b::Thing;\n// use crate::c::Other; (a comment)\n");
    write("b/mod.rs", "mod inner;\nuse inner::Helper;\n");
    write("b/inner.rs", "use crate::{a, c::Other};\n");
    write("c.rs", "#[cfg(test)]\nmod tests {\n    use crate::a::X;\n}\n");
    let graph = import_graph(dir.path());
    assert_eq!(graph["b/inner.rs"], BTreeSet::from(["a.rs".to_string(), "c.rs".to_string()]));
    assert!(graph["c.rs"].is_empty(), "test modules do not count");
    assert_eq!(circles(&graph), vec!["a.rs -> b/inner.rs -> b/mod.rs".to_string()]);
}

/// Each file of `src` (relative path) and the files it depends on.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeMap<String, String> = rust_files(src)
        .into_iter()
        .map(|path| (relative(src, &path), std::fs::read_to_string(&path).unwrap()))
        .collect();
    let names: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(file, text)| {
            let me = module_path(file);
            let code = strip_tests(&strip_comments(text));
            let children: Vec<String> = declared_children(&code);
            let mut targets = BTreeSet::new();
            for path in paths(&code) {
                let resolved = match path.first().map(String::as_str) {
                    Some("crate") => path[1..].to_vec(),
                    Some("super") => [&me[..me.len().saturating_sub(1)], &path[1..]].concat(),
                    Some(first) if children.iter().any(|c| c == first) => [&me[..], &path[..]].concat(),
                    _ => continue,
                };
                if let Some(target) = file_for(&resolved, &names).filter(|target| target != file) {
                    targets.insert(target);
                }
            }
            (file.clone(), targets)
        })
        .collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn relative(src: &Path, path: &Path) -> String {
    path.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/")
}

/// `cache/file.rs` -> [cache, file]; `cache/mod.rs` -> [cache]; `lib.rs` -> [].
fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The file that defines the longest prefix of a module path.
fn file_for(path: &[String], names: &BTreeSet<String>) -> Option<String> {
    (0..=path.len()).rev().find_map(|n| {
        let base = path[..n].join("/");
        let candidates =
            if n == 0 { vec!["lib.rs".to_string()] } else { vec![format!("{base}.rs"), format!("{base}/mod.rs")] };
        candidates.into_iter().find(|c| names.contains(c))
    })
}

fn strip_comments(text: &str) -> String {
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The text before `#[cfg(test)] mod ... {` (test modules come last in every file).
fn strip_tests(text: &str) -> String {
    let mut rest = text;
    let mut kept = String::new();
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod ") {
            kept.push_str(&rest[..at]);
            return kept;
        }
        kept.push_str(&rest[..at + 1]);
        rest = &rest[at + 1..];
    }
    kept.push_str(rest);
    kept
}

/// The child modules a file declares with `mod name;` (any visibility).
fn declared_children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("pub ").or_else(|| line.strip_prefix("pub(crate) ")).unwrap_or(line);
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

/// Every `a::b::c` path in the code, with use-tree groups expanded one level (`a::{b, c::d}` gives
/// `a::b` and `a::c`).
fn paths(code: &str) -> Vec<Vec<String>> {
    let bytes: Vec<char> = code.chars().collect();
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let mut segments = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            segments.push(bytes[start..j].iter().collect::<String>());
            if j + 2 < bytes.len() && bytes[j] == ':' && bytes[j + 1] == ':' {
                j += 2;
                if bytes[j] == '{' {
                    let mut depth = 0;
                    let mut end = j;
                    while end < bytes.len() {
                        match bytes[end] {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        end += 1;
                    }
                    let group: String = bytes[j + 1..end.min(bytes.len())].iter().collect();
                    for item in split_top_level(&group) {
                        let first = item.trim().split("::").next().unwrap_or_default().trim().to_string();
                        if !first.is_empty() && first != "self" {
                            out.push([segments.clone(), vec![first]].concat());
                        }
                    }
                    j = end;
                    break;
                }
                if j < bytes.len() && is_ident(bytes[j]) {
                    continue;
                }
            }
            break;
        }
        if segments.len() > 1 {
            out.push(segments);
        }
        i = j.max(i + 1);
    }
    out
}

fn split_top_level(group: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0;
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = items.last_mut() {
            last.push(c);
        }
    }
    items
}

/// The strongly connected sets of two or more files (Tarjan), each as "a -> b -> c" in name order.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<String>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let n = state.index.len();
        state.index.insert(node, n);
        state.low.insert(node, n);
        state.stack.push(node);
        state.on_stack.insert(node);
        let graph = state.graph;
        for next in graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !graph.contains_key(next) {
                continue;
            }
            if !state.index.contains_key(next) {
                visit(state, next);
                let low = state.low[node].min(state.low[next]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(next) {
                let low = state.low[node].min(state.index[next]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut members = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                members.push(top);
                if top == node {
                    break;
                }
            }
            if members.len() > 1 {
                members.sort();
                state.found.push(members.join(" -> "));
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found.sort();
    state.found
}
