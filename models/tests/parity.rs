//! Parity with PyTorch + transformers, against fixtures written once by
//! `tools/reference/make_fixtures.py` (see its docstring). MiniLM-L6 is fetched on first use.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::Value;

use ptv2_models::encoder::load::load_weights;
use ptv2_models::hub::{default_cache_dir, resolve_model};
use ptv2_models::{Encoder, EncoderConfig, EncoderInput, KvPrefix, Pretrained, Prompts};

const TOLERANCE: f32 = 1e-4;

/// `PTV2_FIXTURES` where the test binary runs away from the source tree (`tools/gpu-check.sh`).
fn fixtures() -> PathBuf {
    std::env::var_os("PTV2_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn minilm(device: &Device) -> Pretrained {
    let spec = resolve_model("minilm-l6", &default_cache_dir()).expect("fetch minilm-l6");
    Pretrained::load(&spec, 128, device).expect("load minilm-l6")
}

fn ints(v: &Value) -> Vec<Vec<i64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect()
        })
        .collect()
}

fn int_tensor(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let shape = [rows.len(), rows[0].len()];
    Tensor::from_data(TensorData::new(rows.concat(), shape), device)
}

fn input_from(case: &Value, device: &Device) -> EncoderInput {
    let ids = ints(&case["input_ids"]);
    let types = case
        .get("token_type_ids")
        .map(ints)
        .unwrap_or_else(|| ids.iter().map(|r| vec![0; r.len()]).collect());
    EncoderInput {
        input_ids: int_tensor(&ids, device),
        attention_mask: int_tensor(&ints(&case["attention_mask"]), device),
        token_type_ids: int_tensor(&types, device),
    }
}

