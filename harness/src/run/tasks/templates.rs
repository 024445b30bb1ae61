//! Templates and label words as data (`experiments/templates.toml`, compiled in): what discrete
//! prompting and the verbalizer head wrap a text task's inputs in, and which token stands for
//! each class. A template resolved for a task and a tokenizer is a `Verbalizer`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use ptv2_models::{Piece, TextEncoder};

const FILE: &str = "experiments/templates.toml";
const TEMPLATES: &str = include_str!("../../../../experiments/templates.toml");

/// One `[TASK.NAME]` table of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    template: String,
    /// Label name → label word.
    words: BTreeMap<String, String>,
    source: String,
}

/// Every task's templates by name.
fn entries() -> Result<BTreeMap<String, BTreeMap<String, Entry>>> {
    toml::from_str(TEMPLATES)
        .with_context(|| format!("{FILE}: not a table of [TASK.NAME] templates"))
}

/// A part of a template: words of its own, the example's texts, or the mask. `space`: a space
/// came before it in the template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Words(String),
    Text { space: bool },
    Pair { space: bool },
    Mask,
}

/// A template made ready for one task and tokenizer.
#[derive(Debug, Clone)]
pub struct Verbalizer {
    /// `TASK.NAME` in the file.
    pub name: String,
    /// Where the template and words come from.
    pub source: String,
    parts: Vec<Part>,
    /// Each class's label word as a token id, in the task's label order.
    pub label_ids: Vec<i64>,
    pub mask_id: u32,
}

/// A template string's parts; placeholders `{text}`, `{pair}`, `{mask}`.
fn parse(template: &str, at: &str) -> Result<Vec<Part>> {
    let mut parts = vec![];
    let mut rest = template;
    let mut space = false;
    while !rest.is_empty() {
        let (words, tail) = rest.split_at(rest.find('{').unwrap_or(rest.len()));
        let trimmed = words.trim_end();
        if !trimmed.trim_start().is_empty() {
            let lead = if space && !trimmed.starts_with(' ') {
                " "
            } else {
                ""
            };
            parts.push(Part::Words(format!("{lead}{trimmed}")));
        }
        space = words.ends_with(' ') || (trimmed.is_empty() && space);
        if tail.is_empty() {
            break;
        }
        let end = tail
            .find('}')
            .with_context(|| format!("{at}: a \"{{\" without \"}}\""))?;
        parts.push(match &tail[..=end] {
            "{text}" => Part::Text { space },
            "{pair}" => Part::Pair { space },
            "{mask}" => Part::Mask,
            other => {
                bail!("{at}: unknown placeholder {other} (expected {{text}}, {{pair}} or {{mask}})")
            }
        });
        space = false;
        rest = &tail[end + 1..];
    }
    let masks = parts.iter().filter(|p| **p == Part::Mask).count();
    if masks != 1 || !parts.iter().any(|p| matches!(p, Part::Text { .. })) {
        bail!("{at}: a template needs {{text}} and exactly one {{mask}}, found {masks} masks in \"{template}\"");
    }
    Ok(parts)
}

