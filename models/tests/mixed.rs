//! A mixed-task batch (`mixed::forward_mixed`) gives every row what its own model alone gives it:
//! PT2 prefixes of different lengths and layer selections, PT prompts, no adapter, and three
//! kinds of head in one forward pass, on BERT and on RoBERTa's position rule.

use burn::tensor::Device;

use ptv2_models::methods::mixed::{forward_mixed, RowGroup};
use ptv2_models::methods::p_tuning_v2::LayerSelection;
use ptv2_models::{
    Encoder, EncoderConfig, EncoderInput, HeadKind, Logits, Method, MethodInit, PromptPool,
    TunedModel,
};

/// `rows` inputs of `seq` tokens, the last row padded after `seq - 2` real tokens.
fn input(rows: usize, seq: usize, pad_id: i64, salt: i64, device: &Device) -> EncoderInput {
    let mut ids = vec![];
    let mut mask = vec![];
    for r in 0..rows {
        let real = if r + 1 == rows { seq - 2 } else { seq };
        for t in 0..seq {
            let on = t < real;
            ids.push(if on {
                3 + (r as i64 * 7 + t as i64 * 13 + salt) % 90
            } else {
                pad_id
            });
            mask.push(on as i64);
        }
    }
    EncoderInput::from_rows(ids, mask, [rows, seq], device)
}

fn values(logits: Logits) -> Vec<f32> {
    let parts = match logits {
        Logits::Sequence(t) => vec![t.into_data()],
        Logits::Token(t) => vec![t.into_data()],
        Logits::Span { start, end } => vec![start.into_data(), end.into_data()],
    };
    parts
        .into_iter()
        .flat_map(|d| d.try_to_vec::<f32>().unwrap())
        .collect()
}

fn pt2(prompt_len: usize, layers: &str) -> Method {
    Method::Pt2 {
        prompt_len,
        reparam_hidden: None,
        layers: LayerSelection::parse(layers).unwrap(),
        init: Default::default(),
        prefix_dropout: None,
    }
}

fn check(config: EncoderConfig) {
    let device = Device::flex();
    let pad_id = config.padding_idx();
    // Large random weights, so that a wrong position, mask or prefix shows in the logits.
    let config = EncoderConfig {
        initializer_range: 0.5,
        ..config
    };
    let encoder = Encoder::init(&config, true, &device);
    let init = MethodInit {
        init_std: 0.5,
        ..MethodInit::default()
    };
    let classes = HeadKind::SequenceClassification { num_labels: 3 };
    let tokens = HeadKind::TokenClassification { num_labels: 5 };
    let models = [
        TunedModel::new(encoder.clone(), &pt2(4, "all"), &classes, &init, &device),
        TunedModel::new(encoder.clone(), &pt2(2, "top:1"), &tokens, &init, &device),
        TunedModel::new(
            encoder.clone(),
            &Method::Ft,
            &HeadKind::Span,
            &init,
            &device,
        ),
        TunedModel::new(
            encoder.clone(),
            &Method::Pt {
                prompt_len: 3,
                init: Default::default(),
                pool: Default::default(),
            },
            &classes,
            &init,
            &device,
        ),
        TunedModel::new(encoder.clone(), &pt2(4, "all"), &tokens, &init, &device),
    ];
    check_groups(&config, &encoder, &models, pad_id, &device);
    // A head that reads the first prompt (PEFT's PT) among them: those rows run apart, same logits.
    let pools_first = Method::Pt {
        prompt_len: 2,
        init: Default::default(),
        pool: PromptPool::First,
    };
    let mut models = models;
    models[1] = TunedModel::new(encoder.clone(), &pools_first, &classes, &init, &device);
    check_groups(&config, &encoder, &models, pad_id, &device);
}

fn check_groups(
    config: &EncoderConfig,
    encoder: &Encoder,
    models: &[TunedModel],
    pad_id: i64,
    device: &Device,
) {
    let device = device.clone();
    let inputs: Vec<EncoderInput> = (0..models.len())
        .map(|i| input(1 + i % 3, 6 + 2 * i, pad_id, i as i64, &device))
        .collect();
    let groups: Vec<RowGroup> = models
        .iter()
        .zip(&inputs)
        .map(|(model, input)| RowGroup { input, model })
        .collect();
    let mixed = forward_mixed(encoder, &groups, pad_id);
    for (i, (model, logits)) in models.iter().zip(mixed).enumerate() {
        let alone = values(model.forward(&inputs[i]));
        let together = values(logits);
        assert_eq!(alone.len(), together.len(), "group {i}: logits shape");
        let diff = alone
            .iter()
            .zip(&together)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        // The control: without its adapter the same head gives other logits.
        let plain = model.head.forward(
            encoder.forward(&inputs[i], &Default::default()),
            &inputs[i].input_ids,
            encoder,
        );
        let adapter_effect = alone
            .iter()
            .zip(values(plain))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!(
            "{} group {i}: max abs diff {diff:.2e} (the adapter itself moves logits by {adapter_effect:.2e})",
            config.model_type
        );
        assert!(diff < 1e-4, "group {i}: mixed batch differs by {diff}");
        if model.adapter.is_some() {
            assert!(
                adapter_effect > 1e-2,
                "group {i}: the adapter changes nothing"
            );
        }
    }
    // One group alone: the plain path (no masks) gives the same as the model.
    let single = forward_mixed(encoder, &groups[..1], pad_id);
    let diff = values(models[0].forward(&inputs[0]))
        .iter()
        .zip(values(single.into_iter().next().unwrap()))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-6, "one group: {diff}");
}

#[test]
fn mixed_batch_rows_equal_their_own_models_bert() {
    check(EncoderConfig::tiny_bert());
}

#[test]
fn mixed_batch_rows_equal_their_own_models_roberta() {
    let config = EncoderConfig {
        model_type: "roberta".into(),
        pad_token_id: Some(1),
        ..EncoderConfig::tiny_bert()
    };
    check(config);
}

#[test]
fn mixed_batch_rows_equal_their_own_models_deberta() {
    check(EncoderConfig::tiny_deberta());
}
