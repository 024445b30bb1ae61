//! Checkpoints keep their tensor names (`prompt.embedding`, `prefix.embedding`, `head.…`, and the
//! whole model under FT) and reload into a new model to the same logits.

use burn::tensor::Device;

use ptv2_models::methods::p_tuning_v2::LayerSelection;
use ptv2_models::{
    Encoder, EncoderConfig, EncoderInput, HeadKind, Logits, Method, MethodInit, TunedModel,
};

fn input(device: &Device) -> EncoderInput {
    EncoderInput::from_rows(vec![2, 15, 27, 33, 3], vec![1; 5], [1, 5], device)
}

fn logits(model: &TunedModel, device: &Device) -> Vec<f32> {
    let Logits::Sequence(logits) = model.forward(&input(device)) else {
        panic!("sequence logits")
    };
    logits.into_data().try_to_vec::<f32>().unwrap()
}

fn names(path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut names: Vec<String> = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .names()
        .into_iter()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn checkpoints_keep_their_names_and_reload() {
    let device = Device::flex();
    let config = EncoderConfig::tiny_bert();
    let encoder = Encoder::init(&config, true, &device);
    let head = HeadKind::SequenceClassification { num_labels: 2 };
    let init = MethodInit::default();
    let pt2 = Method::Pt2 {
        prompt_len: 3,
        reparam_hidden: Some(8),
        layers: LayerSelection::All,
        init: Default::default(),
        prefix_dropout: None,
    };
    let pt = Method::Pt {
        prompt_len: 3,
        init: Default::default(),
        pool: Default::default(),
    };
    let head_names = ["head.classifier.bias", "head.classifier.weight"];
    let dir = tempfile::tempdir().unwrap();
    for (method, adapter) in [(pt2, "prefix.embedding"), (pt, "prompt.embedding")] {
        let path = dir.path().join(format!("{}.safetensors", method.name()));
        let trained = TunedModel::new(encoder.clone(), &method, &head, &init, &device);
        let trained = trained.save_checkpoint(&path).unwrap();
        let mut expected = vec![head_names[0].to_string(), head_names[1].to_string()];
        expected.push(adapter.to_string());
        expected.sort();
        assert_eq!(names(&path), expected, "{}", method.name());
        let mut reloaded =
            TunedModel::new(encoder.clone(), &method.as_saved(), &head, &init, &device);
        assert_ne!(logits(&reloaded, &device), logits(&trained, &device));
        reloaded.load_checkpoint(&path).unwrap();
        assert_eq!(logits(&reloaded, &device), logits(&trained, &device));
    }
    let path = dir.path().join("ft.safetensors");
    let ft = TunedModel::new(encoder.clone(), &Method::Ft, &head, &init, &device);
    ft.save_checkpoint(&path).unwrap();
    let all = names(&path);
    assert!(all.contains(&"head.classifier.weight".to_string()));
    assert!(
        all.iter().any(|n| n.starts_with("encoder.")) && !all.iter().any(|n| n.contains("adapter")),
        "{all:?}"
    );
}

/// A safetensors file of these f32 tensors.
fn write_f32(path: &std::path::Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, values)| {
            let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), shape.clone(), raw)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(name, shape, raw)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), raw)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// LoRA factors of query and value in every layer and a two-class head, all nonzero.
fn nonzero_lora_tensors(
    h: usize,
    layers: usize,
    rank: usize,
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut tensors = Vec::new();
    let mut value = 0.0f32;
    let mut next = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                value += 0.37;
                value.sin() * 0.3
            })
            .collect()
    };
    for layer in 0..layers {
        for letter in ["q", "v"] {
            tensors.push((
                format!("lora.{layer}.{letter}.a"),
                vec![h, rank],
                next(h * rank),
            ));
            tensors.push((
                format!("lora.{layer}.{letter}.b"),
                vec![rank, h],
                next(rank * h),
            ));
        }
    }
    tensors.push(("head.classifier.weight".into(), vec![h, 2], next(h * 2)));
    tensors.push(("head.classifier.bias".into(), vec![2], next(2)));
    tensors
}