impl Verbalizer {
    /// Template `name` (the task's only one when None) of `task`, whose classes are `labels`,
    /// for the tokenizer `text`: every label word must be one token.
    pub fn resolve(
        task: &str,
        name: Option<&str>,
        labels: &[String],
        text: &TextEncoder,
    ) -> Result<Self> {
        let mut all = entries()?;
        let Some(mut templates) = all.remove(task) else {
            bail!(
                "no template for task {task} in {FILE} (it has templates for {}): discrete prompting and the verbalizer head need one",
                all.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        let known = templates.keys().cloned().collect::<Vec<_>>().join(", ");
        let name = match name {
            Some(name) => name.to_string(),
            None if templates.len() == 1 => known.clone(),
            None => bail!(
                "task {task} has several templates in {FILE} ({known}): choose one with `template`"
            ),
        };
        let entry = templates.remove(&name).with_context(|| {
            format!("no template \"{name}\" for task {task} in {FILE} (it has {known})")
        })?;
        let at = format!("{FILE} [{task}.{name}]");
        let parts = parse(&entry.template, &at)?;
        let mask_id = text.mask_id().with_context(|| {
            format!("{at}: the model's tokenizer has no mask token ([MASK] or <mask>)")
        })?;
        let mask_space = parts
            .iter()
            .position(|p| *p == Part::Mask)
            .is_some_and(|i| i > 0);
        let label_ids = label_ids(&entry.words, labels, mask_space, text, &at)?;
        Ok(Self {
            name: format!("{task}.{name}"),
            source: entry.source,
            parts,
            label_ids,
            mask_id,
        })
    }

    /// An example's texts in the template, as pieces for `TextEncoder::encode_pieces`.
    pub fn wrap(&self, text: &str, pair: Option<&str>) -> Result<Vec<Piece>> {
        let spaced = |space: bool, s: &str| {
            if space {
                format!(" {s}")
            } else {
                s.to_string()
            }
        };
        self.parts
            .iter()
            .map(|part| {
                Ok(match part {
                    Part::Words(words) => Piece::Text {
                        text: words.clone(),
                        cut: false,
                    },
                    Part::Text { space } => Piece::Text {
                        text: spaced(*space, text),
                        cut: true,
                    },
                    Part::Pair { space } => Piece::Text {
                        text: spaced(*space, pair.with_context(|| format!("template {} needs a second text ({{pair}}), the example has one text", self.name))?),
                        cut: true,
                    },
                    Part::Mask => Piece::Token(self.mask_id),
                })
            })
            .collect()
    }
}

/// Each label's word as one token id, in label order: a word read after a space where the
/// template has one before the mask. Several tokens, a missing or an unknown label: errors.
fn label_ids(
    words: &BTreeMap<String, String>,
    labels: &[String],
    mask_space: bool,
    text: &TextEncoder,
    at: &str,
) -> Result<Vec<i64>> {
    if let Some(extra) = words.keys().find(|k| !labels.contains(k)) {
        bail!(
            "{at}: \"{extra}\" is not a label of the task (its labels: {})",
            labels.join(", ")
        );
    }
    labels
        .iter()
        .map(|label| {
            let word = words
                .get(label)
                .with_context(|| format!("{at}: no label word for label \"{label}\""))?;
            let spaced = if mask_space { format!(" {word}") } else { word.clone() };
            match text.ids_of(&spaced)?.as_slice() {
                [id] if Some(*id) == text.unk_id() => bail!(
                    "{at}: label word \"{word}\" is not in this model's vocabulary (it reads as the unknown token)"
                ),
                [id] => Ok(*id as i64),
                ids => bail!(
                    "{at}: label word \"{word}\" is {} tokens of this model's tokenizer ({ids:?}): ptv2 takes single-token label words only (it does not average them); choose another word",
                    ids.len()
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_in_the_file_parses_and_names_a_source() {
        for (task, templates) in entries().unwrap() {
            for (name, entry) in templates {
                let parts = parse(&entry.template, &format!("{task}.{name}")).unwrap();
                assert!(parts.contains(&Part::Mask));
                assert!(!entry.source.is_empty() && !entry.words.is_empty());
            }
        }
    }

    /// The prompt fixture's tokenizer (a small WordPiece vocabulary with great, terrible, ##s).
    fn fixture_tokenizer() -> TextEncoder {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/prompt/model/tokenizer.json"
        );
        TextEncoder::from_file(std::path::Path::new(path), 16).unwrap()
    }

    #[test]
    fn label_words_are_single_known_tokens_in_label_order() {
        let text = fixture_tokenizer();
        let labels = ["0".to_string(), "1".to_string()];
        let words = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ids = label_ids(
            &words(&[("1", "great"), ("0", "terrible")]),
            &labels,
            true,
            &text,
            "t",
        )
        .unwrap();
        let expected = [
            text.ids_of("terrible").unwrap(),
            text.ids_of("great").unwrap(),
        ];
        assert_eq!(ids, [expected[0][0] as i64, expected[1][0] as i64]);
        let error = |pairs: &[(&str, &str)]| {
            label_ids(&words(pairs), &labels, true, &text, "t")
                .unwrap_err()
                .to_string()
        };
        assert!(error(&[("0", "terrible"), ("1", "greats")]).contains("\"greats\" is 2 tokens"));
        assert!(
            error(&[("0", "terrible"), ("1", "zebra")]).contains("not in this model's vocabulary")
        );
        assert!(error(&[("0", "terrible")]).contains("no label word for label \"1\""));
        assert!(error(&[("0", "a"), ("1", "b"), ("2", "c")]).contains("\"2\" is not a label"));
    }

    #[test]
    fn templates_keep_their_spaces_on_the_next_piece() {
        let parts = parse("{text} It was {mask} .", "t").unwrap();
        assert_eq!(
            parts,
            [
                Part::Text { space: false },
                Part::Words(" It was".into()),
                Part::Mask,
                Part::Words(" .".into()),
            ]
        );
        let parts = parse("{pair} . Question : {text} ? Answer : {mask} .", "t").unwrap();
        assert_eq!(parts[2], Part::Text { space: true });
        assert!(parse("{text} {mask} {mask}", "t")
            .unwrap_err()
            .to_string()
            .contains("exactly one {mask}"));
        assert!(parse("{text} {label}", "t")
            .unwrap_err()
            .to_string()
            .contains("unknown placeholder {label}"));
    }
}
