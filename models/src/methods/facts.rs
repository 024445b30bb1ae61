//! The facts each method's file declares about itself (`FACTS`), read through
//! `MethodKind::facts`: labels, colour, where its prompts go, what it freezes and trains.

/// Where a method's trainable prompts enter the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptPlace {
    /// No prompts (FT, LoRA): the prompt length is not a setting of the method.
    None,
    /// Vectors before the word embeddings (PT).
    Input,
    /// Key/value prefixes in every (selected) layer (PT2).
    EveryLayer,
}

/// Which of a `TunedModel`'s tensors (module paths, enum variants skipped) a method trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trains {
    Everything,
    /// The tensors whose path matches one of these regexes; the rest is frozen.
    Matching(&'static [&'static str]),
}

/// The task head's tensors, trained under every method (but a verbalizer under a frozen
/// backbone, which stays the checkpoint's masked-LM head).
pub const HEAD_PATHS: &str = r"^head\.";

/// Everything ptv2 says about a method outside the method's own code.
#[derive(Debug)]
pub struct MethodFacts {
    /// Flag, sweep-key and config.json value.
    pub name: &'static str,
    /// Short label for titles and tables (`PT2`).
    pub short: &'static str,
    /// Label in chart legends and reports (`PT2 (P-tuning v2)`).
    pub label: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Its colour in every chart (RGB).
    pub color: (u8, u8, u8),
    pub prompts: PromptPlace,
    pub freezes_backbone: bool,
    /// What the run trains (and so what its checkpoint and resume state hold). A trained context
    /// pooler (`missing_pooler = context`) is part of the head under every method.
    pub trains: Trains,
    /// Served runs of this method can share one copy of the backbone: the method leaves the
    /// encoder's weights as loaded (LoRA merges its update into them, FT trains them).
    pub shares_served_backbone: bool,
    /// PEFT's `peft_type` of the same method, for import/export.
    pub peft_type: Option<&'static str>,
}
