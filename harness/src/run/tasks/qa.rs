//! Extractive QA in SQuAD JSON (v1.1, and v2.0 with unanswerable questions), as the reference code
//! preprocesses it (notes §2, §8.12): (question, context) pairs cut into windows of `max_len`
//! tokens (384 in the paper) overlapping by a stride of 128, truncating the context only; char
//! offsets map token spans back to the text; n-best 20 starts × 20 ends, answers up to 30 tokens,
//! and for v2.0 the null answer wins unless a span beats it (threshold 0). Official EM/F1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::{Device, Int, Tensor, TensorData};
use ptv2_models::{EncoderInput, HeadKind, Logits, Targets, TextEncoder};
use serde_json::Value;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams, TruncationStrategy};

use super::batching::predict_in_chunks;
use super::parquet::string_column;
use super::task::{
    input_field, take_subset, Batch, DevResult, InputName, Json, Predictor, Source, Task,
};
use crate::records::metrics::squad;
use crate::records::settings::Subset;

const N_BEST: usize = 20;
const MAX_ANSWER_TOKENS: usize = 30;
const STRIDE: usize = 128;

#[derive(Debug, Clone, Copy)]
pub struct QaSpec {
    pub name: &'static str,
    /// Train files, the first that exists is used (a full split, else a subset that stands in).
    pub train: &'static [&'static str],
    pub dev: &'static str,
    pub version_2: bool,
}

pub const TASKS: &[QaSpec] = &[
    QaSpec {
        name: "squad",
        train: &[
            "squad/v1.1/train-v1.1.json",
            "squad/v1.1/train-v1.1.subset-44articles.json",
        ],
        dev: "squad/v1.1/dev-v1.1.json",
        version_2: false,
    },
    QaSpec {
        name: "squad_v2",
        train: &["squad/v2.0/train-v2.0.json"],
        dev: "squad/v2.0/dev-v2.0.json",
        version_2: true,
    },
    QaSpec {
        name: "xquad_en",
        train: &[
            "squad/v1.1/train-v1.1.json",
            "squad/v1.1/train-v1.1.subset-44articles.json",
        ],
        dev: "squad/xquad/xquad.en.json",
        version_2: false,
    },
];

#[derive(Debug, Clone, PartialEq)]
pub struct QaExample {
    pub id: String,
    pub question: String,
    pub context: String,
    /// Gold answers: text and start in chars; empty when unanswerable.
    pub answers: Vec<(String, usize)>,
}

/// One window of one example.
#[derive(Debug, Clone)]
struct Feature {
    example: usize,
    ids: Vec<u32>,
    type_ids: Vec<u32>,
    /// Char span in the context of each context token; None for question, special and padding tokens.
    offsets: Vec<Option<(usize, usize)>>,
    /// Answer start/end token, or (0, 0) — the [CLS] — when the answer is not in this window.
    start: i64,
    end: i64,
}

#[derive(Debug, Clone)]
pub struct QaTask {
    pub name: String,
    pub version_2: bool,
    pub train: Vec<QaExample>,
    pub dev: Vec<QaExample>,
    train_features: Vec<Feature>,
    dev_features: Vec<Feature>,
}

pub fn load(spec: &QaSpec, source: &Source) -> Result<QaTask> {
    let (train, dev) = source.read(
        |dir| declared_files(spec, dir),
        read_squad,
        |row, _, at| Ok(vec![parquet_example(&row, at)?]),
    )?;
    Ok(QaTask::new(spec.name, spec.version_2, train, dev))
}

/// The data-dir files: the first train file that exists (a full split, else a subset that stands
/// in) and the dev file.
fn declared_files(spec: &QaSpec, data_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let Some(train) = spec
        .train
        .iter()
        .map(|f| data_dir.join(f))
        .find(|p| p.is_file())
    else {
        bail!(
            "task {}: missing file {}",
            spec.name,
            data_dir.join(spec.train[0]).display()
        )
    };
    if train != data_dir.join(spec.train[0]) {
        eprintln!(
            "{}: {} is missing, training on {}",
            spec.name,
            data_dir.join(spec.train[0]).display(),
            train.display()
        );
    }
    Ok((
        train,
        crate::records::data::require_file(data_dir, spec.dev, spec.name)?,
    ))
}

