//! FT — full fine-tuning, the paper's reference point: nothing is injected and nothing is
//! frozen; the whole encoder and the head train.

use super::facts::{MethodFacts, PromptPlace, Trains};

pub const FACTS: MethodFacts = MethodFacts {
    name: "ft",
    short: "FT",
    label: "FT (fine-tuning)",
    about: "full fine-tuning: every weight trains",
    color: (60, 60, 60),
    prompts: PromptPlace::None,
    freezes_backbone: false,
    trains: Trains::Everything,
    shares_served_backbone: false,
    peft_type: None,
};
