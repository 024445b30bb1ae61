//! SuperGLUE, in its original JSONL files, with the reference code's input templates (notes §2):
//! BoolQ (question, passage); CB and RTE (premise, hypothesis); WiC the BERT script's template 1
//! (`word: s1`, `word: s2`), and as `wic_question` the RoBERTa script's template 0 (one text:
//! `s1 s2 Does word have the same meaning in both sentences?`); WSC (`span2: text`, span1); COPA as multiple choice over
//! (`premise because`/`premise so`, choice); MultiRC one example per answer option
//! (paragraph, `question answer`), scored by F1a. Labels are bools, strings or ints by task.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::parquet::string_column;
use super::task::Source;
use super::text::{Label, Metric, TextExample, TextTask};
use crate::records::data::require_file;

/// A SuperGLUE task, declared: its folder under `superglue/`, label names in class order (as
/// the JSONL writes them), metric.
#[derive(Debug, Clone, Copy)]
pub struct SuperGlueTask {
    pub name: &'static str,
    pub dir: &'static str,
    pub labels: &'static [&'static str],
    pub metric: Metric,
}

const BOOLS: &[&str] = &["false", "true"];

pub const TASKS: &[SuperGlueTask] = &[
    SuperGlueTask {
        name: "boolq",
        dir: "BoolQ",
        labels: BOOLS,
        metric: Metric::Accuracy,
    },
    SuperGlueTask {
        name: "cb",
        dir: "CB",
        labels: &["entailment", "contradiction", "neutral"],
        metric: Metric::AccuracyAndMacroF1,
    },
    SuperGlueTask {
        name: "copa",
        dir: "COPA",
        labels: &["choice1", "choice2"],
        metric: Metric::Accuracy,
    },
    SuperGlueTask {
        name: "superglue-rte",
        dir: "RTE",
        labels: &["entailment", "not_entailment"],
        metric: Metric::Accuracy,
    },
    SuperGlueTask {
        name: "wic",
        dir: "WiC",
        labels: BOOLS,
        metric: Metric::Accuracy,
    },
    SuperGlueTask {
        name: "wic_question",
        dir: "WiC",
        labels: BOOLS,
        metric: Metric::Accuracy,
    },
    SuperGlueTask {
        name: "wsc",
        dir: "WSC",
        labels: BOOLS,
        metric: Metric::Accuracy,
    },
    SuperGlueTask {
        name: "multirc",
        dir: "MultiRC",
        labels: &["0", "1"],
        metric: Metric::F1AndAccuracy,
    },
];

/// BoolQ's full train split is not redistributed everywhere; the FewGLUE 32-example one may stand in.
fn train_file(name: &str, data_dir: &Path, dir: &str) -> Result<PathBuf> {
    let full = data_dir.join("superglue").join(dir).join("train.jsonl");
    let fewglue = data_dir
        .join("superglue")
        .join(dir)
        .join("train.fewglue32.jsonl");
    if !full.is_file() && fewglue.is_file() {
        eprintln!(
            "{name}: {} is missing, training on the 32 examples of {}",
            full.display(),
            fewglue.display()
        );
        return Ok(fewglue);
    }
    require_file(data_dir, &format!("superglue/{dir}/train.jsonl"), name)
}

pub fn load(task: &SuperGlueTask, source: &Source) -> Result<TextTask> {
    let splits = source.read(
        |dir| {
            let train = train_file(task.name, dir, task.dir)?;
            let dev = require_file(dir, &format!("superglue/{}/val.jsonl", task.dir), task.name)?;
            Ok((train, dev))
        },
        |path| read_split(task, path),
        |row, id, at| parquet_examples(task, row, id, at),
    )?;
    let multiple_choice = task.name == "copa";
    Ok(TextTask::new(
        task.name,
        task.labels,
        multiple_choice,
        task.metric,
        splits,
    ))
}