/// A row of the Hugging Face export: `id`, `context`, `question`, `answers {text[], answer_start[]}`.
fn parquet_example(row: &serde_json::Map<String, Value>, at: &str) -> Result<QaExample> {
    let string = |key: &str| string_column(row, key, at);
    let answers = row
        .get("answers")
        .with_context(|| format!("{at}: no \"answers\" column"))?;
    let list = |key: &str| {
        answers
            .get(key)
            .and_then(Value::as_array)
            .with_context(|| format!("{at}: answers.{key} must be a list"))
    };
    let answers = list("text")?
        .iter()
        .zip(list("answer_start")?)
        .map(|(t, s)| {
            let start = s
                .as_u64()
                .with_context(|| format!("{at}: answer_start {s} is not a number"))?;
            Ok((t.as_str().unwrap_or_default().to_string(), start as usize))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(QaExample {
        id: string("id")?,
        question: string("question")?,
        context: string("context")?,
        answers,
    })
}

impl QaTask {
    pub fn new(name: &str, version_2: bool, train: Vec<QaExample>, dev: Vec<QaExample>) -> Self {
        Self {
            name: name.into(),
            version_2,
            train,
            dev,
            train_features: vec![],
            dev_features: vec![],
        }
    }
}

/// Read a SQuAD-format JSON file. Structural errors name the file and the JSON path.
pub fn read_squad(path: &Path) -> Result<Vec<QaExample>> {
    let text = crate::records::data::read_text(path)?;
    let root: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let at = |where_: &str| format!("{}: {where_}", path.display());
    let list = |v: &Value, key: &str, where_: &str| -> Result<Vec<Value>> {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .with_context(|| at(&format!("{where_}.{key} must be a list")))
    };
    let string = |v: &Value, key: &str, where_: &str| -> Result<String> {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| at(&format!("{where_}.{key} must be a string")))
    };
    let mut examples = vec![];
    for (a, article) in list(&root, "data", "")?.iter().enumerate() {
        for (p, paragraph) in list(article, "paragraphs", &format!("data[{a}]"))?
            .iter()
            .enumerate()
        {
            let where_p = format!("data[{a}].paragraphs[{p}]");
            let context = string(paragraph, "context", &where_p)?;
            for (q, qa) in list(paragraph, "qas", &where_p)?.iter().enumerate() {
                let where_q = format!("{where_p}.qas[{q}]");
                let impossible = qa
                    .get("is_impossible")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let mut answers = vec![];
                if !impossible {
                    for (i, answer) in list(qa, "answers", &where_q)?.iter().enumerate() {
                        let where_a = format!("{where_q}.answers[{i}]");
                        let start = answer
                            .get("answer_start")
                            .and_then(Value::as_u64)
                            .with_context(|| {
                                at(&format!("{where_a}.answer_start must be a number"))
                            })?;
                        answers.push((string(answer, "text", &where_a)?, start as usize));
                    }
                }
                examples.push(QaExample {
                    id: string(qa, "id", &where_q)?,
                    question: string(qa, "question", &where_q)?,
                    context: context.clone(),
                    answers,
                });
            }
        }
    }
    Ok(examples)
}

/// The tokenizer configured for windows: truncate the context only, keep overflowing windows.
fn window_tokenizer(text: &TextEncoder, max_len: usize) -> Result<Tokenizer> {
    let mut tokenizer = text.inner().clone();
    tokenizer.with_padding(None::<PaddingParams>);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_len,
            stride: STRIDE.min(max_len / 2),
            strategy: TruncationStrategy::OnlySecond,
            ..Default::default()
        }))
        .map_err(|e| anyhow::anyhow!("configuring QA windows: {e}"))?;
    Ok(tokenizer)
}

