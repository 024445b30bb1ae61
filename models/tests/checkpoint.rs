//! Checkpoints keep their tensor names (`prompt.embedding`, `prefix.embedding`, `head.…`, and the
//! whole model under FT) and reload into a new model to the same logits.

use burn::tensor::{Device, Int, Tensor, TensorData};

use ptv2_models::methods::p_tuning_v2::LayerSelection;
use ptv2_models::{
    Encoder, EncoderConfig, EncoderInput, HeadKind, Logits, Method, MethodInit, TunedModel,
};

fn input(device: &Device) -> EncoderInput {
    let row = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [1, 5]), device);
    EncoderInput {
        input_ids: row(vec![2, 15, 27, 33, 3]),
        attention_mask: row(vec![1; 5]),
        token_type_ids: row(vec![0; 5]),
    }
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
        let trained = trained.save_checkpoint(&method, &path).unwrap();
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
    ft.save_checkpoint(&Method::Ft, &path).unwrap();
    let all = names(&path);
    assert!(all.contains(&"head.classifier.weight".to_string()));
    assert!(
        all.iter().any(|n| n.starts_with("encoder.")) && !all.iter().any(|n| n.contains("adapter")),
        "{all:?}"
    );
}
