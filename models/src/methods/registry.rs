//! The methods by kind, and the one table of what the rest of ptv2 asks about a method: its
//! name and labels, its colour in charts, where it puts prompts, what it freezes and trains,
//! whether served runs may share its backbone and its PEFT type. (What the PyTorch replay covers
//! depends on options and heads too; `replay::check_supported` decides it, by method.)
//!
//! Each method's file owns its `FACTS`; `MethodKind::facts` is the only `match` that lists them,
//! so a new variant makes the compiler point at this file (and at `Method`'s own matches), and
//! every other place looks the method up here instead of comparing names.

use serde::{Deserialize, Serialize};

use super::facts::{MethodFacts, PromptPlace, Trains};
use super::{discrete_prompting, fine_tuning, lora, p_tuning};
use super::{p_tuning_v2, prefix_tuning, prompt_tuning};

/// A tuning method, written as its lowercase name (`prompt`, `ft`, `pt`, `ptuning`, `pt2`,
/// `prefix`, `lora`) in flags, sweep files and config.json. Ordered as the paper's tables (and ptv2's charts) list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    Prompt,
    Ft,
    Pt,
    Ptuning,
    Pt2,
    Prefix,
    Lora,
}

impl MethodKind {
    /// Every method, in the paper's order.
    pub const ALL: [MethodKind; 7] = [
        Self::Prompt,
        Self::Ft,
        Self::Pt,
        Self::Ptuning,
        Self::Pt2,
        Self::Prefix,
        Self::Lora,
    ];

    pub fn facts(self) -> &'static MethodFacts {
        match self {
            Self::Prompt => &discrete_prompting::FACTS,
            Self::Ft => &fine_tuning::FACTS,
            Self::Pt => &prompt_tuning::FACTS,
            Self::Ptuning => &p_tuning::FACTS,
            Self::Pt2 => &p_tuning_v2::FACTS,
            Self::Prefix => &prefix_tuning::FACTS,
            Self::Lora => &lora::FACTS,
        }
    }

    pub fn name(self) -> &'static str {
        self.facts().name
    }

    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|m| m.name()).collect()
    }

    pub fn has_prompts(self) -> bool {
        self.facts().prompts != PromptPlace::None
    }

    /// Nothing to train (discrete prompting): the run is one evaluation.
    pub fn trains_nothing(self) -> bool {
        matches!(self.facts().trains, Trains::Matching(patterns) if patterns.is_empty())
    }

    pub fn freezes_backbone(self) -> bool {
        self.facts().freezes_backbone
    }

    /// The method whose PEFT `peft_type` this is (the first listed: PREFIX_TUNING is PT2's; an
    /// adapter's `prefix_projection` makes it prefix-tuning's).
    pub fn from_peft_type(peft_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.facts().peft_type == Some(peft_type))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown method \"{text}\": expected {}",
                    Self::names().join(", ")
                )
            })
    }
}

impl std::fmt::Display for MethodKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for MethodKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

impl clap::ValueEnum for MethodKind {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.facts().about))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_serde_and_peft() {
        for kind in MethodKind::ALL {
            assert_eq!(kind.name().parse::<MethodKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            if let Some(peft) = kind
                .facts()
                .peft_type
                .filter(|_| kind != MethodKind::Prefix)
            {
                assert_eq!(MethodKind::from_peft_type(peft), Some(kind));
            }
        }
        assert_eq!(
            MethodKind::names(),
            ["prompt", "ft", "pt", "ptuning", "pt2", "prefix", "lora"]
        );
        assert!("p2"
            .parse::<MethodKind>()
            .unwrap_err()
            .contains("prompt, ft, pt, ptuning, pt2, prefix, lora"));
    }
}