fn features(examples: &[QaExample], tokenizer: &Tokenizer) -> Result<Vec<Feature>> {
    let mut features = vec![];
    for (index, example) in examples.iter().enumerate() {
        let encoding = tokenizer
            .encode_char_offsets(
                (example.question.trim_start(), example.context.as_str()),
                true,
            )
            .map_err(|e| anyhow::anyhow!("tokenizing question {}: {e}", example.id))?;
        let mut windows = vec![encoding.clone()];
        windows.extend(encoding.get_overflowing().iter().cloned());
        for window in windows {
            let offsets: Vec<Option<(usize, usize)>> = (0..window.len())
                .map(|t| (window.token_to_sequence(t) == Some(1)).then(|| window.get_offsets()[t]))
                .collect();
            let (start, end) = answer_tokens(example, &offsets);
            features.push(Feature {
                example: index,
                ids: window.get_ids().to_vec(),
                type_ids: window.get_type_ids().to_vec(),
                offsets,
                start,
                end,
            });
        }
    }
    Ok(features)
}

/// The first answer's token span in this window, or (0, 0) when it is not wholly inside.
fn answer_tokens(example: &QaExample, offsets: &[Option<(usize, usize)>]) -> (i64, i64) {
    let Some((text, start_char)) = example.answers.first() else {
        return (0, 0);
    };
    let end_char = start_char + text.chars().count();
    let context: Vec<(usize, (usize, usize))> = offsets
        .iter()
        .enumerate()
        .filter_map(|(t, o)| o.map(|o| (t, o)))
        .collect();
    let (Some(first), Some(last)) = (context.first(), context.last()) else {
        return (0, 0);
    };
    if first.1 .0 > *start_char || last.1 .1 < end_char {
        return (0, 0);
    }
    let start = context
        .iter()
        .rev()
        .find(|(_, o)| o.0 <= *start_char)
        .map(|(t, _)| *t);
    let end = context
        .iter()
        .find(|(_, o)| o.1 >= end_char)
        .map(|(t, _)| *t);
    match (start, end) {
        (Some(s), Some(e)) if s <= e => (s as i64, e as i64),
        _ => (0, 0),
    }
}

fn to_input(features: &[&Feature], pad_id: u32, device: &Device) -> EncoderInput {
    let seq = features.iter().map(|f| f.ids.len()).max().unwrap_or(0);
    let rows = features.len();
    let pad = |row: &[u32], value: i64| -> Vec<i64> {
        let mut out: Vec<i64> = row.iter().map(|&x| x as i64).collect();
        out.resize(seq, value);
        out
    };
    let tensor =
        |data: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(data, [rows, seq]), device);
    EncoderInput {
        input_ids: tensor(
            features
                .iter()
                .flat_map(|f| pad(&f.ids, pad_id as i64))
                .collect(),
        ),
        attention_mask: tensor(
            features
                .iter()
                .flat_map(|f| pad(&vec![1; f.ids.len()], 0))
                .collect(),
        ),
        token_type_ids: tensor(features.iter().flat_map(|f| pad(&f.type_ids, 0)).collect()),
    }
}

/// Indices of the `k` largest values, largest first.
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order.truncate(k);
    order
}

/// Slice a string by char offsets.
fn char_slice(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

/// An example's answer: its text and char span in the context (empty for "no answer") and the
/// span's score (start + end logit).
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    text: String,
    start: usize,
    end: usize,
    score: f32,
}

