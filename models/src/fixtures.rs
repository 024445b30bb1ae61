//! Small fixed inputs that tests of both crates share (the tiny configs are
//! `EncoderConfig::tiny_bert` and `tiny_deberta`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

use crate::encoder::EncoderInput;
use crate::methods::loss::Targets;
use crate::methods::TunedModel;

/// Two rows of six tokens (the first with one padded slot) and their two classes.
pub fn two_row_batch(device: &Device) -> (EncoderInput, Targets) {
    let ids = vec![2i64, 15, 27, 33, 3, 0, 2, 41, 9, 3, 12, 4];
    let mask = vec![1i64, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1];
    (
        EncoderInput::from_rows(ids, mask, [2, 6], device),
        Targets::Classes(vec![1, 0]),
    )
}

/// Every float parameter of a model in visiting order: its path-independent id, whether it
/// trains, its values.
#[derive(Default)]
pub struct ParamSnapshot(pub Vec<(String, bool, Vec<f32>)>);

impl ModuleVisitor for ParamSnapshot {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let trainable = tensor.is_require_grad();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 parameters");
        self.0.push((param.id.to_string(), trainable, values));
    }
}

pub fn snapshot(model: &TunedModel) -> ParamSnapshot {
    let mut s = ParamSnapshot::default();
    model.visit(&mut s);
    s
}
