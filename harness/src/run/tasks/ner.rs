//! Sequence labelling in CoNLL columns (CoNLL-2003, WNUT-17, or any file by path): one token a
//! line, the word in the first column and the tag in the last, space or tab separated, blank lines
//! between sentences, `-DOCSTART-` lines skipped. IOB1 tags are converted to IOB2 on reading (a
//! no-op for IOB2). Labels sit on the first sub-token of each word; the others are ignored.
//! Scored by seqeval's entity micro-F1 (default mode).

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use ptv2_models::methods::loss::IGNORE_INDEX;
use ptv2_models::{HeadKind, Logits, Targets, TextEncoder, TokenBatch};

use super::batching::predict_in_chunks;
use super::task::{argmax_ids, Batch, DevResult, InputName, Json, Predictor, Source, Task};
use crate::records::data::require_file;
use crate::records::metrics::seqeval;

/// A NER task, declared: its files under the data dir (none for `conll`, which reads any CoNLL
/// files by path), its labelled test file, and the tag names its Hugging Face export's
/// `ner_tags` index.
#[derive(Debug, Clone, Copy)]
pub struct NerTask {
    pub name: &'static str,
    pub files: Option<(&'static str, &'static str)>,
    pub test: Option<&'static str>,
    pub hf_tags: &'static [&'static str],
}

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

pub const TASKS: &[NerTask] = &[
    NerTask {
        name: "conll2003",
        files: Some(("ner/conll2003/train.txt", "ner/conll2003/valid.txt")),
        test: Some("ner/conll2003/test.txt"),
        hf_tags: CONLL2003_TAGS,
    },
    NerTask {
        name: "wnut17",
        files: Some((
            "ner/wnut17/wnut17train.conll",
            "ner/wnut17/emerging.dev.conll",
        )),
        test: Some("ner/wnut17/emerging.test.annotated"),
        hf_tags: WNUT17_TAGS,
    },
    NerTask {
        name: "conll",
        files: None,
        test: None,
        hf_tags: CONLL2003_TAGS,
    },
];

#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// `file:line` of the first token.
    pub id: String,
    pub words: Vec<String>,
    pub tags: Vec<String>,
}

impl Sentence {
    /// Characters plus word breaks: a cheap stand-in for its token count.
    pub fn size(&self) -> usize {
        self.words.iter().map(|w| w.len() + 1).sum()
    }
}

#[derive(Debug, Clone)]
pub struct TaggingTask {
    pub name: String,
    /// Tag names, "O" first, then sorted.
    pub labels: Vec<String>,
    pub train: Vec<Sentence>,
    pub dev: Vec<Sentence>,
}

pub fn load(task: &NerTask, source: &Source) -> Result<TaggingTask> {
    let (train, dev) = source.read(
        |dir| match task.files {
            Some((train, dev)) => Ok((
                require_file(dir, train, task.name)?,
                require_file(dir, dev, task.name)?,
            )),
            None => bail!(
                "task {} has no files in the data dir: give {}:TRAIN_FILE,DEV_FILE",
                task.name,
                task.name
            ),
        },
        read_conll,
        |row, id, at| Ok(vec![parquet_sentence(task, &row, id, at)?]),
    )?;
    Ok(TaggingTask::new(task.name, train, dev))
}