/// Best answer per example from each window's start/end logits: n-best starts × ends, spans of
/// at most `MAX_ANSWER_TOKENS` inside the context; for v2.0 no answer unless a span beats the
/// null score.
fn best_answers(
    examples: &[QaExample],
    features: &[Feature],
    logits: &[(Vec<f32>, Vec<f32>)],
    version_2: bool,
) -> Vec<Answer> {
    let mut best: Vec<Option<Answer>> = vec![None; examples.len()];
    let mut null: Vec<f32> = vec![f32::INFINITY; examples.len()];
    for (feature, (start, end)) in features.iter().zip(logits) {
        let e = feature.example;
        null[e] = null[e].min(start[0] + end[0]);
        for &s in &top_k(start, N_BEST) {
            for &t in &top_k(end, N_BEST) {
                let (Some(Some(so)), Some(Some(eo))) =
                    (feature.offsets.get(s), feature.offsets.get(t))
                else {
                    continue;
                };
                if t < s || t - s + 1 > MAX_ANSWER_TOKENS {
                    continue;
                }
                let score = start[s] + end[t];
                if best[e].as_ref().is_none_or(|b| score > b.score) {
                    let text = char_slice(&examples[e].context, so.0, eo.1);
                    best[e] = Some(Answer {
                        text,
                        start: so.0,
                        end: eo.1,
                        score,
                    });
                }
            }
        }
    }
    best.into_iter()
        .zip(null)
        .map(|(span, null)| match span {
            Some(answer) if !version_2 || answer.score > null => answer,
            _ => Answer {
                text: String::new(),
                start: 0,
                end: 0,
                score: null,
            },
        })
        .collect()
}

/// Start and end logits of each window, in window order.
fn window_logits(
    features: &[Feature],
    with: &Predictor,
    task: &str,
) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
    let size = |f: &Feature| f.ids.len();
    predict_in_chunks(features, size, 16, |features| {
        let input = to_input(features, with.text.pad_id(), with.device);
        let Logits::Span { start, end } = with.model.forward(&input)? else {
            bail!("task {task} needs span logits");
        };
        let [rows, seq] = start.dims();
        let as_vec = |t: Tensor<2>| {
            t.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        let (start, end) = (as_vec(start), as_vec(end));
        Ok((0..rows)
            .map(|r| {
                let span = r * seq..r * seq + features[r].ids.len();
                (start[span.clone()].to_vec(), end[span].to_vec())
            })
            .collect())
    })
}

impl QaTask {
    pub fn score(&self, answers: &[String]) -> Vec<(String, f64)> {
        let gold: Vec<Vec<String>> = self
            .dev
            .iter()
            .map(|e| e.answers.iter().map(|a| a.0.clone()).collect())
            .collect();
        let (exact, f1) = squad(answers, &gold);
        vec![("f1".into(), f1), ("exact_match".into(), exact)]
    }
}

