//! The GPU code path, run where there is one: burn's wgpu backend, on lavapipe (Mesa's software
//! Vulkan on the CPU) in CI and on a real GPU elsewhere (`tools/gpu-check.sh`). A tiny model
//! trains a few AdamW steps on the CPU backend (flex) and on wgpu from the same weights on the same
//! batch: the losses and the updated parameters agree within the tolerances below (each test
//! prints what it measured), frozen weights stay bit for bit what they were, and a checkpoint
//! written on one backend scores the same on the other.
//!
//! `cargo test --release -p ptv2-models -F wgpu --test gpu --test parity -- --nocapture`
#![cfg(feature = "wgpu")]

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor};

use ptv2_models::methods::loss::loss;
use ptv2_models::{
    Encoder, EncoderConfig, EncoderInput, HeadKind, Logits, Method, MethodInit, Targets, TunedModel,
};

/// The learning rate of the steps compared.
const LR: f64 = 1e-2;
/// Tolerances, each well above what lavapipe measured (the README has the numbers): the loss of
/// a step; a gradient element, relative to the model's largest gradient; parameters after AdamW's
/// update (lr / 100), where the gradient's sign is determined (|g| ≥ DETERMINED of its tensor's
/// largest): AdamW's lr · g / (|g| + ε) still amplifies rounding where |g| is near ε.
const LOSS_TOLERANCE: f32 = 1e-4;
const GRAD_TOLERANCE: f32 = 1e-4;
const PARAM_TOLERANCE: f32 = 1e-4;
const DETERMINED: f32 = 1e-3;
/// Logits of one checkpoint evaluated on each backend.
const LOGIT_TOLERANCE: f32 = 1e-4;

fn gpu() -> Device {
    ptv2_models::backend::gpu_under_test().unwrap()
}

/// tiny_bert without dropout, so both backends compute the same function.
fn config() -> EncoderConfig {
    EncoderConfig {
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..EncoderConfig::tiny_bert()
    }
}

fn no_dropout() -> MethodInit {
    MethodInit {
        dropout: 0.0,
        ..MethodInit::default()
    }
}

fn pt2() -> Method {
    Method::pt2(4)
}

use ptv2_models::fixtures::{snapshot, ParamSnapshot as Snapshot};

fn batch(device: &Device) -> (EncoderInput, Targets) {
    ptv2_models::fixtures::two_row_batch(device)
}

/// The model every test starts from: built on the CPU from seed 7. burn draws a parameter's
/// initial values at its first use: `snapshot` makes every draw now, in one order, so that a model
/// whose first use is a checkpoint load gets the same backbone as one whose first use is training.
fn start(method: &Method) -> TunedModel {
    let device = Device::flex().autodiff();
    device.seed(7);
    let encoder = Encoder::init(&config(), true, &device);
    let head = HeadKind::SequenceClassification { num_labels: 2 };
    let model = TunedModel::new(encoder, method, &head, &no_dropout(), &device);
    snapshot(&model);
    model
}

/// Three AdamW steps on `device` (an autodiff device); the loss of each step.
fn train(model: TunedModel, device: &Device) -> (Vec<f32>, TunedModel) {
    let mut model = model.fork(device);
    let mut optimizer = adamw();
    let (input, targets) = batch(device);
    let mut losses = vec![];
    for _ in 0..3 {
        let loss = loss(model.forward(&input), &targets);
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(LR, model, grads);
    }
    (losses, model)
}

fn adamw() -> burn::optim::ModuleOptimizer {
    AdamWConfig::new()
        .with_weight_decay(0.0)
        .with_epsilon(1e-8)
        .init()
}

/// Each float parameter's gradient (`None`: frozen), in visiting order.
struct GradValues<'a>(&'a GradientsParams, Vec<Option<Vec<f32>>>);

impl ModuleVisitor for GradValues<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = self.0.get::<D>(param.id);
        self.1
            .push(grad.map(|g| g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()));
    }
}

