//! Published numbers a sweep sets its results beside: `[[reference]]` tables in a sweep file,
//! each a score of one method on one task with another model and where it was published. The
//! report puts them next to the sweep's own means, so a reader sees where the sweep's model sits
//! on the claim's scale axis.

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use ptv2_models::MethodKind;

/// One published score.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// The sweep's task it stands beside (`conll2003`).
    pub task: String,
    pub method: MethodKind,
    /// The model it was measured on (`roberta-large (355M)`).
    pub model: String,
    /// In points (91.8), as published.
    pub score: f64,
    /// What the number is (`test F1 at the best dev epoch`) and where it was published.
    pub source: String,
}

/// The `[[reference]]` tables of a parsed sweep file (none: empty); `source` names the file.
pub fn references(root: &toml::Table, source: &str) -> Result<Vec<Reference>> {
    let Some(value) = root.get("reference") else {
        return Ok(vec![]);
    };
    let Some(tables) = value.as_array() else {
        bail!("{source}: \"reference\" must be [[reference]] tables");
    };
    tables
        .iter()
        .enumerate()
        .map(|(i, table)| {
            table
                .clone()
                .try_into()
                .with_context(|| format!("{source} [[reference]] {}: expected task, method, model, score (points) and source", i + 1))
        })
        .collect()
}

/// `references` of a sweep file's text; a file that does not parse has none.
pub fn references_in(text: &str) -> Vec<Reference> {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|root| references(&root, "").ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_bad_ones_name_the_table() {
        let text = "[[reference]]\ntask = \"conll2003\"\nmethod = \"pt2\"\nmodel = \"roberta-large\"\nscore = 91.8\nsource = \"README\"\n";
        let refs = references_in(text);
        assert_eq!(refs.len(), 1);
        assert_eq!((refs[0].method, refs[0].score), (MethodKind::Pt2, 91.8));
        let bad: toml::Table = toml::from_str("[[reference]]\ntask = \"x\"\n").unwrap();
        let error = format!("{:#}", references(&bad, "s.toml").unwrap_err());
        assert!(
            error.contains("s.toml [[reference]] 1: expected task"),
            "{error}"
        );
    }
}