/// The deterministic values of the reference script's `formula(rows, cols, seed)`.
fn formula(rows: usize, cols: usize, seed: f64, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..rows * cols)
        .map(|i| (0.5 * (0.37 * i as f64 + seed).sin()) as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// Max |ours − theirs| over the real tokens of each example.
fn max_diff_real_tokens(ours: Tensor<3>, mask: &[Vec<i64>], expected: &Value) -> f32 {
    let [_, seq, hidden] = ours.dims();
    let ours = ours.into_data().try_to_vec::<f32>().unwrap();
    let mut worst = 0f32;
    for (b, example) in expected.as_array().unwrap().iter().enumerate() {
        let real = mask[b].iter().filter(|&&m| m == 1).count();
        let rows = example.as_array().unwrap();
        assert_eq!(
            rows.len(),
            real,
            "example {b}: fixture has {} tokens, mask {real}",
            rows.len()
        );
        for (t, row) in rows.iter().enumerate() {
            for (h, x) in row.as_array().unwrap().iter().enumerate() {
                let d = (ours[(b * seq + t) * hidden + h] - x.as_f64().unwrap() as f32).abs();
                worst = worst.max(d);
            }
        }
    }
    worst
}

fn max_diff_flat(ours: Tensor<2>, expected: &Value) -> f32 {
    let ours = ours.into_data().try_to_vec::<f32>().unwrap();
    let theirs: Vec<f32> = expected
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    assert_eq!(ours.len(), theirs.len());
    ours.iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Print a gap to PyTorch and require it below the tolerance.
fn assert_close(what: &str, diff: f32) {
    eprintln!("{what}: max abs diff {diff:.2e}");
    assert!(diff < TOLERANCE, "{what}: max abs diff {diff}");
}

/// The fixture's deterministic prefix (`prefix_len`, `prefix_formula_seed`) as every layer's K/V.
fn formula_prefix(fixture: &Value, config: &EncoderConfig, device: &Device) -> Prompts {
    let p = fixture["prefix_len"].as_u64().unwrap() as usize;
    let (layers, heads) = (config.num_hidden_layers, config.num_attention_heads);
    let seed = fixture["prefix_formula_seed"].as_f64().unwrap();
    let flat = formula(p, layers * 2 * config.hidden_size, seed, device);
    Prompts {
        layers: KvPrefix::split_flat(flat.unsqueeze(), layers, heads)
            .into_iter()
            .map(Some)
            .collect(),
        ..Prompts::none()
    }
}

#[test]
fn minilm_token_ids_equal_hf_tokenizer() {
    let device = Device::flex();
    let model = minilm(&device);
    let fixture = read_json(&fixtures().join("minilm_plain.json"));
    for case in fixture["cases"].as_array().unwrap() {
        let texts: Vec<String> = case["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().into())
            .collect();
        let pairs: Vec<Option<String>> = match case["pairs"].as_array() {
            Some(p) => p.iter().map(|t| Some(t.as_str().unwrap().into())).collect(),
            None => vec![None; texts.len()],
        };
        let inputs: Vec<_> = texts.into_iter().zip(pairs).collect();
        let batch = model.text.encode_batch(&inputs).unwrap();
        let as_i64 = |rows: &Vec<Vec<u32>>| {
            rows.iter()
                .map(|r| r.iter().map(|&x| x as i64).collect())
                .collect::<Vec<Vec<i64>>>()
        };
        assert_eq!(
            as_i64(&batch.input_ids),
            ints(&case["input_ids"]),
            "{}",
            case["name"]
        );
        assert_eq!(
            as_i64(&batch.token_type_ids),
            ints(&case["token_type_ids"]),
            "{}",
            case["name"]
        );
        assert_eq!(
            as_i64(&batch.attention_mask),
            ints(&case["attention_mask"]),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn minilm_hidden_states_equal_transformers() {
    minilm_equals_transformers_on(&Device::flex(), TOLERANCE);
}

/// The GPU code path (`PTV2_GPU_DEVICE`, default wgpu: lavapipe's software Vulkan in CI, a real GPU
/// elsewhere) against the same fixture. 1e-3: another summation order in every matmul and
/// reduction (the bound; measured below 1e-5 on lavapipe, see the README).
#[cfg(feature = "wgpu")]
#[test]
fn minilm_on_the_gpu_equals_transformers() {
    minilm_equals_transformers_on(&ptv2_models::backend::gpu_under_test().unwrap(), 1e-3);
}

fn minilm_equals_transformers_on(device: &Device, tolerance: f32) {
    let model = minilm(device);
    let fixture = read_json(&fixtures().join("minilm_plain.json"));
    for case in fixture["cases"].as_array().unwrap() {
        let out = model
            .encoder
            .forward(&input_from(case, device), &Prompts::none());
        let mask = ints(&case["attention_mask"]);
        let hidden = max_diff_real_tokens(out.last_hidden_state, &mask, &case["last_hidden_state"]);
        let pooled = max_diff_flat(out.pooled.expect("MiniLM has a pooler"), &case["pooled"]);
        for (what, diff) in [("hidden", hidden), ("pooled", pooled)] {
            eprintln!(
                "{:?} {}: {what}: max abs diff {diff:.2e}",
                device, case["name"]
            );
            assert!(
                diff < tolerance,
                "{}: {what}: max abs diff {diff}",
                case["name"]
            );
        }
    }
}

#[test]
fn minilm_with_prefix_and_prompts_equals_pytorch() {
    let device = Device::flex();
    let model = minilm(&device);
    let fixture = read_json(&fixtures().join("minilm_prompts.json"));
    let input = input_from(&fixture, &device);
    let mask = ints(&fixture["attention_mask"]);
    let hidden = model.config.hidden_size;

    let prompts = formula_prefix(&fixture, &model.config, &device);
    let out = model.encoder.forward(&input, &prompts);
    let expected = &fixture["prefix_last_hidden_state"];
    let diff = max_diff_real_tokens(out.last_hidden_state, &mask, expected);
    assert_close("minilm prefix: hidden", diff);
    let pooled = max_diff_flat(out.pooled.unwrap(), &fixture["prefix_pooled"]);
    assert_close("minilm prefix: pooled", pooled);

    let p = fixture["prompt_len"].as_u64().unwrap() as usize;
    let prompt = formula(
        p,
        hidden,
        fixture["prompt_formula_seed"].as_f64().unwrap(),
        &device,
    );
    let prompts = Prompts {
        input: Some(prompt.unsqueeze()),
        ..Prompts::none()
    };
    let out = model.encoder.forward(&input, &prompts);
    let expected = &fixture["prompt_last_hidden_state"];
    let diff = max_diff_real_tokens(out.last_hidden_state, &mask, expected);
    assert_close("minilm input prompts: hidden", diff);
}

/// A tiny model dir of the fixtures: its config, loaded encoder, `outputs.json`, the batch in it
/// and that batch's attention mask.
fn tiny_fixture(
    name: &str,
    device: &Device,
) -> (EncoderConfig, Encoder, Value, EncoderInput, Vec<Vec<i64>>) {
    let dir = fixtures().join(name);
    let config = EncoderConfig::from_file(&dir.join("config.json")).unwrap();
    let encoder = load_weights(&config, &dir.join("model.safetensors"), device).unwrap();
    let fixture = read_json(&dir.join("outputs.json"));
    let input = input_from(&fixture, device);
    let mask = ints(&fixture["attention_mask"]);
    (config, encoder, fixture, input, mask)
}

#[test]
fn tiny_roberta_position_rule_equals_transformers() {
    let device = Device::flex();
    let (config, encoder, fixture, input, mask) = tiny_fixture("tiny_roberta", &device);

    let out = encoder.forward(&input, &Prompts::none());
    let diff = max_diff_real_tokens(out.last_hidden_state, &mask, &fixture["last_hidden_state"]);
    assert_close("tiny roberta: hidden", diff);
    assert_close(
        "tiny roberta: pooled",
        max_diff_flat(out.pooled.unwrap(), &fixture["pooled"]),
    );

    let out = encoder.forward(&input, &formula_prefix(&fixture, &config, &device));
    let expected = &fixture["prefix_last_hidden_state"];
    let diff = max_diff_real_tokens(out.last_hidden_state, &mask, expected);
    assert_close("tiny roberta prefix: hidden", diff);
}

/// The methods end to end: a fixed prompt / prefix and a fixed head give PyTorch's logits.
#[test]
fn pt_and_pt2_logits_equal_pytorch() {
    use burn::module::Param;
    use ptv2_models::TaskHead;
    use ptv2_models::{Adapter, HeadKind, Logits, Method, MethodInit, TunedModel};

    let device = Device::flex();
    let model = minilm(&device);
    let fixture = read_json(&fixtures().join("minilm_prompts.json"));
    let input = input_from(&fixture, &device);
    let (layers, hidden) = (model.config.num_hidden_layers, model.config.hidden_size);
    let init = MethodInit {
        dropout: 0.0,
        init_std: 0.02,
        ..MethodInit::default()
    };
    let head = HeadKind::SequenceClassification { num_labels: 2 };
    let head_weight = formula(2, hidden, 1.3, &device).mul_scalar(0.2).transpose();
    let head_bias = Tensor::<1>::from_data(TensorData::new(vec![0.05f32, -0.05], [2]), &device);

    let cases = [
        (Method::pt2(4), "pt2_logits"),
        (
            Method::Pt {
                prompt_len: 3,
                init: Default::default(),
                pool: Default::default(),
            },
            "pt_logits",
        ),
    ];
    for (method, key) in cases {
        let mut tuned = TunedModel::new(model.encoder.clone(), &method, &head, &init, &device);
        tuned.adapter = match tuned.adapter {
            Some(Adapter::Prefix(prefix)) => {
                let seed = fixture["prefix_formula_seed"].as_f64().unwrap();
                let flat = formula(4, layers * 2 * hidden, seed, &device);
                Some(Adapter::Prefix(prefix.with_flat(flat)))
            }
            Some(Adapter::Prompt(mut prompt)) => {
                let seed = fixture["prompt_formula_seed"].as_f64().unwrap();
                prompt.embedding = Param::from_tensor(formula(3, hidden, seed, &device));
                Some(Adapter::Prompt(prompt))
            }
            _ => unreachable!("only PT2 and PT cases"),
        };
        let TaskHead::Classifier(head) = &mut tuned.head else {
            unreachable!("a classifier head")
        };
        head.classifier.weight = Param::from_tensor(head_weight.clone());
        head.classifier.bias = Some(Param::from_tensor(head_bias.clone()));
        let Logits::Sequence(logits) = tuned.forward(&input) else {
            panic!("sequence logits")
        };
        assert_close(key, max_diff_flat(logits, &fixture[key]));
    }
}

/// transformers' log buckets for the real DeBERTa-v2/v3 tables (256 buckets over 512 positions),
/// distance by distance from +600 to −599.
#[test]
fn deberta_log_buckets_equal_transformers() {
    let fixture = read_json(&fixtures().join("deberta_log_buckets.json"));
    let size = fixture["bucket_size"].as_u64().unwrap() as usize;
    let max = fixture["max_position"].as_u64().unwrap() as usize;
    let from = fixture["relative_from"].as_i64().unwrap();
    let expected = fixture["buckets"].as_array().unwrap();
    for (i, bucket) in expected.iter().enumerate() {
        let relative = from - i as i64;
        assert_eq!(
            ptv2_models::encoder::deberta::log_bucket(relative, size, max),
            bucket.as_i64().unwrap(),
            "relative position {relative}"
        );
    }
}

/// Tiny random DeBERTa-v2 dirs (`tools/reference/make_deberta_fixtures.py`): hidden states as
/// transformers' DebertaV2Model, with a prefix as THUDM's DeBERTa-v2 prefix code, and PT2's
/// token logits with that prefix and a fixed head.
#[test]
fn tiny_deberta_equals_transformers_and_thudm_prefix() {
    use burn::module::Param;
    use ptv2_models::{Adapter, HeadKind, Logits, Method, MethodInit, TaskHead, TunedModel};

    let device = Device::flex();
    for name in ["tiny_deberta_v2", "tiny_deberta_abs"] {
        let (config, encoder, fixture, input, mask) = tiny_fixture(name, &device);

        let out = encoder.forward(&input, &Prompts::none());
        let diff =
            max_diff_real_tokens(out.last_hidden_state, &mask, &fixture["last_hidden_state"]);
        assert_close(&format!("{name}: hidden"), diff);

        let out = encoder.forward(&input, &formula_prefix(&fixture, &config, &device));
        let expected = &fixture["prefix_last_hidden_state"];
        let diff = max_diff_real_tokens(out.last_hidden_state, &mask, expected);
        assert_close(&format!("{name} prefix: hidden"), diff);

        let p = fixture["prefix_len"].as_u64().unwrap() as usize;
        let method = Method::pt2(p);
        let init = MethodInit {
            dropout: 0.0,
            init_std: 0.02,
            ..MethodInit::default()
        };
        let head = HeadKind::TokenClassification { num_labels: 3 };
        let mut tuned = TunedModel::new(encoder, &method, &head, &init, &device);
        let (layers, hidden) = (config.num_hidden_layers, config.hidden_size);
        let Some(Adapter::Prefix(prefix)) = tuned.adapter else {
            panic!("PT2 has a prefix")
        };
        let seed = fixture["prefix_formula_seed"].as_f64().unwrap();
        let flat = formula(p, layers * 2 * hidden, seed, &device);
        tuned.adapter = Some(Adapter::Prefix(prefix.with_flat(flat)));
        let weight = formula(3, hidden, 1.3, &device).mul_scalar(0.2).transpose();
        let bias = Tensor::<1>::from_data(TensorData::new(vec![0.05f32, -0.05, 0.0], [3]), &device);
        let TaskHead::Classifier(head) = &mut tuned.head else {
            unreachable!("a classifier head")
        };
        head.classifier.weight = Param::from_tensor(weight);
        head.classifier.bias = Some(Param::from_tensor(bias));
        let Logits::Token(logits) = tuned.forward(&input) else {
            panic!("token logits")
        };
        let diff = max_diff_real_tokens(logits, &mask, &fixture["prefix_token_logits"]);
        assert_close(&format!("{name} PT2: token logits"), diff);
    }
}
