//! Discrete prompting, zero-shot (the paper's first baseline; Shin et al. 2020, Gao et al. 2021's
//! manual templates): each input is wrapped in a template with one `[MASK]` ("<S1> It was
//! [MASK] ."), and the checkpoint's own masked-LM head scores each class by its label word
//! ("great", "terrible") there. Nothing is added to the model and nothing trains: the run is
//! one evaluation of the pretrained model, with the verbalizer head (`verbalizer.rs`) and the
//! harness's templates. No calibration.

use super::facts::{MethodFacts, PromptPlace, Trains};

pub const FACTS: MethodFacts = MethodFacts {
    name: "prompt",
    short: "Prompt",
    label: "Discrete prompt (zero-shot)",
    about: "discrete prompting (Gao et al. 2021's manual templates): a template and label words read by the checkpoint's masked-LM head, nothing trained (needs a …ForMaskedLM model)",
    color: (140, 86, 75),
    prompts: PromptPlace::None,
    freezes_backbone: true,
    trains: Trains::Matching(&[]),
    shares_served_backbone: true,
    peft_type: None,
};
