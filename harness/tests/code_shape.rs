//! The shape of the code, checked: the harness's modules depend one way (no import cycle, each
//! layer uses only the layers below it), and no function in either crate is over 80 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The harness's layers, bottom first; a module may use its own layer and the ones it lists.
const LAYERS: &[(&str, &[&str], &[&str])] = &[
    (
        "records",
        &[
            "records", "settings", "schedule", "io", "data", "metrics", "signals",
        ],
        &[],
    ),
    (
        "run",
        &["tasks", "optim", "init_tokens", "train", "resume", "replay"],
        &["records"],
    ),
    (
        "reporting",
        &["results", "table", "stats", "charts", "report", "check"],
        &["records"],
    ),
    (
        "orchestration",
        &["sweep", "runner", "claims", "slurm"],
        &["records", "run"],
    ),
    ("serving", &["serve", "peft"], &["records", "run"]),
    (
        "cli",
        &["cli"],
        &["records", "run", "reporting", "orchestration", "serving"],
    ),
];

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

/// The top-level module a source file belongs to (`tasks/ner.rs` → `tasks`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    Path::new(first)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .to_string()
}

/// The crate modules a file's non-test code names: `crate::x`, `use crate::{x, y::z}`.
fn uses(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = item.trim().split("::").next().unwrap_or_default();
                if !name.is_empty() {
                    found.insert(name.to_string());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

fn layer_of(module: &str) -> &'static str {
    LAYERS
        .iter()
        .find(|(_, modules, _)| modules.contains(&module))
        .map(|(layer, _, _)| *layer)
        .unwrap_or_else(|| panic!("module {module} is in no layer of tests/code_shape.rs"))
}

fn harness_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let module = module_of(&src, &file);
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(uses(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

#[test]
fn harness_modules_depend_one_way() {
    let graph = harness_graph();
    let mut wrong = vec![];
    for (module, deps) in &graph {
        let layer = layer_of(module);
        let (_, _, below) = LAYERS.iter().find(|(l, _, _)| *l == layer).unwrap();
        for dep in deps {
            let dep_layer = layer_of(dep);
            if dep_layer != layer && !below.contains(&dep_layer) {
                wrong.push(format!("{module} ({layer}) uses {dep} ({dep_layer})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layers:\n{}",
        wrong.join("\n")
    );

    // No cycle, within a layer either: depth-first search for a back edge.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(start) = path.iter().position(|m| m == module) {
            panic!("import cycle: {} → {module}", path[start..].join(" → "));
        }
        if done.contains(module) {
            return;
        }
        path.push(module.to_string());
        for dep in graph.get(module).into_iter().flatten() {
            visit(dep, graph, path, done);
        }
        path.pop();
        done.insert(module.to_string());
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut vec![], &mut done);
    }
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
fn no_function_is_over_80_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut long = vec![];
    for dir in ["harness/src", "harness/tests", "models/src", "models/tests"] {
        for file in rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, length, signature) in function_lengths(&text) {
                if length > 80 {
                    let at = file.strip_prefix(&root).unwrap().display();
                    long.push(format!("{at}:{line}: {length} lines: {signature}"));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over 80 lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checkers_see_what_they_check() {
    let text = "use crate::{a, b::c};\nfn f() {\n    crate::d::e();\n}\n#[cfg(test)]\nmod t { use crate::z; }\n";
    assert_eq!(
        uses(text).into_iter().collect::<Vec<_>>(),
        vec!["a", "b", "d"]
    );
    assert_eq!(function_lengths(text)[0].1, 3);
}
