//! What a sweep file asks for: a grid's runs (`sweep.rs`), or a search (`search.rs`).

use anyhow::Result;

use crate::orchestration::search::Search;
use crate::orchestration::sweep::{combos, grid_runs, parse_root, table};
use crate::records::run_dir::PlannedRun;

#[derive(Debug, Clone)]
pub enum SweepPlan {
    Grid(Vec<PlannedRun>),
    Search(Search),
}

/// A sweep file's plan; errors name the file and key.
pub fn plan(text: &str, source: &str) -> Result<SweepPlan> {
    let root = parse_root(text, source)?;
    if !root.contains_key("search") {
        return Ok(SweepPlan::Grid(grid_runs(&root, source)?));
    }
    let grid_seeds = table(&root, "grid", source)?
        .and_then(|g| g.get("seed"))
        .cloned();
    let combos = combos(&root, source, &["seed"])?;
    Ok(SweepPlan::Search(Search::new(
        &root, combos, grid_seeds, source,
    )?))
}
