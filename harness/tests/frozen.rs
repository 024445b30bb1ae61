//! Frozen means frozen: after a few PT2 and PT training steps every backbone tensor is bit for bit
//! what it was, the trainable ones moved, and AdamW holds state for the trainable tensors only —
//! on BERT and on DeBERTa-v2 (relative attention and convolution: gradients through the gathers).

use burn::optim::GradientsParams;
use burn::tensor::Device;

use ptv2_harness::run::optim::{adamw, clip_global_norm};
use ptv2_models::methods::loss::loss;
use ptv2_models::{
    Encoder, EncoderConfig, EncoderInput, HeadKind, Method, MethodInit, Targets, TunedModel,
};

use ptv2_models::fixtures::{snapshot, ParamSnapshot as Snapshot};

fn batch(device: &Device) -> (EncoderInput, Targets) {
    ptv2_models::fixtures::two_row_batch(device)
}

fn train_steps(method: Method, config: &EncoderConfig) -> (Snapshot, Snapshot, usize) {
    train_steps_of(method, |device| Encoder::init(config, true, device))
}

fn train_steps_of(
    method: Method,
    encoder: impl Fn(&Device) -> Encoder,
) -> (Snapshot, Snapshot, usize) {
    let device = Device::flex().autodiff();
    device.seed(7);
    let encoder = encoder(&device);
    let init = MethodInit::default();
    let mut model = TunedModel::new(
        encoder,
        &method,
        &HeadKind::SequenceClassification { num_labels: 2 },
        &init,
        &device,
    );
    let before = snapshot(&model);
    let mut optimizer = adamw();
    let (input, targets) = batch(&device);
    for _ in 0..3 {
        let grads = loss(model.forward(&input), &targets).backward();
        let mut grads = GradientsParams::from_grads(grads, &model);
        clip_global_norm(&model, &mut grads, 1.0);
        model = optimizer.step(1e-2, model, grads);
    }
    let state_tensors = optimizer.to_record().len();
    (before, snapshot(&model), state_tensors)
}

fn check_frozen(method: Method, expected_trainable: usize) {
    for config in [EncoderConfig::tiny_bert(), EncoderConfig::tiny_deberta()] {
        check_frozen_on(method.clone(), &config, expected_trainable);
    }
}

fn check_frozen_on(method: Method, config: &EncoderConfig, expected_trainable: usize) {
    let method = &method;
    let family = &config.model_type;
    let (before, after, state_tensors) = train_steps(method.clone(), config);
    assert_eq!(before.0.len(), after.0.len());
    let mut trainable = 0;
    for ((id, was_trainable, old), (id2, _, new)) in before.0.iter().zip(&after.0) {
        assert_eq!(id, id2);
        if *was_trainable {
            trainable += 1;
            assert_ne!(
                old, new,
                "{family} {method:?}: trainable tensor {id} did not move"
            );
        } else {
            assert!(
                old == new,
                "{family} {method:?}: frozen tensor {id} changed"
            );
        }
    }
    assert_eq!(
        trainable, expected_trainable,
        "{method:?}: trainable tensors"
    );
    // AdamW: first and second moment per trainable tensor, nothing for frozen ones.
    assert_eq!(
        state_tensors,
        2 * trainable,
        "{method:?}: optimizer state tensors"
    );
}

#[test]
fn pt2_trains_only_prefix_and_head() {
    // prefix embedding + head weight + head bias
    check_frozen(Method::pt2(4), 3);
}

#[test]
fn pt2_with_reparameterization_trains_the_mlp() {
    // MLP embedding + 2 × (weight, bias) + head weight + bias
    check_frozen(
        Method::Pt2 {
            prompt_len: 4,
            reparam_hidden: Some(8),
            layers: Default::default(),
            init: Default::default(),
            prefix_dropout: None,
        },
        7,
    );
}

#[test]
fn pt_trains_only_prompts_and_head() {
    check_frozen(
        Method::Pt {
            prompt_len: 4,
            init: Default::default(),
            pool: Default::default(),
        },
        3,
    );
}

#[test]
fn ft_trains_everything() {
    for config in [EncoderConfig::tiny_bert(), EncoderConfig::tiny_deberta()] {
        let (before, after, _) = train_steps(Method::Ft, &config);
        assert!(before.0.iter().all(|(_, trainable, _)| *trainable));
        let moved = before
            .0
            .iter()
            .zip(&after.0)
            .filter(|(a, b)| a.2 != b.2)
            .count();
        // Position/type embedding rows never used still get zero gradients but AdamW moves nothing
        // without a gradient signal; every weight matrix on the path moves.
        assert!(
            moved as f64 > 0.8 * before.0.len() as f64,
            "{}: only {moved} of {} moved",
            config.model_type,
            before.0.len()
        );
    }
}

/// `missing_pooler = context` (THUDM's DeBERTa ContextPooler): the new pooler trains with the head
/// while the DeBERTa backbone stays frozen.
#[test]
fn a_context_pooler_trains_with_the_head_under_pt2() {
    let config = EncoderConfig::tiny_deberta();
    let method = Method::pt2(4);
    let (before, after, state_tensors) = train_steps_of(method, |device| {
        Encoder::init(&config, false, device).with_context_pooler(0.02)
    });
    let mut trainable = 0;
    for ((id, was_trainable, old), (_, _, new)) in before.0.iter().zip(&after.0) {
        if *was_trainable {
            trainable += 1;
            assert_ne!(old, new, "trainable tensor {id} did not move");
        } else {
            assert!(old == new, "frozen tensor {id} changed");
        }
    }
    // prefix + pooler weight and bias + head weight and bias
    assert_eq!(trainable, 5);
    assert_eq!(state_tensors, 2 * trainable);
}