/// A row of the Hugging Face export: `tokens` and `ner_tags` (indices into the tag names).
fn parquet_sentence(
    task: &NerTask,
    row: &serde_json::Map<String, serde_json::Value>,
    id: &str,
    at: &str,
) -> Result<Sentence> {
    let names = task.hf_tags;
    let list = |key: &str| {
        row.get(key)
            .and_then(serde_json::Value::as_array)
            .cloned()
            .with_context(|| format!("{at}: expected a list column \"{key}\""))
    };
    let words: Vec<String> = list("tokens")?
        .iter()
        .map(|w| w.as_str().unwrap_or_default().to_string())
        .collect();
    let mut tags = list("ner_tags")?
        .iter()
        .map(|t| {
            t.as_u64()
                .and_then(|t| names.get(t as usize))
                .map(|t| t.to_string())
                .with_context(|| format!("{at}: ner tag {t} is not an index into {names:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    if words.len() != tags.len() {
        bail!("{at}: {} tokens but {} ner_tags", words.len(), tags.len());
    }
    to_iob2(&mut tags);
    Ok(Sentence {
        id: id.to_string(),
        words,
        tags,
    })
}

fn valid_tag(tag: &str) -> bool {
    tag == "O" || ((tag.starts_with("B-") || tag.starts_with("I-")) && tag.len() > 2)
}

/// The entities of IOB2 tags over `words`, with their character span in the words joined by
/// single spaces: `{"type", "text", "start", "end"}` (end exclusive).
pub fn entities(words: &[String], tags: &[String]) -> Vec<serde_json::Value> {
    let mut found: Vec<(String, usize, usize)> = vec![];
    for (i, tag) in tags.iter().enumerate() {
        let continues = |kind: &str| {
            found
                .last()
                .is_some_and(|(k, _, end)| k == kind && *end == i)
        };
        match tag.split_once('-') {
            Some(("I", kind)) if continues(kind) => found.last_mut().expect("open").2 = i + 1,
            Some((_, kind)) => found.push((kind.to_string(), i, i + 1)),
            None => {}
        }
    }
    let starts: Vec<usize> = words
        .iter()
        .scan(0, |at, w| {
            let start = *at;
            *at += w.chars().count() + 1;
            Some(start)
        })
        .collect();
    found
        .into_iter()
        .map(|(kind, first, end)| {
            let text = words[first..end].join(" ");
            let start = starts[first];
            let end = start + text.chars().count();
            serde_json::json!({ "type": kind, "text": text, "start": start, "end": end })
        })
        .collect()
}

/// IOB1 → IOB2: an `I-X` that does not continue an `X` entity starts one (`B-X`).
pub fn to_iob2(tags: &mut [String]) {
    for i in 0..tags.len() {
        if let Some(kind) = tags[i].strip_prefix("I-") {
            let continues = i > 0 && tags[i - 1].len() > 2 && &tags[i - 1][2..] == kind;
            if !continues {
                tags[i] = format!("B-{kind}");
            }
        }
    }
}

pub fn read_conll(path: &Path) -> Result<Vec<Sentence>> {
    let text = crate::records::data::read_text(path)?;
    let file = crate::records::data::file_name(path);
    let mut sentences = vec![];
    let mut current = Sentence {
        id: String::new(),
        words: vec![],
        tags: vec![],
    };
    let mut flush = |current: &mut Sentence| {
        if !current.words.is_empty() {
            to_iob2(&mut current.tags);
            sentences.push(std::mem::replace(
                current,
                Sentence {
                    id: String::new(),
                    words: vec![],
                    tags: vec![],
                },
            ));
        }
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with("-DOCSTART-") {
            flush(&mut current);
            continue;
        }
        let fields: Vec<&str> = line.split([' ', '\t']).filter(|f| !f.is_empty()).collect();
        if fields.len() < 2 {
            bail!(
                "{}:{}: expected a word and a tag separated by spaces or tabs, found \"{line}\"",
                path.display(),
                i + 1
            );
        }
        let tag = fields[fields.len() - 1];
        if !valid_tag(tag) {
            bail!(
                "{}:{}: tag \"{tag}\" is not O, B-TYPE or I-TYPE",
                path.display(),
                i + 1
            );
        }
        if current.words.is_empty() {
            current.id = format!("{file}:{}", i + 1);
        }
        current.words.push(fields[0].to_string());
        current.tags.push(tag.to_string());
    }
    flush(&mut current);
    Ok(sentences)
}

impl TaggingTask {
    pub fn new(name: &str, train: Vec<Sentence>, dev: Vec<Sentence>) -> Self {
        let mut labels: Vec<String> = train
            .iter()
            .chain(&dev)
            .flat_map(|s| s.tags.iter().cloned())
            .filter(|t| t != "O")
            .collect();
        labels.sort();
        labels.dedup();
        labels.insert(0, "O".into());
        Self {
            name: name.into(),
            labels,
            train,
            dev,
        }
    }

    fn encode(&self, sentences: &[&Sentence], text: &TextEncoder) -> Result<TokenBatch> {
        let words: Vec<Vec<String>> = sentences.iter().map(|s| s.words.clone()).collect();
        Ok(text.encode_words_batch(&words)?)
    }

    /// Label index on the first sub-token of each word, `IGNORE_INDEX` elsewhere.
    fn token_labels(&self, sentence: &Sentence, word_ids: &[Option<u32>]) -> Vec<i64> {
        let mut previous = None;
        word_ids
            .iter()
            .map(|&w| {
                let first = w.is_some() && w != previous;
                previous = w;
                match w {
                    Some(w) if first => self
                        .labels
                        .iter()
                        .position(|l| *l == sentence.tags[w as usize])
                        .unwrap_or(0) as i64,
                    _ => IGNORE_INDEX,
                }
            })
            .collect()
    }

    /// Tags per word from token logits `[batch, seq, labels]`; words cut off by truncation get "O".
    fn decode(
        &self,
        sentences: &[&Sentence],
        tokens: &TokenBatch,
        logits: Logits,
    ) -> Vec<Vec<String>> {
        let Logits::Token(logits) = logits else {
            panic!("task {} needs token logits", self.name)
        };
        let [_, seq, _] = logits.dims();
        let best = argmax_ids(logits, 2);
        sentences
            .iter()
            .enumerate()
            .map(|(b, sentence)| {
                let mut tags = vec!["O".to_string(); sentence.words.len()];
                let mut previous = None;
                for (t, &w) in tokens.word_ids[b].iter().enumerate() {
                    if let Some(w) = w.filter(|_| w != previous) {
                        tags[w as usize] = self.labels[best[b * seq + t] as usize].clone();
                    }
                    previous = w;
                }
                tags
            })
            .collect()
    }

    pub fn score(&self, predicted: &[Vec<String>]) -> Vec<(String, f64)> {
        let gold: Vec<Vec<String>> = self.dev.iter().map(|s| s.tags.clone()).collect();
        let s = seqeval(&gold, predicted);
        vec![
            ("f1".into(), s.f1),
            ("precision".into(), s.precision),
            ("recall".into(), s.recall),
        ]
    }
}

impl Task for TaggingTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn head(&self) -> HeadKind {
        HeadKind::TokenClassification {
            num_labels: self.labels.len(),
        }
    }

    fn main_metric(&self) -> &'static str {
        "f1"
    }

    /// Every word tagged with the training split's most frequent tag ("O": entity F1 0).
    fn majority_scores(&self) -> Option<Vec<(String, f64)>> {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for tag in self.train.iter().flat_map(|s| &s.tags) {
            *counts.entry(tag.as_str()).or_default() += 1;
        }
        let (tag, _) = counts.into_iter().max_by_key(|(_, n)| *n)?;
        let predicted: Vec<Vec<String>> = self
            .dev
            .iter()
            .map(|s| vec![tag.to_string(); s.tags.len()])
            .collect();
        Some(self.score(&predicted))
    }

    super::task::example_splits!(Sentence::size);

    fn train_batch(&self, indices: &[usize], text: &TextEncoder, device: &Device) -> Result<Batch> {
        let sentences: Vec<&Sentence> = indices.iter().map(|&i| &self.train[i]).collect();
        let tokens = self.encode(&sentences, text)?;
        let labels = sentences
            .iter()
            .zip(&tokens.word_ids)
            .map(|(s, w)| self.token_labels(s, w))
            .collect();
        Ok(Batch {
            input: tokens.to_input(device),
            targets: Targets::Tokens(labels),
        })
    }

    fn predict(&self, with: &Predictor, inputs: &[Json], at: InputName) -> Result<Vec<Json>> {
        let sentences = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let words: Option<Vec<String>> = input.get("tokens").and_then(|t| {
                    t.as_array()?
                        .iter()
                        .map(|w| w.as_str().map(str::to_string))
                        .collect()
                });
                let Some(words) = words.filter(|w| !w.is_empty()) else {
                    bail!(
                        "{}: expected \"tokens\": a non-empty list of strings",
                        at(i)
                    );
                };
                let tags = vec!["O".to_string(); words.len()];
                Ok(Sentence {
                    id: at(i),
                    words,
                    tags,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tags = predict_in_chunks(&sentences, Sentence::size, 32, |chunk| {
            let tokens = self.encode(chunk, with.text)?;
            let logits = with.model.forward(&tokens.to_input(with.device))?;
            Ok(self.decode(chunk, &tokens, logits))
        })?;
        Ok(sentences
            .iter()
            .zip(tags)
            .map(|(s, tags)| {
                let entities = entities(&s.words, &tags);
                serde_json::json!({ "labels": tags, "entities": entities })
            })
            .collect())
    }

    fn evaluate(&self, with: &Predictor) -> Result<DevResult> {
        let (model, text, device) = (with.model, with.text, with.device);
        let predicted = predict_in_chunks(&self.dev, Sentence::size, 32, |sentences| {
            let tokens = self.encode(sentences, text)?;
            let logits = model.forward(&tokens.to_input(device))?;
            Ok(self.decode(sentences, &tokens, logits))
        })?;
        // CoNLL columns: word, gold, prediction; a blank line after each sentence.
        let mut columns = String::new();
        for (sentence, tags) in self.dev.iter().zip(&predicted) {
            for ((word, gold), pred) in sentence.words.iter().zip(&sentence.tags).zip(tags) {
                columns.push_str(&format!("{word} {gold} {pred}\n"));
            }
            columns.push('\n');
        }
        Ok(DevResult {
            scores: self.score(&predicted),
            predictions_file: "dev_predictions.conll",
            predictions: columns,
        })
    }

    fn score_file(&self, path: &Path) -> Result<Vec<(String, f64)>> {
        let predicted: Vec<Vec<String>> = read_conll(path)?.into_iter().map(|s| s.tags).collect();
        if predicted.len() != self.dev.len() {
            bail!(
                "{}: {} sentences, the dev split of {} has {}",
                path.display(),
                predicted.len(),
                self.name,
                self.dev.len()
            );
        }
        for (i, (p, g)) in predicted.iter().zip(&self.dev).enumerate() {
            if p.len() != g.tags.len() {
                bail!(
                    "{}: sentence {} has {} tokens, the dev split's ({}) has {}",
                    path.display(),
                    i + 1,
                    p.len(),
                    g.id,
                    g.tags.len()
                );
            }
        }
        Ok(self.score(&predicted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iob1_becomes_iob2() {
        let mut tags: Vec<String> = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        to_iob2(&mut tags);
        assert_eq!(tags, ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]);
    }

    #[test]
    fn reads_docstart_spaces_and_tabs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.conll");
        std::fs::write(
            &path,
            "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\n\nPeter\tB-PER\n",
        )
        .unwrap();
        let sentences = read_conll(&path).unwrap();
        assert_eq!(sentences.len(), 2);
        assert_eq!(sentences[0].tags, ["B-ORG", "O"]);
        assert_eq!(sentences[1].words, ["Peter"]);
        assert_eq!(sentences[0].id, "a.conll:3");
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.conll");
        std::fs::write(&path, "EU B-ORG\nlonely\n").unwrap();
        let err = read_conll(&path).unwrap_err().to_string();
        assert!(err.contains("bad.conll:2"), "{err}");
        std::fs::write(&path, "EU X-ORG\n").unwrap();
        let err = read_conll(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.conll:1") && err.contains("X-ORG"),
            "{err}"
        );
    }

    #[test]
    fn first_subtoken_gets_the_label() {
        let task = TaggingTask::new("t", vec![], vec![]);
        let mut task = task;
        task.labels = vec!["O".into(), "B-PER".into()];
        let sentence = Sentence {
            id: String::new(),
            words: vec!["Johanson".into(), "ran".into()],
            tags: vec!["B-PER".into(), "O".into()],
        };
        let labels = task.token_labels(&sentence, &[None, Some(0), Some(0), Some(1), None]);
        assert_eq!(labels, vec![IGNORE_INDEX, 1, IGNORE_INDEX, 0, IGNORE_INDEX]);
    }
}
