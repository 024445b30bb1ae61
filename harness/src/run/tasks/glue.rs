//! GLUE, in its original TSV files. Format traps (shared/data/SOURCES.md, notes §2): rows are split
//! on tabs with no CSV quoting (texts hold bare quotes), MRPC starts with a UTF-8 BOM, CoLA has no
//! header. Columns are found by header name where there is a header.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::parquet::string_column;
use super::task::Source;
use super::text::{Label, Metric, TextExample, TextTask};
use crate::records::data::require_file;

#[derive(Debug, Clone, Copy)]
pub enum Column {
    Name(&'static str),
    Index(usize),
}

/// A GLUE task, declared.
#[derive(Debug, Clone, Copy)]
pub struct GlueTask {
    pub name: &'static str,
    pub train: &'static str,
    pub dev: &'static str,
    pub has_header: bool,
    pub text: Column,
    pub pair: Option<Column>,
    pub label: Column,
    /// Labels as they appear in the file, in class order; empty for regression.
    pub labels: &'static [&'static str],
    /// What each class is called in predictions, reports and templates (Hugging Face's `glue`
    /// names: SST-2's negative/positive rather than the file's 0/1); a class's index stays
    /// available beside it.
    pub names: &'static [&'static str],
    pub metric: Metric,
    /// The text (and pair) columns of the Hugging Face `glue` config's Parquet export.
    pub hf_columns: (&'static str, Option<&'static str>),
}

const BINARY: &[&str] = &["0", "1"];
const ENTAILMENT: &[&str] = &["entailment", "not_entailment"];

pub const TASKS: &[GlueTask] = &[
    GlueTask {
        name: "sst2",
        train: "glue/SST-2/train.tsv",
        dev: "glue/SST-2/dev.tsv",
        has_header: true,
        text: Column::Name("sentence"),
        pair: None,
        label: Column::Name("label"),
        labels: BINARY,
        names: &["negative", "positive"],
        metric: Metric::Accuracy,
        hf_columns: ("sentence", None),
    },
    GlueTask {
        name: "mrpc",
        train: "glue/MRPC/train.tsv",
        dev: "glue/MRPC/dev.tsv",
        has_header: true,
        text: Column::Name("#1 String"),
        pair: Some(Column::Name("#2 String")),
        label: Column::Name("Quality"),
        labels: BINARY,
        names: &["not_equivalent", "equivalent"],
        metric: Metric::F1AndAccuracy,
        hf_columns: ("sentence1", Some("sentence2")),
    },
    GlueTask {
        name: "cola",
        train: "glue/CoLA/train.tsv",
        dev: "glue/CoLA/dev.tsv",
        has_header: false,
        text: Column::Index(3),
        pair: None,
        label: Column::Index(1),
        labels: BINARY,
        names: &["unacceptable", "acceptable"],
        metric: Metric::Matthews,
        hf_columns: ("sentence", None),
    },
    GlueTask {
        name: "rte",
        train: "glue/RTE/train.tsv",
        dev: "glue/RTE/dev.tsv",
        has_header: true,
        text: Column::Name("sentence1"),
        pair: Some(Column::Name("sentence2")),
        label: Column::Name("label"),
        labels: ENTAILMENT,
        names: ENTAILMENT,
        metric: Metric::Accuracy,
        hf_columns: ("sentence1", Some("sentence2")),
    },
    GlueTask {
        name: "stsb",
        train: "glue/STS-B/train.tsv",
        dev: "glue/STS-B/dev.tsv",
        has_header: true,
        text: Column::Name("sentence1"),
        pair: Some(Column::Name("sentence2")),
        label: Column::Name("score"),
        labels: &[],
        names: &[],
        metric: Metric::PearsonSpearman,
        hf_columns: ("sentence1", Some("sentence2")),
    },
    GlueTask {
        name: "qnli",
        train: "glue/QNLI/train.tsv",
        dev: "glue/QNLI/dev.tsv",
        has_header: true,
        text: Column::Name("question"),
        pair: Some(Column::Name("sentence")),
        label: Column::Name("label"),
        labels: ENTAILMENT,
        names: ENTAILMENT,
        metric: Metric::Accuracy,
        hf_columns: ("question", Some("sentence")),
    },
    GlueTask {
        name: "qqp",
        train: "glue/QQP/train.tsv",
        dev: "glue/QQP/dev.tsv",
        has_header: true,
        text: Column::Name("question1"),
        pair: Some(Column::Name("question2")),
        label: Column::Name("is_duplicate"),
        labels: BINARY,
        names: &["not_duplicate", "duplicate"],
        metric: Metric::F1AndAccuracy,
        hf_columns: ("question1", Some("question2")),
    },
    GlueTask {
        name: "mnli",
        train: "glue/MNLI/train.tsv",
        dev: "glue/MNLI/dev_matched.tsv",
        has_header: true,
        text: Column::Name("sentence1"),
        pair: Some(Column::Name("sentence2")),
        label: Column::Name("gold_label"),
        labels: &["entailment", "neutral", "contradiction"],
        names: &["entailment", "neutral", "contradiction"],
        metric: Metric::Accuracy,
        hf_columns: ("premise", Some("hypothesis")),
    },
];

