//! The shape of the code, checked: in both crates no module imports one that imports it back (no
//! import cycle, between files), the harness's layers are its folders and each uses only the
//! layers below it, and no function in either crate is over the cap.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The harness's layers (the folders of `harness/src`), bottom first, each with the layers it may
/// use besides its own.
const HARNESS_LAYERS: &[(&str, &[&str])] = &[
    ("records", &[]),
    ("run", &["records"]),
    ("reporting", &["records"]),
    ("orchestration", &["records", "run"]),
    ("serving", &["records", "run"]),
    ("bench", &["records", "run", "reporting", "serving"]),
    (
        "cli",
        &[
            "records",
            "run",
            "reporting",
            "orchestration",
            "serving",
            "bench",
        ],
    ),
];

const FUNCTION_CAP: usize = 60;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A source file's module path (`run/tasks/ner.rs` → `run::tasks::ner`, `run/mod.rs` → `run`);
/// empty for the crate root.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_string())
}

/// The code a file runs: no tests, no comments.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a file names from a start (`crate`, `super`, `self` or a child module declared in
/// it), each as segments; `use crate::{a, b::c}` names `a` and `b::c`.
fn named_paths(code: &str, start: &str) -> Vec<Vec<String>> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let needle = format!("{start}::");
    let mut found = vec![];
    for (i, _) in code.match_indices(&needle) {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue; // `x::crate::` or `foo_self::`: not a path that starts here
        }
        let mut rest = &code[i + needle.len()..];
        let mut segments = vec![];
        loop {
            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if name.is_empty() {
                break;
            }
            rest = &rest[name.len()..];
            segments.push(name);
            match rest.strip_prefix("::") {
                Some(more) => rest = more,
                None => break,
            }
        }
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let mut path = segments.clone();
                path.extend(
                    item.split("::")
                        .map(|s| s.trim().trim_start_matches('{').to_string())
                        .filter(|s| !s.is_empty() && s.chars().all(is_ident)),
                );
                found.push(path);
            }
        } else {
            found.push(segments);
        }
    }
    found
}

/// The modules of its own crate a module's code uses.
fn uses(module: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = code_of(text);
    let join = |base: &str, path: &[String]| {
        let mut all: Vec<String> = base
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        all.extend(path.iter().cloned());
        all
    };
    let mut full_paths = vec![];
    for path in named_paths(&code, "crate") {
        full_paths.push(path);
    }
    for path in named_paths(&code, "self") {
        full_paths.push(join(module, &path));
    }
    for path in named_paths(&code, "super") {
        let mut base = parent(module);
        let mut path = path.as_slice();
        while path.first().is_some_and(|s| s == "super") {
            base = parent(&base);
            path = &path[1..];
        }
        full_paths.push(join(&base, path));
    }
    for line in code.lines() {
        let line = line.trim_start().trim_start_matches("pub ");
        if let Some(child) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) {
            for path in named_paths(&code, child) {
                full_paths.push(join(module, &[vec![child.to_string()], path].concat()));
            }
        }
    }
    let mut found = BTreeSet::new();
    for path in full_paths {
        // The longest prefix that is a module of the crate.
        let resolved = (1..=path.len())
            .rev()
            .map(|n| path[..n].join("::"))
            .find(|m| modules.contains(m));
        if let Some(dep) = resolved {
            if dep != module {
                found.insert(dep);
            }
        }
    }
    found
}

/// Each module of a crate (by its `src` dir) and the modules it uses.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        if module.is_empty() {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        graph.insert(module.clone(), uses(&module, &text, &modules));
    }
    graph
}

/// The import cycles of the graph, each as `a → b → a` (one per edge that closes one).
fn find_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(start) = path.iter().position(|m| m == module) {
            cycles.push(format!("{} → {module}", path[start..].join(" → ")));
            return;
        }
        if !done.insert(module.to_string()) {
            return;
        }
        path.push(module.to_string());
        for dep in graph.get(module).into_iter().flatten() {
            visit(dep, graph, path, done, cycles);
        }
        path.pop();
    }
    let (mut done, mut cycles) = (BTreeSet::new(), vec![]);
    for module in graph.keys() {
        visit(module, graph, &mut vec![], &mut done, &mut cycles);
    }
    cycles
}

#[test]
fn no_import_cycle_in_either_crate() {
    let mut cycles = vec![];
    for krate in ["models", "harness"] {
        let graph = graph(&root().join(krate).join("src"));
        cycles.extend(
            find_cycles(&graph)
                .into_iter()
                .map(|c| format!("{krate}/src: {c}")),
        );
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_harness_layers_are_its_folders_and_depend_downwards() {
    let graph = graph(&root().join("harness/src"));
    let layer_of = |module: &str| {
        let layer = module.split("::").next().unwrap();
        HARNESS_LAYERS
            .iter()
            .find(|(l, _)| *l == layer)
            .unwrap_or_else(|| {
                panic!("harness/src/{layer}: not a layer folder of tests/code_shape.rs")
            })
    };
    let mut wrong = vec![];
    for (module, deps) in &graph {
        let (layer, below) = layer_of(module);
        for dep in deps {
            let (dep_layer, _) = layer_of(dep);
            if dep_layer != layer && !below.contains(dep_layer) {
                wrong.push(format!("{module} ({layer}) uses {dep} ({dep_layer})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layers:\n{}",
        wrong.join("\n")
    );
}

/// Each `fn` with a body and its length in lines, from its signature to its closing brace.
fn function_lengths(text: &str) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = vec![];
    for (start, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let code = code.strip_prefix("pub(crate) ").unwrap_or(code);
        let code = code.strip_prefix("pub ").unwrap_or(code);
        if !code.starts_with("fn ") {
            continue;
        }
        let mut depth = 0i32;
        let mut opened = false;
        for (end, body) in lines.iter().enumerate().skip(start) {
            for c in body.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if !opened && body.trim_end().ends_with(';') {
                break; // a declaration without a body
            }
            if opened && depth == 0 {
                found.push((start + 1, end - start + 1, code.to_string()));
                break;
            }
        }
    }
    found
}

#[test]
fn no_function_is_over_the_cap() {
    let mut long = vec![];
    for dir in ["harness/src", "harness/tests", "models/src", "models/tests"] {
        for file in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, length, signature) in function_lengths(&text) {
                if length > FUNCTION_CAP {
                    let at = file.strip_prefix(root()).unwrap().display();
                    long.push(format!("{at}:{line}: {length} lines: {signature}"));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {FUNCTION_CAP} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checkers_see_what_they_check() {
    let modules: BTreeSet<String> = ["a", "b", "b::c", "d", "p", "p::q", "p::r", "z"]
        .map(String::from)
        .into();
    let text = "use crate::{a, b::c};\nfn f() {\n    crate::d::e();\n}\n// crate::z in a comment\n#[cfg(test)]\nmod t { use crate::z; }\n";
    assert_eq!(
        uses("p::q", text, &modules).into_iter().collect::<Vec<_>>(),
        vec!["a", "b::c", "d"]
    );
    let child = "pub mod q;\nuse super::d;\nuse self::r::X;\nfn f() { q::g(); }\n";
    assert_eq!(
        uses("p", child, &modules).into_iter().collect::<Vec<_>>(),
        vec!["d", "p::q", "p::r"]
    );
    let cyclic = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(find_cycles(&cyclic), vec!["a → b → a"]);
    assert_eq!(function_lengths(text)[0].1, 3);
}