#[test]
fn lora_saves_only_its_factors_and_head_and_merges_to_the_same_logits() {
    let device = Device::flex();
    let config = EncoderConfig::tiny_bert();
    let encoder = Encoder::init(&config, true, &device);
    let head = HeadKind::SequenceClassification { num_labels: 2 };
    let method = Method::Lora {
        rank: 2,
        alpha: 4.0,
        targets: ptv2_models::methods::lora::LoraTargets::parse("q,v").unwrap(),
    };
    let init = MethodInit::default();
    let fresh = || TunedModel::new(encoder.clone(), &method, &head, &init, &device);
    let autodiff = device.clone().autodiff();
    let on_autodiff = Encoder::init(&config, true, &autodiff);
    let counts = TunedModel::new(on_autodiff, &method, &head, &init, &autodiff).param_counts();
    let (h, layers, rank) = (config.hidden_size, config.num_hidden_layers, 2);
    let lora_params = layers * 2 * (h * rank + rank * h);
    assert_eq!(counts.trainable, lora_params + h * 2 + 2, "{counts}");

    // Nonzero factors (B starts at zero, which would hide a factor that never reaches the weights).
    let dir = tempfile::tempdir().unwrap();
    let given = dir.path().join("given.safetensors");
    let tensors = nonzero_lora_tensors(h, layers, rank);
    write_f32(&given, &tensors);
    let mut model = fresh();
    let base = logits(&model, &device);
    model.load_checkpoint(&given).unwrap();
    let adapted = logits(&model, &device);
    assert_ne!(adapted, base);

    let saved = dir.path().join("lora.safetensors");
    let model = model.save_checkpoint(&saved).unwrap();
    let mut expected: Vec<String> = tensors.iter().map(|t| t.0.clone()).collect();
    expected.sort();
    assert_eq!(names(&saved), expected);
    let mut reloaded = fresh();
    reloaded.load_checkpoint(&saved).unwrap();
    assert_eq!(logits(&reloaded, &device), adapted);

    let merged = model.merged();
    assert!(!ptv2_models::methods::lora::has_adapters(&merged.encoder));
    let gap = logits(&merged, &device)
        .iter()
        .zip(&adapted)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(gap < 1e-5, "merged logits differ by {gap}");
}

#[test]
fn a_random_pooler_travels_with_a_frozen_backbone_checkpoint() {
    let device = Device::flex();
    let config = EncoderConfig::tiny_bert();
    // No pooler in the "checkpoint" (as roberta-large): THUDM's code draws one.
    let head = HeadKind::SequenceClassification { num_labels: 2 };
    let method = Method::pt2(2);
    let init = MethodInit::default();
    let pretrained = Encoder::init(&config, false, &device);
    let build = |seed: u64| {
        device.seed(seed);
        let encoder = pretrained.clone().with_random_pooler(0.02);
        assert!(encoder.random_pooler && encoder.pooler.is_some());
        TunedModel::new(encoder, &method, &head, &init, &device)
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pt2.safetensors");
    let trained = build(1).save_checkpoint(&path).unwrap();
    let saved = names(&path);
    assert!(
        saved.contains(&"encoder.pooler.dense.weight".to_string())
            && !saved.iter().any(|n| n.starts_with("encoder.encoder")),
        "{saved:?}"
    );
    let mut reloaded = build(2);
    assert_ne!(logits(&reloaded, &device), logits(&trained, &device));
    reloaded.load_checkpoint(&path).unwrap();
    assert_eq!(logits(&reloaded, &device), logits(&trained, &device));
    // A checkpoint's own pooler is kept, and then not saved with a frozen backbone.
    let own = Encoder::init(&config, true, &device).with_random_pooler(0.02);
    assert!(!own.random_pooler);
}