pub fn load(task: &GlueTask, source: &Source) -> Result<TextTask> {
    let splits = source.read(
        |dir| {
            let train = require_file(dir, task.train, task.name)?;
            Ok((train, require_file(dir, task.dev, task.name)?))
        },
        |path| read_split(task, path),
        |row, id, at| Ok(vec![parquet_example(task, &row, id, at)?]),
    )?;
    Ok(TextTask::new(
        task.name,
        task.names,
        false,
        task.metric,
        splits,
    ))
}

/// A row of the Hugging Face export: its text columns and `label` (a class index; STS-B's a
/// float).
fn parquet_example(
    task: &GlueTask,
    row: &serde_json::Map<String, serde_json::Value>,
    id: &str,
    at: &str,
) -> Result<TextExample> {
    let string = |key: &str| string_column(row, key, at);
    let (text, pair) = task.hf_columns;
    let raw = row
        .get("label")
        .with_context(|| format!("{at}: no \"label\" column"))?;
    let label = if task.labels.is_empty() {
        let value = raw
            .as_f64()
            .with_context(|| format!("{at}: label {raw} is not a number"))?;
        Label::Value(value as f32)
    } else {
        match raw.as_u64().filter(|&c| (c as usize) < task.labels.len()) {
            Some(c) => Label::Class(c as usize),
            None => bail!(
                "{at}: label {raw} is not a class index below {}",
                task.labels.len()
            ),
        }
    };
    Ok(TextExample::single(
        id.to_string(),
        string(text)?,
        pair.map(string).transpose()?,
        label,
    ))
}

/// A label cell: a number for regression, else one of the task's label names.
fn parse_label(task: &GlueTask, raw: &str, at: impl Fn() -> String) -> Result<Label> {
    if task.labels.is_empty() {
        return Ok(Label::Value(raw.parse().with_context(|| {
            format!("{}: label \"{raw}\" is not a number", at())
        })?));
    }
    match task.labels.iter().position(|l| *l == raw) {
        Some(class) => Ok(Label::Class(class)),
        None => bail!(
            "{}: label \"{raw}\" is not one of {}",
            at(),
            task.labels.join(", ")
        ),
    }
}

/// Read one TSV split. Every bad row is an error naming the file, line and what was expected.
pub fn read_split(task: &GlueTask, path: &Path) -> Result<Vec<TextExample>> {
    let raw = crate::records::data::read_text(path)?;
    let text = raw.strip_prefix('\u{feff}').unwrap_or(&raw);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let header: Vec<&str> = if task.has_header {
        match lines.next() {
            Some((_, line)) => line.split('\t').collect(),
            None => bail!("{}: empty file, expected a header line", path.display()),
        }
    } else {
        vec![]
    };
    let index = |column: Column| -> Result<usize> {
        match column {
            Column::Index(i) => Ok(i),
            Column::Name(name) => header.iter().position(|h| *h == name).with_context(|| {
                format!(
                    "{}:1: header has no column \"{name}\" (found: {})",
                    path.display(),
                    header.join(", ")
                )
            }),
        }
    };
    let (text_col, label_col) = (index(task.text)?, index(task.label)?);
    let pair_col = task.pair.map(index).transpose()?;
    let needed = text_col.max(label_col).max(pair_col.unwrap_or(0)) + 1;

    let mut examples = vec![];
    for (number, line) in lines {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < needed {
            bail!(
                "{}:{number}: expected at least {needed} tab-separated columns, found {}",
                path.display(),
                fields.len()
            );
        }
        let at = || format!("{}:{number}", path.display());
        let label = parse_label(task, fields[label_col].trim(), at)?;
        examples.push(TextExample::single(
            format!(
                "{}:{number}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            fields[text_col].to_string(),
            pair_col.map(|c| fields[c].to_string()),
            label,
        ));
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str) -> &'static GlueTask {
        TASKS.iter().find(|t| t.name == name).unwrap()
    }

    #[test]
    fn reads_bom_header_and_bare_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.tsv");
        std::fs::write(
            &path,
            "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe said \" hi\tOK \"\n",
        )
        .unwrap();
        let rows = read_split(task("mrpc"), &path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].inputs,
            vec![("He said \" hi".to_string(), Some("OK \"".to_string()))]
        );
        assert_eq!(rows[0].label, Label::Class(1));
    }

    #[test]
    fn headerless_cola_uses_column_indices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.tsv");
        std::fs::write(
            &path,
            "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more.\n",
        )
        .unwrap();
        let rows = read_split(task("cola"), &path).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.label.clone()).collect::<Vec<_>>(),
            vec![Label::Class(1), Label::Class(0)]
        );
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.tsv");
        std::fs::write(
            &path,
            "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tmaybe\n",
        )
        .unwrap();
        let err = read_split(task("rte"), &path).unwrap_err().to_string();
        assert!(
            err.contains("train.tsv:3") && err.contains("\"maybe\""),
            "{err}"
        );
        std::fs::write(&path, "index\tsentence1\tsentence2\tlabel\n0\tonly two\n").unwrap();
        let err = read_split(task("rte"), &path).unwrap_err().to_string();
        assert!(
            err.contains("train.tsv:2") && err.contains("expected at least 4"),
            "{err}"
        );
    }
}
