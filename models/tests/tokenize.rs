//! Pre-split words (NER) through a byte-level BPE tokenizer (RoBERTa's kind) get the token ids and
//! word ids transformers gives with `add_prefix_space=True` (tools/reference/make_roberta_words_fixture.py),
//! while plain text keeps the tokenizer's own setting.

use std::path::PathBuf;

use ptv2_models::TextEncoder;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/roberta_words")
}

#[test]
fn roberta_words_get_their_leading_space_form_as_in_transformers() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("words.json")).unwrap())
            .unwrap();
    let text = TextEncoder::from_file(&fixture().join("tokenizer.json"), 64).unwrap();
    for (words, encoding) in expected["words"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["encodings"].as_array().unwrap())
    {
        let words: Vec<String> = serde_json::from_value(words.clone()).unwrap();
        let batch = text
            .encode_words_batch(std::slice::from_ref(&words))
            .unwrap();
        let ids: Vec<u32> = serde_json::from_value(encoding["input_ids"].clone()).unwrap();
        let word_ids: Vec<Option<u32>> =
            serde_json::from_value(encoding["word_ids"].clone()).unwrap();
        assert_eq!(batch.input_ids[0], ids, "{words:?}");
        assert_eq!(batch.word_ids[0], word_ids, "{words:?}");
    }
    // A sentence as raw text starts without the space (the tokenizer's own add_prefix_space
    // false): its first token differs from the pre-split form's.
    let raw = text
        .encode_batch(&[("Peter Blackburn".to_string(), None)])
        .unwrap();
    let split = text
        .encode_words_batch(&[vec!["Peter".to_string(), "Blackburn".to_string()]])
        .unwrap();
    assert_ne!(raw.input_ids[0][1], split.input_ids[0][1]);
}
