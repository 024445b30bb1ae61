//! Real-token inits: a PT2 prefix started from tokens equals the frozen encoder's own key/value
//! projections of those tokens in every layer (computed here directly, layer by layer, from
//! truncated encoders), and PT prompts equal their word embeddings.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use ptv2_models::methods::p_tuning_v2::LayerSelection;
use ptv2_models::{
    Encoder, EncoderConfig, EncoderInput, HeadKind, Method, MethodInit, PromptInit, Prompts,
    TunedModel,
};

/// `[CLS] t_1 … t_4 [SEP]` in the tiny vocabulary.
const IDS: [i64; 6] = [2, 17, 5, 29, 11, 3];
const P: usize = 4;

fn init() -> MethodInit {
    MethodInit {
        dropout: 0.1,
        init_std: 0.02,
        init_tokens: Some(IDS.to_vec()),
        ..MethodInit::default()
    }
}

fn input(device: &Device) -> EncoderInput {
    EncoderInput::from_rows(IDS.to_vec(), vec![1; IDS.len()], [1, IDS.len()], device)
}

fn close(a: Tensor<2>, b: Tensor<2>) {
    let (a, b) = (
        a.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
        b.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "max difference {worst}");
}

#[test]
fn a_prefix_from_tokens_is_the_encoders_keys_and_values_of_them() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let config = EncoderConfig::tiny_bert();
    let encoder = Encoder::init(&config, true, &device);
    let plain = encoder.clone().valid();
    let method = Method::Pt2 {
        prompt_len: P,
        reparam_hidden: None,
        layers: LayerSelection::All,
        init: PromptInit::Text("four words".into()),
        prefix_dropout: None,
    };
    let head = HeadKind::SequenceClassification { num_labels: 2 };
    let model = TunedModel::new(encoder, &method, &head, &init(), &device);
    let flat = model.prefix().unwrap().flat();
    let hidden = config.hidden_size;
    assert_eq!(flat.dims(), [P, config.num_hidden_layers * 2 * hidden]);
    assert!(flat.is_require_grad(), "the prefix trains");

    let x = input(&plain.embeddings.word_embeddings.weight.val().device());
    for layer in 0..config.num_hidden_layers {
        // The input of layer `layer` is the output of an encoder cut to its first `layer` layers.
        let below = plain
            .clone()
            .truncate_layers(layer)
            .forward(&x, &Prompts::none());
        let attention = &plain.encoder.layer[layer].attention.self_attn;
        let rows = |t: Tensor<3>| t.narrow(1, 1, P).reshape([P, hidden]);
        let key = rows(attention.key.forward(below.last_hidden_state.clone()));
        let value = rows(attention.value.forward(below.last_hidden_state));
        let at = |k: usize| flat.clone().narrow(1, (2 * layer + k) * hidden, hidden);
        close(at(0), Tensor::from_data(key.into_data(), &device));
        close(at(1), Tensor::from_data(value.into_data(), &device));
    }
}

#[test]
fn a_top_layers_prefix_takes_those_layers_activations_and_prompts_take_word_embeddings() {
    let device = Device::flex().autodiff();
    device.seed(4);
    let config = EncoderConfig::tiny_bert();
    let encoder = Encoder::init(&config, true, &device);
    let last = config.num_hidden_layers - 1;
    let top = Method::Pt2 {
        prompt_len: P,
        reparam_hidden: None,
        layers: LayerSelection::Top(1),
        init: PromptInit::Vocab,
        prefix_dropout: None,
    };
    let all = Method::Pt2 {
        prompt_len: P,
        reparam_hidden: None,
        layers: LayerSelection::All,
        init: PromptInit::Vocab,
        prefix_dropout: None,
    };
    let head = HeadKind::SequenceClassification { num_labels: 2 };
    let full = TunedModel::new(encoder.clone(), &all, &head, &init(), &device);
    let top = TunedModel::new(encoder.clone(), &top, &head, &init(), &device);
    let width = 2 * config.hidden_size;
    close(
        top.prefix().unwrap().flat(),
        full.prefix().unwrap().flat().narrow(1, last * width, width),
    );

    let pt = Method::Pt {
        prompt_len: P,
        init: PromptInit::Vocab,
        pool: Default::default(),
    };
    let prompted = TunedModel::new(encoder.clone(), &pt, &head, &init(), &device);
    let words = encoder.embeddings.word_embeddings.weight.val();
    let expected: Vec<Tensor<2>> = IDS[1..=P]
        .iter()
        .map(|&id| words.clone().narrow(0, id as usize, 1))
        .collect();
    close(
        prompted.prompt().unwrap().embedding.val(),
        Tensor::cat(expected, 0),
    );
}
