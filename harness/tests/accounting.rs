//! Trainable-parameter accounting: PT2 trains exactly P·L·2·H + head (+ the MLP when on).

use burn::tensor::Device;

use ptv2_models::methods::p_tuning_v2::LayerSelection;
use ptv2_models::{Encoder, EncoderConfig, HeadKind, Method, MethodInit, TunedModel};

fn counts(method: Method, labels: usize) -> (usize, usize) {
    let device = Device::flex().autodiff();
    let config = EncoderConfig::tiny_bert();
    let encoder = Encoder::init(&config, true, &device);
    let init = MethodInit::default();
    let model = TunedModel::new(
        encoder,
        &method,
        &HeadKind::SequenceClassification { num_labels: labels },
        &init,
        &device,
    );
    let c = model.param_counts();
    (c.trainable, c.total)
}

#[test]
fn pt2_trainable_params_follow_the_formula() {
    let (p, l, h, c) = (5, 2, 32, 3);
    let head = h * c + c;
    let plain = Method::pt2(p);
    assert_eq!(counts(plain, c).0, p * l * 2 * h + head);

    let hidden = 16;
    let mlp = p * h + (h * hidden + hidden) + (hidden * l * 2 * h + l * 2 * h);
    let reparam = Method::Pt2 {
        prompt_len: p,
        reparam_hidden: Some(hidden),
        layers: LayerSelection::All,
        init: Default::default(),
        prefix_dropout: None,
    };
    assert_eq!(counts(reparam, c).0, mlp + head);

    let top = Method::Pt2 {
        prompt_len: p,
        reparam_hidden: None,
        layers: LayerSelection::Top(1),
        init: Default::default(),
        prefix_dropout: None,
    };
    assert_eq!(counts(top, c).0, p * 2 * h + head);
}

#[test]
fn pt_and_ft_counts() {
    let (p, h, c) = (5, 32, 2);
    let (ft_trainable, total) = counts(Method::Ft, c);
    assert_eq!(ft_trainable, total);
    let (pt_trainable, pt_total) = counts(
        Method::Pt {
            prompt_len: p,
            init: Default::default(),
            pool: Default::default(),
        },
        c,
    );
    assert_eq!(pt_trainable, p * h + h * c + c);
    assert_eq!(pt_total, total + p * h);
}
