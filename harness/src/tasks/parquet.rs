//! Hugging Face `datasets` Parquet exports of the same benchmarks, read through polars, so a user
//! with parquet files needs no conversion: `--task parquet:TASK:TRAIN.parquet,DEV.parquet`.
//!
//! Each row becomes the JSON object the native readers see (HF's column names are SuperGLUE's
//! JSONL keys), so the templates and label rules are the ones of the native formats. HF layouts:
//! GLUE `sentence`/`sentence1`,`sentence2`/… + `label` (class index; STS-B a float); SuperGLUE as
//! its JSONL, with WSC's span fields flat and MultiRC one row per answer (`paragraph`, `question`,
//! `answer`); NER `tokens` + `ner_tags` (indices into the dataset's tag names); QA `id`, `context`,
//! `question`, `answers {text[], answer_start[]}`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use polars::prelude::AnyValue;
use serde_json::{json, Map, Value};

use super::ner::{Sentence, TaggingTask};
use super::qa::{QaExample, QaTask};
use super::text::{Label, TextExample};
use super::{glue, superglue, train_dev_paths, Task};

/// HF `conll2003` ner_tags names.
const CONLL2003_TAGS: &[&str] = &[
    "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
];
/// HF `wnut_17` ner_tags names.
const WNUT17_TAGS: &[&str] = &[
    "O",
    "B-corporation",
    "I-corporation",
    "B-creative-work",
    "I-creative-work",
    "B-group",
    "I-group",
    "B-location",
    "I-location",
    "B-person",
    "I-person",
    "B-product",
    "I-product",
];

/// HF column names of the GLUE configs: (text, pair).
fn glue_columns(task: &str) -> (&'static str, Option<&'static str>) {
    match task {
        "sst2" | "cola" => ("sentence", None),
        "qnli" => ("question", Some("sentence")),
        "qqp" => ("question1", Some("question2")),
        "mnli" => ("premise", Some("hypothesis")),
        _ => ("sentence1", Some("sentence2")),
    }
}

fn to_json(value: AnyValue) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => json!(b),
        AnyValue::String(s) => json!(s),
        AnyValue::StringOwned(s) => json!(s.as_str()),
        AnyValue::Int8(v) => json!(v),
        AnyValue::Int16(v) => json!(v),
        AnyValue::Int32(v) => json!(v),
        AnyValue::Int64(v) => json!(v),
        AnyValue::UInt8(v) => json!(v),
        AnyValue::UInt16(v) => json!(v),
        AnyValue::UInt32(v) => json!(v),
        AnyValue::UInt64(v) => json!(v),
        AnyValue::Float32(v) => json!(v),
        AnyValue::Float64(v) => json!(v),
        AnyValue::List(series) => Value::Array(series.iter().map(to_json).collect()),
        AnyValue::Struct(..) => to_json(value.into_static()),
        AnyValue::StructOwned(payload) => {
            let (values, fields) = *payload;
            Value::Object(
                fields
                    .iter()
                    .map(|f| f.name().to_string())
                    .zip(values.into_iter().map(to_json))
                    .collect(),
            )
        }
        other => json!(other.to_string()),
    }
}

/// A row's string column, or an error naming the row and the column.
fn string_column(row: &Map<String, Value>, key: &str, at: &str) -> Result<String> {
    row.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("{at}: expected a string column \"{key}\""))
}

/// Every row of a Parquet file as a JSON object keyed by column name.
pub fn rows(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let df = crate::table::read_parquet(path)?;
    let columns = df.columns();
    let mut rows = vec![Map::new(); df.height()];
    for column in columns {
        let name = column.name().to_string();
        let series = column.as_materialized_series();
        for (i, value) in series.iter().enumerate() {
            rows[i].insert(name.clone(), to_json(value));
        }
    }
    Ok(rows)
}

