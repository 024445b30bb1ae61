//! The readers of user files on arbitrary input: an error or a value, never a panic. Each reader
//! gets random bytes and random text made of its format's own punctuation (tabs, quotes, braces,
//! colons, `-DOCSTART-`…), so that parsing gets past the first line.

use std::path::Path;

use proptest::prelude::*;

use ptv2_harness::orchestration::sweep::expand;
use ptv2_harness::run::tasks::{glue, ner, qa, superglue};

/// Write `bytes` to a fresh file and hand its path to `read`.
fn on_file<T>(bytes: &[u8], read: impl Fn(&Path) -> T) -> T {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, bytes).unwrap();
    read(&path)
}

/// Text that looks like the formats: their separators, digits, labels and words.
fn formatted_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "\t",
        "\n",
        " ",
        "\"",
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "=",
        "\r\n",
        "\u{feff}",
        "-DOCSTART-",
        "B-PER",
        "I-ORG",
        "O",
        "label",
        "sentence",
        "sentence1",
        "sentence2",
        "entailment",
        "true",
        "false",
        "0",
        "1",
        "-3",
        "1e9",
        "null",
        "\"data\"",
        "\"paragraphs\"",
        "\"context\"",
        "\"qas\"",
        "\"answers\"",
        "\"answer_start\"",
        "\"text\"",
        "\"id\"",
        "\"question\"",
        "\"passage\"",
        "[fixed]",
        "[grid]",
        "[[override]]",
        "task",
        "lr",
        "method",
        "ft",
        "pt2",
        "é",
        "🙂",
    ]);
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        formatted_text().prop_map(String::into_bytes),
    ]
}

/// Well-formed SQuAD JSON with odd values: any context, any answer text, any start (negative,
/// past the end, not a number).
fn squad_json() -> impl Strategy<Value = Vec<u8>> {
    let start = prop_oneof![
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        Just(serde_json::json!("3")),
        Just(serde_json::json!(null)),
    ];
    (".{0,40}", ".{0,10}", start, any::<bool>()).prop_map(|(context, text, start, impossible)| {
        let qa = serde_json::json!({"id": "q1", "question": "why?", "is_impossible": impossible,
            "answers": [{"text": text, "answer_start": start}]});
        let squad =
            serde_json::json!({"data": [{"paragraphs": [{"context": context, "qas": [qa]}]}]});
        squad.to_string().into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn tsv_reader(bytes in inputs()) {
        for task in glue::TASKS {
            let _ = on_file(&bytes, |p| glue::read_split(task, p));
        }
    }

    #[test]
    fn jsonl_reader(bytes in inputs()) {
        for task in superglue::TASKS {
            let _ = on_file(&bytes, |p| superglue::read_split(task, p));
        }
    }

    #[test]
    fn conll_reader(bytes in inputs()) {
        let _ = on_file(&bytes, ner::read_conll);
    }

    #[test]
    fn squad_reader(bytes in prop_oneof![inputs(), squad_json()]) {
        let _ = on_file(&bytes, qa::read_squad);
    }

    #[test]
    fn sweep_reader(text in formatted_text()) {
        let _ = expand(&text, "fuzz.toml");
    }
}
