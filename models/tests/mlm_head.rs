//! Masked-LM heads against transformers 4.46.3's `…ForMaskedLM` logits (fixtures written by
//! tools/reference/make_mlm_fixtures.py), and the one error of a checkpoint without a head.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::Value;

use ptv2_models::methods::mlm_head::MlmHead;
use ptv2_models::{load_encoder, EncoderInput, ModelDir, Prompts};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rows(value: &Value) -> Vec<Vec<i64>> {
    let row = |r: &Value| {
        r.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    value.as_array().unwrap().iter().map(row).collect()
}

fn ints(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(
        TensorData::new(rows.concat(), [rows.len(), rows[0].len()]),
        device,
    )
}

#[test]
fn mlm_logits_match_transformers_for_bert_roberta_and_deberta_v2() {
    let device = Device::flex();
    for name in ["mlm_bert", "mlm_roberta", "mlm_deberta_v2"] {
        let dir = ModelDir::new(fixture(name));
        let (config, encoder) = load_encoder(&dir, &device).unwrap();
        let head = MlmHead::load(&config, &dir.weights_path().unwrap(), &device).unwrap();
        let outputs: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.root.join("outputs.json")).unwrap())
                .unwrap();
        let mask = rows(&outputs["attention_mask"]);
        let input = EncoderInput {
            input_ids: ints(&rows(&outputs["input_ids"]), &device),
            attention_mask: ints(&mask, &device),
            token_type_ids: ints(&rows(&outputs["token_type_ids"]), &device),
        };
        let hidden = encoder.forward(&input, &Prompts::none()).last_hidden_state;
        let logits = head.forward(hidden, encoder.embeddings.word_embeddings.weight.val());
        let [_, seq, vocab] = logits.dims();
        assert_eq!(vocab, config.vocab_size);
        let ours = logits.into_data().try_to_vec::<f32>().unwrap();
        let mut worst = 0f64;
        for (b, example) in outputs["logits"].as_array().unwrap().iter().enumerate() {
            for (t, row) in example.as_array().unwrap().iter().enumerate() {
                if mask[b][t] == 0 {
                    continue; // padding: transformers' logits there mean nothing
                }
                for (v, x) in row.as_array().unwrap().iter().enumerate() {
                    let ours = ours[(b * seq + t) * vocab + v] as f64;
                    worst = worst.max((ours - x.as_f64().unwrap()).abs());
                }
            }
        }
        eprintln!("{name}: largest MLM logit gap to transformers {worst:.2e}");
        assert!(worst < 1e-4, "{name}: MLM logits differ by {worst}");
    }
}

#[test]
fn a_checkpoint_without_an_mlm_head_is_one_clear_error() {
    let device = Device::flex();
    let dir = ModelDir::new(fixture("tiny_roberta"));
    let config = dir.config().unwrap();
    let error = MlmHead::load(&config, &dir.weights_path().unwrap(), &device)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no masked-LM head"), "{error}");
    assert!(error.contains("lm_head.dense.weight"), "{error}");
    assert!(error.contains("model.safetensors"), "{error}");
}
