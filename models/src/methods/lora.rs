//! LoRA (Hu et al. 2021) as PEFT 0.11 applies it to BERT/RoBERTa: the chosen attention
//! projections of every layer get a trainable low-rank update, `W + (alpha / r) · A·B`, the rest
//! of the encoder (pooler too) stays frozen, and the task head is trained.
//!
//! The update rides on burn's own parameter reparameterization (`burn::module::LoraAdapter`):
//! the encoder's code does not change, a `Linear` whose weight carries an adapter computes with the
//! effective weight, and `Module::materialize` merges the adapters for inference. What is ours is
//! PEFT's init — A ~ U(±1/√in) (`kaiming_uniform_(a=√5)`), B = 0 — and the choice of projections.
//! burn keeps weights as `[in, out]`, so `a` is PEFT's `lora_A.weight` transposed (`[in, r]`) and
//! `b` its `lora_B.weight` transposed (`[r, out]`).

use burn::module::{LoraAdapter, Module, Param, Reparameterizer};
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::facts::{MethodFacts, PromptPlace, Trains, HEAD_PATHS};
use crate::encoder::Encoder;

pub const FACTS: MethodFacts = MethodFacts {
    name: "lora",
    short: "LoRA",
    label: "LoRA",
    about: "LoRA, as PEFT: low-rank updates of the attention projections, backbone frozen",
    color: (44, 160, 44),
    prompts: PromptPlace::None,
    freezes_backbone: true,
    trains: Trains::Matching(&[r"\.lora\.(a|b)$", HEAD_PATHS]),
    shares_served_backbone: false,
    peft_type: Some("LORA"),
};

/// Which projections of each layer get an update: a subset of q, k, v (self-attention query, key,
/// value) and o (the attention output dense). PEFT's default for BERT is `q,v`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct LoraTargets(Vec<Target>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Query,
    Key,
    Value,
    Output,
}

impl Target {
    const ALL: [(Target, &'static str); 4] = [
        (Target::Query, "q"),
        (Target::Key, "k"),
        (Target::Value, "v"),
        (Target::Output, "o"),
    ];

    pub fn letter(self) -> &'static str {
        Self::ALL.iter().find(|(t, _)| *t == self).unwrap().1
    }

    /// PEFT's `target_modules` name.
    pub fn peft_name(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Key => "key",
            Self::Value => "value",
            Self::Output => "attention.output.dense",
        }
    }

    /// The target PEFT's `target_modules` calls `name`, if ptv2 has it.
    pub fn from_peft_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .map(|(t, _)| *t)
            .find(|t| t.peft_name() == name)
    }

    /// The weight's path inside a layer, as burn's module paths and HF's checkpoint name it.
    pub fn paths(self) -> (&'static str, &'static str) {
        match self {
            Self::Query => ("attention.self_attn.query", "attention.self.query"),
            Self::Key => ("attention.self_attn.key", "attention.self.key"),
            Self::Value => ("attention.self_attn.value", "attention.self.value"),
            Self::Output => ("attention.output.dense", "attention.output.dense"),
        }
    }
}

impl Default for LoraTargets {
    fn default() -> Self {
        Self(vec![Target::Query, Target::Value])
    }
}

impl LoraTargets {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub fn targets(&self) -> &[Target] {
        &self.0
    }

    /// Parse a comma-separated subset of `q,k,v,o` (any order, no repeats).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("LoRA targets \"{text}\": {why}; expected a comma-separated subset of q,k,v,o (e.g. q,v)")
        };
        let mut targets = Vec::new();
        for letter in text.split(',').map(str::trim) {
            let Some((target, _)) = Target::ALL.iter().find(|(_, l)| *l == letter) else {
                return Err(bad(&format!("unknown \"{letter}\"")));
            };
            if targets.contains(target) {
                return Err(bad(&format!("\"{letter}\" twice")));
            }
            targets.push(*target);
        }
        targets.sort();
        Ok(Self(targets))
    }
}

impl std::fmt::Display for LoraTargets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let letters: Vec<&str> = self.0.iter().map(|t| t.letter()).collect();
        write!(f, "{}", letters.join(","))
    }
}

crate::text_form!(LoraTargets);

/// Attaches PEFT-initialised LoRA factors to the target weights of an encoder.
struct PeftLora<'a> {
    rank: usize,
    scale: f64,
    targets: &'a LoraTargets,
}

impl PeftLora<'_> {
    fn is_target(&self, path: &str) -> bool {
        self.targets
            .targets()
            .iter()
            .any(|t| path.ends_with(&format!("{}.weight", t.paths().0)))
    }
}