impl Task for QaTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn head(&self) -> HeadKind {
        HeadKind::Span
    }

    fn main_metric(&self) -> &'static str {
        "f1"
    }

    fn subset(&mut self, max_train: Option<usize>, max_eval: Option<usize>, draw: Subset) {
        take_subset(&mut self.train, &mut self.dev, max_train, max_eval, draw);
    }

    fn prepare(&mut self, text: &TextEncoder) -> Result<()> {
        let tokenizer = window_tokenizer(text, text.max_len())?;
        self.train_features = features(&self.train, &tokenizer)?;
        self.dev_features = features(&self.dev, &tokenizer)?;
        Ok(())
    }

    fn train_len(&self) -> usize {
        self.train_features.len()
    }

    fn planned_train_len(&self) -> usize {
        self.train.len()
    }

    fn dev_len(&self) -> usize {
        self.dev.len()
    }

    fn train_sizes(&self) -> Vec<usize> {
        self.train_features.iter().map(|f| f.ids.len()).collect()
    }

    fn train_batch(&self, indices: &[usize], text: &TextEncoder, device: &Device) -> Result<Batch> {
        let features: Vec<&Feature> = indices.iter().map(|&i| &self.train_features[i]).collect();
        Ok(Batch {
            input: to_input(&features, text.pad_id(), device),
            targets: Targets::Spans(features.iter().map(|f| (f.start, f.end)).collect()),
        })
    }

    fn predict(&self, with: &Predictor, inputs: &[Json], at: InputName) -> Result<Vec<Json>> {
        let examples = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                Ok(QaExample {
                    id: at(i),
                    question: input_field(input, "question", &at(i))?.to_string(),
                    context: input_field(input, "context", &at(i))?.to_string(),
                    answers: vec![],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tokenizer = window_tokenizer(with.text, with.text.max_len())?;
        let features = features(&examples, &tokenizer)?;
        let logits = window_logits(&features, with, &self.name)?;
        Ok(best_answers(&examples, &features, &logits, self.version_2)
            .into_iter()
            .map(|a| {
                serde_json::json!({"answer": a.text, "start": a.start, "end": a.end, "score": a.score})
            })
            .collect())
    }

    fn evaluate(&self, with: &Predictor) -> Result<DevResult> {
        let logits = window_logits(&self.dev_features, with, &self.name)?;
        let answers: Vec<String> =
            best_answers(&self.dev, &self.dev_features, &logits, self.version_2)
                .into_iter()
                .map(|a| a.text)
                .collect();
        let by_id: BTreeMap<&str, &str> = self
            .dev
            .iter()
            .zip(&answers)
            .map(|(e, a)| (e.id.as_str(), a.as_str()))
            .collect();
        Ok(DevResult {
            scores: self.score(&answers),
            predictions_file: "dev_predictions.json",
            predictions: serde_json::to_string_pretty(&by_id)?,
        })
    }

    /// SQuAD's `{id: answer}` JSON; a question without a prediction scores 0 (as the official script).
    fn score_file(&self, path: &Path) -> Result<Vec<(String, f64)>> {
        let text = crate::records::data::read_text(path)?;
        let map: BTreeMap<String, String> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: expected a JSON object of question id → answer string",
                path.display()
            )
        })?;
        let answers: Vec<String> = self
            .dev
            .iter()
            .map(|e| map.get(&e.id).cloned().unwrap_or_default())
            .collect();
        Ok(self.score(&answers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(answer: &str, start: usize) -> QaExample {
        QaExample {
            id: "q".into(),
            question: "Who?".into(),
            context: "The Denver Broncos won.".into(),
            answers: vec![(answer.into(), start)],
        }
    }

    #[test]
    fn answer_maps_to_tokens_inside_the_window_only() {
        // tokens: [CLS] who ? [SEP] the denver broncos won . [SEP]
        let offsets = vec![
            None,
            None,
            None,
            None,
            Some((0, 3)),
            Some((4, 10)),
            Some((11, 18)),
            Some((19, 22)),
            Some((22, 23)),
            None,
        ];
        assert_eq!(
            answer_tokens(&example("Denver Broncos", 4), &offsets),
            (5, 6)
        );
        // A window that ends before the answer does gives the [CLS].
        assert_eq!(
            answer_tokens(&example("Denver Broncos", 4), &offsets[..6]),
            (0, 0)
        );
        assert_eq!(
            answer_tokens(
                &QaExample {
                    answers: vec![],
                    ..example("", 0)
                },
                &offsets
            ),
            (0, 0)
        );
    }

    #[test]
    fn malformed_squad_names_the_json_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.json");
        std::fs::write(&path, r#"{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": [{"text": "c"}]}]}]}]}"#).unwrap();
        let err = read_squad(&path).unwrap_err().to_string();
        assert!(
            err.contains("dev.json")
                && err.contains("data[0].paragraphs[0].qas[0].answers[0].answer_start"),
            "{err}"
        );
        std::fs::write(&path, "{\n\"data\": [,]}").unwrap();
        let err = format!("{:#}", read_squad(&path).unwrap_err());
        assert!(err.contains("dev.json") && err.contains("line 2"), "{err}");
    }
}
