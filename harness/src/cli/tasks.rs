//! `ptv2 tasks`: the task registry as a markdown table (docs/tasks.md holds it, and a test keeps
//! it current).

use anyhow::Result;

use crate::run::tasks::registry;

pub fn run() -> Result<()> {
    print!("{}", tasks_markdown());
    Ok(())
}

/// One row per registered task: its family, its files under the data dir, its metric, its labels.
pub fn tasks_markdown() -> String {
    let mut out = String::from(
        "| task | family (format) | files under the data dir | metric (the first picks the best epoch) | labels |\n|---|---|---|---|---|\n",
    );
    for spec in registry() {
        let t = spec.listing();
        let labels = if t.labels.is_empty() {
            "–".to_string()
        } else {
            t.labels
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {labels} |\n",
            t.name, t.family, t.files, t.metric
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_tasks_holds_the_generated_table() {
        crate::cli::assert_doc_holds("docs/tasks.md", &super::tasks_markdown(), "tasks");
    }
}