/// A row of the Hugging Face export: the JSONL's keys, but WSC's span fields flat and MultiRC
/// one row per answer (`paragraph`, `question`, `answer`).
fn parquet_examples(
    task: &SuperGlueTask,
    row: serde_json::Map<String, Value>,
    id: &str,
    at: &str,
) -> Result<Vec<TextExample>> {
    if task.name == "multirc" {
        let string = |key: &str| string_column(&row, key, at);
        let pair = format!("{} {}", string("question")?, string("answer")?);
        let raw = row
            .get("label")
            .and_then(Value::as_u64)
            .with_context(|| format!("{at}: label must be 0 or 1"))?;
        let label = Label::Class(raw.min(1) as usize);
        let example = TextExample::single(id.into(), string("paragraph")?, Some(pair), label);
        return Ok(vec![example]);
    }
    let mut object = Value::Object(row);
    if task.name == "wsc" && object.get("target").is_none() {
        let (span1, span2) = (object["span1_text"].clone(), object["span2_text"].clone());
        object["target"] = serde_json::json!({ "span1_text": span1, "span2_text": span2 });
    }
    row_examples(task, &object, id, at)
}

fn field<'a>(row: &'a Value, key: &str, at: &str) -> Result<&'a str> {
    row.get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("{at}: expected a string field \"{key}\""))
}

/// The list under `key`; `missing` says what is wrong where it is not one.
fn list<'a>(row: &'a Value, key: &str, missing: impl FnOnce() -> String) -> Result<&'a Vec<Value>> {
    row.get(key).and_then(Value::as_array).with_context(missing)
}

/// A label as the task's class index: bools, label strings or ints, by task.
fn label(row: &Value, labels: &[&str], at: &str) -> Result<Label> {
    let value = row
        .get("label")
        .with_context(|| format!("{at}: no \"label\" field"))?;
    let class = match value {
        Value::Bool(b) => Some(*b as usize),
        Value::String(s) => labels.iter().position(|l| l == s),
        Value::Number(n) => n.as_u64().map(|n| n as usize).filter(|&n| n < labels.len()),
        _ => None,
    };
    match class {
        Some(c) => Ok(Label::Class(c)),
        None => bail!("{at}: label {value} is not one of {}", labels.join(", ")),
    }
}

pub fn read_split(task: &SuperGlueTask, path: &Path) -> Result<Vec<TextExample>> {
    let text = crate::records::data::read_text(path)?;
    let file = crate::records::data::file_name(path);
    let mut examples = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let id = format!("{file}:{}", i + 1);
        let row: Value =
            serde_json::from_str(line).with_context(|| format!("{at}: not a JSON object"))?;
        examples.extend(row_examples(task, &row, &id, &at)?);
    }
    Ok(examples)
}

/// The examples of one SuperGLUE row (one JSONL line; several for MultiRC), in the reference
/// templates. `at` names the row in errors.
pub fn row_examples(
    task: &SuperGlueTask,
    row: &Value,
    id: &str,
    at: &str,
) -> Result<Vec<TextExample>> {
    let labels = task.labels;
    let mut examples = vec![];
    let id = id.to_string();
    let s = |key: &str| field(row, key, at).map(str::to_string);
    match task.name {
        "boolq" => examples.push(TextExample::single(
            id,
            s("question")?,
            Some(s("passage")?),
            label(row, labels, at)?,
        )),
        "cb" | "superglue-rte" => examples.push(TextExample::single(
            id,
            s("premise")?,
            Some(s("hypothesis")?),
            label(row, labels, at)?,
        )),
        "wic" => {
            let word = s("word")?;
            let a = format!("{word}: {}", s("sentence1")?);
            let b = format!("{word}: {}", s("sentence2")?);
            examples.push(TextExample::single(id, a, Some(b), label(row, labels, at)?));
        }
        "wic_question" => {
            let (a, b, word) = (s("sentence1")?, s("sentence2")?, s("word")?);
            let text = format!("{a} {b} Does {word} have the same meaning in both sentences?");
            examples.push(TextExample::single(id, text, None, label(row, labels, at)?));
        }
        "wsc" => examples.push(wsc_example(row, id, at, labels)?),
        "copa" => examples.push(copa_example(row, id, at, labels)?),
        "multirc" => examples.extend(multirc_examples(row, &id, at, labels)?),
        other => unreachable!("not a SuperGLUE task: {other}"),
    }
    Ok(examples)
}

/// WSC: the pronoun's sentence (marked by the pronoun) against the candidate noun phrase.
fn wsc_example(row: &Value, id: String, at: &str, labels: &[&str]) -> Result<TextExample> {
    let target = row
        .get("target")
        .with_context(|| format!("{at}: no \"target\" object"))?;
    let span1 = field(target, "span1_text", at)?.to_string();
    let span2 = field(target, "span2_text", at)?;
    let a = format!("{span2}: {}", field(row, "text", at)?);
    Ok(TextExample::single(
        id,
        a,
        Some(span1),
        label(row, labels, at)?,
    ))
}

