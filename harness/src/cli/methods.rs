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
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/methods.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let table = super::methods_markdown();
        assert!(
            doc.contains(&table),
            "docs/methods.md's method table is out of date; replace it with `ptv2 methods`:\n{table}"
        );
    }
}
