//! The verbalizer head: a class's score is the masked-LM logit of its label word at the input's
//! `[MASK]` (LM-BFF, Gao et al. 2021; what discrete prompting reads, and the paper's ablation of
//! the classification head). The template that puts one `[MASK]` into every input is the
//! harness's; this head finds it by its token id.
//!
//! Only the label words' rows of the decoder are computed: `transform(h_mask) · E[words]ᵀ +
//! b[words]`, `[batch, classes]`, the same numbers as the whole vocabulary's logits at those ids.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::mlm_head::MlmHead;

#[derive(Module, Debug)]
pub struct VerbalizerHead {
    pub mlm: MlmHead,
    /// Each class's label word, in class order.
    #[module(skip)]
    pub label_ids: Vec<i64>,
    #[module(skip)]
    pub mask_id: i64,
}

impl VerbalizerHead {
    /// Class scores `[batch, classes]` of hidden states `[batch, seq, H]` whose inputs
    /// `[batch, seq]` hold one `[MASK]` each; `word_embeddings` `[V, H]` is the tied decoder.
    pub fn forward(
        &self,
        hidden: Tensor<3>,
        input_ids: &Tensor<2, Int>,
        word_embeddings: Tensor<2>,
    ) -> Tensor<2> {
        let [batch, _, width] = hidden.dims();
        let device = hidden.device();
        // One-hot over positions: the sum picks each row's [MASK] state.
        let at_mask = input_ids.clone().equal_elem(self.mask_id).float();
        let picked: Tensor<2> = (hidden * at_mask.unsqueeze_dim::<3>(2))
            .sum_dim(1)
            .reshape([batch, width]);
        let words = self.label_tensor(&device);
        let decoder = word_embeddings.select(0, words.clone());
        let bias = self.mlm.bias.val().select(0, words);
        self.mlm
            .transform(picked)
            .matmul(decoder.transpose())
            .add(bias.unsqueeze())
    }

    fn label_tensor(&self, device: &Device) -> Tensor<1, Int> {
        let n = self.label_ids.len();
        Tensor::from_data(TensorData::new(self.label_ids.clone(), [n]), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EncoderConfig;

    /// The head's scores are the full masked-LM logits at the [MASK], read at the label words.
    #[test]
    fn scores_are_the_mlm_logits_of_the_label_words_at_the_mask() {
        let device = Device::flex();
        let config = EncoderConfig::tiny_bert();
        let (vocab, width) = (config.vocab_size, config.hidden_size);
        let random = |dims: [usize; 2]| {
            Tensor::<2>::random(dims, burn::tensor::Distribution::Default, &device)
        };
        let embeddings = random([vocab, width]);
        let mlm = MlmHead {
            bias: burn::module::Param::from_tensor(random([1, vocab]).reshape([vocab])),
            ..MlmHead::init(&config, &device)
        };
        let head = VerbalizerHead {
            mlm,
            label_ids: vec![7, 3, 11],
            mask_id: 5,
        };
        let hidden: Tensor<3> = random([8, width]).reshape([2, 4, width]);
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 5, 2, 0, 1, 2, 9, 5], [2, 4]),
            &device,
        );
        let scores = head.forward(hidden.clone(), &ids, embeddings.clone());
        let full = head.mlm.forward(hidden, embeddings);
        for (row, mask_at) in [(0usize, 1usize), (1, 3)] {
            for (class, &word) in head.label_ids.iter().enumerate() {
                let want = full
                    .clone()
                    .slice([
                        row..row + 1,
                        mask_at..mask_at + 1,
                        word as usize..word as usize + 1,
                    ])
                    .into_scalar::<f32>();
                let got = scores
                    .clone()
                    .slice([row..row + 1, class..class + 1])
                    .into_scalar::<f32>();
                assert!(
                    (want - got).abs() < 1e-5,
                    "row {row} class {class}: {got} vs {want}"
                );
            }
        }
    }
}