pub fn text_examples(task: &str, path: &Path) -> Result<Vec<TextExample>> {
    let file = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let mut examples = vec![];
    for (i, row) in rows(path)?.into_iter().enumerate() {
        let at = format!("{} row {i}", path.display());
        let id = format!("{file}:{i}");
        let string = |key: &str| string_column(&row, key, &at);
        if let Some(spec) = glue::TASKS.iter().find(|t| t.name == task) {
            let (text, pair) = glue_columns(task);
            let raw = row
                .get("label")
                .with_context(|| format!("{at}: no \"label\" column"))?;
            let label = if spec.labels.is_empty() {
                Label::Value(
                    raw.as_f64()
                        .with_context(|| format!("{at}: label {raw} is not a number"))?
                        as f32,
                )
            } else {
                match raw.as_u64().filter(|&c| (c as usize) < spec.labels.len()) {
                    Some(c) => Label::Class(c as usize),
                    None => bail!(
                        "{at}: label {raw} is not a class index below {}",
                        spec.labels.len()
                    ),
                }
            };
            examples.push(TextExample::single(
                id,
                string(text)?,
                pair.map(string).transpose()?,
                label,
            ));
        } else if task == "multirc" {
            let pair = format!("{} {}", string("question")?, string("answer")?);
            let raw = row
                .get("label")
                .and_then(Value::as_u64)
                .with_context(|| format!("{at}: label must be 0 or 1"))?;
            examples.push(TextExample::single(
                id,
                string("paragraph")?,
                Some(pair),
                Label::Class(raw.min(1) as usize),
            ));
        } else {
            let mut object = Value::Object(row);
            if task == "wsc" && object.get("target").is_none() {
                let target = json!({ "span1_text": object["span1_text"].clone(), "span2_text": object["span2_text"].clone() });
                object["target"] = target;
            }
            examples.extend(superglue::row_examples(
                task,
                &object,
                &id,
                &at,
                superglue::labels_of(task),
            )?);
        }
    }
    Ok(examples)
}

pub fn sentences(task: &str, path: &Path) -> Result<Vec<Sentence>> {
    let names = if task == "wnut17" {
        WNUT17_TAGS
    } else {
        CONLL2003_TAGS
    };
    let file = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    rows(path)?
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("{} row {i}", path.display());
            let list = |key: &str| {
                row.get(key)
                    .and_then(Value::as_array)
                    .cloned()
                    .with_context(|| format!("{at}: expected a list column \"{key}\""))
            };
            let words: Vec<String> = list("tokens")?
                .iter()
                .map(|w| w.as_str().unwrap_or_default().to_string())
                .collect();
            let tags = list("ner_tags")?
                .iter()
                .map(|t| {
                    t.as_u64()
                        .and_then(|t| names.get(t as usize))
                        .map(|t| t.to_string())
                        .with_context(|| {
                            format!("{at}: ner tag {t} is not an index into {names:?}")
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            if words.len() != tags.len() {
                bail!("{at}: {} tokens but {} ner_tags", words.len(), tags.len());
            }
            let mut tags = tags;
            super::ner::to_iob2(&mut tags);
            Ok(Sentence {
                id: format!("{file}:{i}"),
                words,
                tags,
            })
        })
        .collect()
}

pub fn qa_examples(path: &Path) -> Result<Vec<QaExample>> {
    rows(path)?
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("{} row {i}", path.display());
            let string = |key: &str| string_column(&row, key, &at);
            let answers = row
                .get("answers")
                .with_context(|| format!("{at}: no \"answers\" column"))?;
            let texts = answers
                .get("text")
                .and_then(Value::as_array)
                .with_context(|| format!("{at}: answers.text must be a list"))?;
            let starts = answers
                .get("answer_start")
                .and_then(Value::as_array)
                .with_context(|| format!("{at}: answers.answer_start must be a list"))?;
            let answers = texts
                .iter()
                .zip(starts)
                .map(|(t, s)| {
                    Ok((
                        t.as_str().unwrap_or_default().to_string(),
                        s.as_u64()
                            .with_context(|| format!("{at}: answer_start {s} is not a number"))?
                            as usize,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(QaExample {
                id: string("id")?,
                question: string("question")?,
                context: string("context")?,
                answers,
            })
        })
        .collect()
}

/// `parquet:TASK:TRAIN,DEV`.
pub fn load(name: &str, spec: &str) -> Result<Box<dyn Task>> {
    let Some((task, files)) = spec.split_once(':') else {
        bail!("task \"{name}\": expected parquet:TASK:TRAIN_FILE,DEV_FILE");
    };
    let (train, dev) = train_dev_paths(name, files)?;
    if let Some(spec) = glue::TASKS.iter().find(|t| t.name == task) {
        return Ok(Box::new(glue::build(
            spec,
            text_examples(task, &train)?,
            text_examples(task, &dev)?,
        )));
    }
    if superglue::TASKS.contains(&task) {
        return Ok(Box::new(superglue::build(
            task,
            text_examples(task, &train)?,
            text_examples(task, &dev)?,
        )));
    }
    if task == "conll2003" || task == "wnut17" {
        return Ok(Box::new(TaggingTask::new(
            task,
            sentences(task, &train)?,
            sentences(task, &dev)?,
        )));
    }
    if task == "squad" || task == "squad_v2" {
        return Ok(Box::new(QaTask::new(
            task,
            task == "squad_v2",
            qa_examples(&train)?,
            qa_examples(&dev)?,
        )));
    }
    bail!("task \"{name}\": parquet input is read for GLUE, SuperGLUE, conll2003, wnut17, squad and squad_v2, not \"{task}\"")
}