/// COPA: the premise with its connective against each of the two choices (multiple choice).
fn copa_example(row: &Value, id: String, at: &str, labels: &[&str]) -> Result<TextExample> {
    let connective = match field(row, "question", at)? {
        "cause" => " because",
        "effect" => " so",
        other => bail!("{at}: question \"{other}\" is not cause or effect"),
    };
    let premise = format!("{}{connective}", field(row, "premise", at)?);
    let inputs = vec![
        (
            premise.clone(),
            Some(field(row, "choice1", at)?.to_string()),
        ),
        (premise, Some(field(row, "choice2", at)?.to_string())),
    ];
    Ok(TextExample {
        id,
        inputs,
        label: label(row, labels, at)?,
    })
}

/// MultiRC: one example per answer option of every question of the passage.
fn multirc_examples(row: &Value, id: &str, at: &str, labels: &[&str]) -> Result<Vec<TextExample>> {
    let mut examples = vec![];
    let passage = row
        .get("passage")
        .with_context(|| format!("{at}: no \"passage\" object"))?;
    let paragraph = field(passage, "text", at)?;
    let questions = list(passage, "questions", || {
        format!("{at}: no passage.questions list")
    })?;
    for (q, question) in questions.iter().enumerate() {
        let q_text = field(question, "question", at)?;
        let answers = list(question, "answers", || {
            format!("{at}: question {q} has no answers list")
        })?;
        for (a, answer) in answers.iter().enumerate() {
            let pair = format!("{q_text} {}", field(answer, "text", at)?);
            examples.push(TextExample::single(
                format!("{id}:{q}:{a}"),
                paragraph.to_string(),
                Some(pair),
                label(answer, labels, at)?,
            ));
        }
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, lines: &str) -> Result<Vec<TextExample>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("val.jsonl");
        std::fs::write(&path, lines).unwrap();
        read_split(TASKS.iter().find(|t| t.name == name).unwrap(), &path)
    }

    #[test]
    fn copa_builds_two_choices_with_the_connective() {
        let rows = read("copa", r#"{"premise": "The man turned on the faucet.", "choice1": "The toilet filled.", "choice2": "Water flowed.", "question": "effect", "label": 1, "idx": 0}"#).unwrap();
        assert_eq!(rows[0].inputs[0].0, "The man turned on the faucet. so");
        assert_eq!(rows[0].inputs[1].1.as_deref(), Some("Water flowed."));
        assert_eq!(rows[0].label, Label::Class(1));
    }

    #[test]
    fn bool_and_string_labels() {
        let wic = read("wic", r#"{"word": "class", "sentence1": "A class.", "sentence2": "Real class.", "label": false}"#).unwrap();
        assert_eq!(
            wic[0].inputs[0],
            (
                "class: A class.".to_string(),
                Some("class: Real class.".to_string())
            )
        );
        assert_eq!(wic[0].label, Label::Class(0));
        let question = read("wic_question", r#"{"word": "class", "sentence1": "A class.", "sentence2": "Real class.", "label": true}"#).unwrap();
        assert_eq!(
            question[0].inputs[0],
            (
                "A class. Real class. Does class have the same meaning in both sentences?"
                    .to_string(),
                None
            )
        );
        assert_eq!(question[0].label, Label::Class(1));
        let cb = read(
            "cb",
            r#"{"premise": "p", "hypothesis": "h", "label": "neutral", "idx": 0}"#,
        )
        .unwrap();
        assert_eq!(cb[0].label, Label::Class(2));
    }

    #[test]
    fn multirc_expands_answers() {
        let rows = read("multirc", r#"{"idx": 0, "passage": {"text": "P.", "questions": [{"question": "Q?", "answers": [{"text": "No", "label": 0}, {"text": "Yes", "label": 1}]}]}}"#).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1].inputs[0],
            ("P.".to_string(), Some("Q? Yes".to_string()))
        );
        assert_eq!(rows[1].label, Label::Class(1));
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let err = read(
            "cb",
            "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": \"neutral\"}\n{not json\n",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("val.jsonl:2"), "{err:#}");
        let err = read(
            "cb",
            r#"{"premise": "p", "hypothesis": "h", "label": "maybe"}"#,
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("val.jsonl:1") && format!("{err:#}").contains("maybe"),
            "{err:#}"
        );
    }
}