impl Reparameterizer for PeftLora<'_> {
    type Reparam = LoraAdapter;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<LoraAdapter>) {
        if D != 2 || !self.is_target(path) {
            return (param, None);
        }
        let device = param.lazy_device();
        let shape = param.lazy_shape();
        let [d_in, d_out] = [shape[0], shape[1]];
        // kaiming_uniform_(a=√5) on torch's [r, in] weight: bound = √(6 / ((1 + 5) · in)) = 1/√in.
        let bound = 1.0 / (d_in as f64).sqrt();
        let adapter = LoraAdapter {
            a: Param::from_tensor(Tensor::random(
                [d_in, self.rank],
                Distribution::Uniform(-bound, bound),
                &device,
            )),
            b: Param::from_tensor(Tensor::zeros([self.rank, d_out], &device)),
            scale: self.scale,
        };
        (param, Some(adapter))
    }
}

/// `encoder` (already frozen) with trainable LoRA factors on `targets` in every layer.
pub fn attach(encoder: Encoder, rank: usize, alpha: f64, targets: &LoraTargets) -> Encoder {
    encoder.apply_reparameterization(PeftLora {
        rank,
        scale: alpha / rank as f64,
        targets,
    })
}

/// Whether any weight of `encoder` carries LoRA factors.
pub fn has_adapters(encoder: &Encoder) -> bool {
    encoder.encoder.layer.iter().any(|layer| {
        let attention = &layer.attention;
        [
            &attention.self_attn.query,
            &attention.self_attn.key,
            &attention.self_attn.value,
            &attention.output.dense,
        ]
        .iter()
        .any(|linear| linear.weight.adapter().is_some())
    })
}

/// (pattern, replacement) pairs for burn-store's key remapping.
pub type Renames = Vec<(String, String)>;

/// How a checkpoint names the factors, `lora.{layer}.{q|k|v|o}.{a|b}`, against the module paths
/// (`encoder.encoder.layer.{layer}.….weight.lora.{a|b}`): (module-path regex, file name) pairs
/// for saving, and (file-name regex, module path) pairs for loading.
pub fn checkpoint_names() -> (Renames, Renames) {
    let mut save = Vec::new();
    let mut load = Vec::new();
    for (target, letter) in Target::ALL {
        let module = format!(
            "encoder.encoder.layer.{{layer}}.{}.weight.lora.{{factor}}",
            target.paths().0
        );
        let file = format!("lora.{{layer}}.{letter}.{{factor}}");
        let pattern = |text: &str| {
            let escaped = format!("^{}$", text.replace('.', r"\."));
            escaped
                .replace("{layer}", r"(\d+)")
                .replace("{factor}", "(a|b)")
        };
        let replacement = |text: &str| text.replace("{layer}", "${1}").replace("{factor}", "${2}");
        save.push((pattern(&module), replacement(&file)));
        load.push((pattern(&file), replacement(&module)));
    }
    (save, load)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EncoderConfig;
    use burn::tensor::Device;

    #[test]
    fn targets_parse_sorted_and_refuse_unknown_or_repeated() {
        assert_eq!(LoraTargets::parse("v,q").unwrap().to_string(), "q,v");
        assert_eq!(LoraTargets::default().to_string(), "q,v");
        assert_eq!(LoraTargets::parse("q,k,v,o").unwrap().targets().len(), 4);
        let unknown = LoraTargets::parse("q,ffn").unwrap_err();
        assert!(unknown.contains("unknown \"ffn\""), "{unknown}");
        assert!(LoraTargets::parse("q,q").unwrap_err().contains("twice"));
    }

    #[test]
    fn attach_adapts_only_the_targets_and_starts_as_the_base() {
        let device = Device::flex();
        let config = EncoderConfig::tiny_bert();
        let encoder = Encoder::init(&config, false, &device).no_grad();
        let before = encoder.encoder.layer[0]
            .attention
            .self_attn
            .value
            .weight
            .val();
        let adapted = attach(encoder, 2, 4.0, &LoraTargets::default());
        assert!(has_adapters(&adapted));
        let attention = &adapted.encoder.layer[1].attention;
        assert!(attention.self_attn.query.weight.adapter().is_some());
        assert!(attention.self_attn.key.weight.adapter().is_none());
        assert!(attention.output.dense.weight.adapter().is_none());
        let adapter = attention.self_attn.value.weight.adapter().unwrap();
        assert_eq!(adapter.scale, 2.0);
        assert_eq!(adapter.a.val().dims(), [config.hidden_size, 2]);
        // B = 0: the adapted weight is the base until trained.
        let after = adapted.encoder.layer[0]
            .attention
            .self_attn
            .value
            .weight
            .val();
        assert_eq!(after.into_data(), before.into_data());
    }
}
