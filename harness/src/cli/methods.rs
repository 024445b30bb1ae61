//! `ptv2 methods`: the method registry as a markdown table (docs/methods.md holds it, and a test
//! keeps it current).

use anyhow::Result;
use ptv2_models::methods::{MethodKind, PromptPlace, Trains};

pub fn run() -> Result<()> {
    print!("{}", methods_markdown());
    Ok(())
}

/// One row per registered method: what it is, where its prompts go, what it trains.
pub fn methods_markdown() -> String {
    let mut out = String::from(
        "| method | label | what it is | prompts | backbone | trains (module paths) | PEFT type |\n|---|---|---|---|---|---|---|\n",
    );
    for kind in MethodKind::ALL {
        let f = kind.facts();
        let prompts = match f.prompts {
            PromptPlace::None => "none",
            PromptPlace::Input => "input layer",
            PromptPlace::EveryLayer => "every layer (key/value prefixes)",
        };
        let backbone = if f.freezes_backbone {
            "frozen"
        } else {
            "trained"
        };
        let trains = match f.trains {
            Trains::Everything => "everything".to_string(),
            Trains::Matching([]) => "nothing".to_string(),
            Trains::Matching(patterns) => patterns
                .iter()
                .map(|p| format!("`{}`", p.replace('|', "\\|")))
                .collect::<Vec<_>>()
                .join(", "),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {prompts} | {backbone} | {trains} | {} |\n",
            f.name,
            f.label,
            f.about,
            f.peft_type.unwrap_or("–")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_methods_holds_the_generated_table() {
        crate::cli::assert_doc_holds("docs/methods.md", &super::methods_markdown(), "methods");
    }
}