/// One train step on `device`: the loss, every gradient, the parameters after AdamW's update.
fn one_step(method: &Method, device: &Device) -> (f32, Vec<Option<Vec<f32>>>, Snapshot) {
    let model = start(method).fork(device);
    let (input, targets) = batch(device);
    let loss = loss(model.forward(&input), &targets);
    let value = loss.clone().into_scalar::<f32>();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut values = GradValues(&grads, vec![]);
    model.visit(&mut values);
    let gradients = values.1;
    let model = adamw().step(LR, model, grads);
    (value, gradients, snapshot(&model))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// One method's train step on both backends: the loss; each trainable tensor's gradient relative
/// to its largest element; the updated parameters; the frozen ones bit for bit. AdamW's first step
/// moves an element by lr · g / (|g| + ε), about lr · sign(g): where a gradient is a cancellation
/// near zero (LayerNorm's inputs sum to zero, for one) its sign is rounding's, so the updated
/// parameters are compared where |g| is at least `DETERMINED` of its tensor's largest, and the
/// test requires that to be three quarters of the elements at least.
fn step_like_the_cpu(method: Method) {
    let name = method.name();
    let (cpu_loss, cpu_grads, cpu) = one_step(&method, &Device::flex().autodiff());
    let (gpu_loss, gpu_grads, gpu) = one_step(&method, &gpu().autodiff());
    let before = snapshot(&start(&method));
    let loss_gap = (cpu_loss - gpu_loss).abs();
    let largest = |g: &[f32]| g.iter().fold(0f32, |m, x| m.max(x.abs()));
    let global = cpu_grads
        .iter()
        .flatten()
        .map(|g| largest(g))
        .fold(0f32, f32::max);
    let (mut grad_gap, mut param_gap, mut compared, mut trainable_elements) = (0f32, 0f32, 0, 0);
    for (i, (_, was_trainable, old)) in before.0.iter().enumerate() {
        let (on_cpu, on_gpu) = (&cpu.0[i].2, &gpu.0[i].2);
        if !was_trainable {
            assert!(old == on_gpu, "{name}: a frozen tensor changed on wgpu");
            continue;
        }
        let (Some(g_cpu), Some(g_gpu)) = (&cpu_grads[i], &gpu_grads[i]) else {
            panic!("{name}: a trainable tensor has no gradient")
        };
        grad_gap = grad_gap.max(max_diff(g_cpu, g_gpu) / global);
        let scale = largest(g_cpu);
        for (j, g) in g_cpu.iter().enumerate() {
            trainable_elements += 1;
            // Tensors whose gradient is zero but for rounding (the key bias: softmax does not see
            // a constant added to a row's scores) have no determined sign anywhere.
            if g.abs() >= DETERMINED * scale && g.abs() >= 1e-6 * global {
                compared += 1;
                param_gap = param_gap.max((on_cpu[j] - on_gpu[j]).abs());
            }
        }
    }
    eprintln!(
        "{name}: loss cpu {cpu_loss} wgpu {gpu_loss} (gap {loss_gap:.1e}); gradients: max gap \
         {grad_gap:.1e} of the largest gradient; updated parameters: max gap {param_gap:.1e} \
         over {compared} of {trainable_elements} trainable elements"
    );
    assert!(loss_gap < LOSS_TOLERANCE, "{name}: loss gap {loss_gap}");
    assert!(grad_gap < GRAD_TOLERANCE, "{name}: gradient gap {grad_gap}");
    assert!(
        param_gap < PARAM_TOLERANCE,
        "{name}: parameter gap {param_gap}"
    );
    assert!(
        compared * 4 >= trainable_elements * 3,
        "{name}: compared {compared} of {trainable_elements}"
    );
}

#[test]
fn a_pt2_train_step_on_wgpu_matches_the_cpu_and_keeps_the_backbone_frozen() {
    step_like_the_cpu(pt2());
}

#[test]
fn an_ft_train_step_on_wgpu_matches_the_cpu() {
    step_like_the_cpu(Method::Ft);
}

fn logits(model: &TunedModel, device: &Device) -> Vec<f32> {
    let (input, _) = batch(device);
    let Logits::Sequence(logits) = model.forward(&input) else {
        panic!("sequence logits")
    };
    logits.into_data().try_to_vec::<f32>().unwrap()
}

/// Trained on `from`, saved, loaded into a fresh model on `to`: the same logits.
fn crosses(from: &Device, to: &Device, path: &Path) -> f32 {
    let method = pt2();
    let (_, trained) = train(start(&method), &from.clone().autodiff());
    let trained = trained.valid().save_checkpoint(path).unwrap();
    let mut loaded = start(&method).valid().fork(to);
    loaded.load_checkpoint(path).unwrap();
    max_diff(&logits(&trained, from), &logits(&loaded, to))
}

#[test]
fn a_checkpoint_written_on_one_backend_scores_the_same_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let cpu = Device::flex();
    let gap = crosses(&gpu(), &cpu, &dir.path().join("from_gpu.safetensors"));
    eprintln!("trained on wgpu, evaluated on cpu: logit gap {gap:.2e}");
    assert!(gap < LOGIT_TOLERANCE, "wgpu → cpu: {gap}");
    let gap = crosses(&cpu, &gpu(), &dir.path().join("from_cpu.safetensors"));
    eprintln!("trained on cpu, evaluated on wgpu: logit gap {gap:.2e}");
    assert!(gap < LOGIT_TOLERANCE, "cpu → wgpu: {gap}");
}
