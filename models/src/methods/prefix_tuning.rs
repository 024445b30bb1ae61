//! Prefix-tuning (Li & Liang 2021) by its name: P-tuning v2's key/value prefixes at every layer,
//! trained through Li & Liang's reparameterization MLP (Embedding(P, H) → Linear(H, h) → tanh →
//! Linear(h, L·2·H)), `h` = 512 (their `mid_dim`) unless `reparam_hidden` says otherwise. It is
//! `pt2 --reparam-hidden h` under its own name, label and colour; the checkpoint holds the
//! collapsed prefix, as PT2's does and as PEFT saves a `prefix_projection` adapter.

use super::facts::{MethodFacts, PromptPlace, Trains, HEAD_PATHS};

pub const FACTS: MethodFacts = MethodFacts {
    name: "prefix",
    short: "Prefix",
    label: "Prefix-tuning",
    about:
        "prefix-tuning (Li & Liang 2021): PT2's prefixes trained through an MLP, backbone frozen",
    color: (148, 103, 189),
    prompts: PromptPlace::EveryLayer,
    freezes_backbone: true,
    trains: Trains::Matching(&[r"^adapter\.", HEAD_PATHS]),
    shares_served_backbone: true,
    peft_type: Some("PREFIX_TUNING"),
};

/// Li & Liang's `mid_dim`: the MLP's hidden size when the run does not set one.
pub const MLP_HIDDEN: usize = 512;
