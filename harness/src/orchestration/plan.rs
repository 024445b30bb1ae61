//! What a sweep file asks for: a grid's runs (`sweep.rs`), or a search (`search.rs`).

use anyhow::Result;

use crate::orchestration::search::Search;
use crate::orchestration::sweep::{combos, grid_runs, parse_root, table};
use crate::records::run_dir::{PlannedRun, SweepDir};

#[derive(Debug, Clone)]
pub enum SweepPlan {
    Grid(Vec<PlannedRun>),
    Search(Search),
}

impl SweepPlan {
    /// The runs its results are read from: a grid's runs, or a search's best configurations at
    /// every seed (of the groups searched so far in `dir`).
    pub fn result_runs(&self, dir: &SweepDir) -> Result<Vec<PlannedRun>> {
        match self {
            Self::Grid(runs) => Ok(runs.clone()),
            Self::Search(search) => crate::orchestration::search_run::result_runs(search, dir),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed sweep plans (its keys, values and search spaces valid), grids and searches.
    #[test]
    fn every_committed_sweep_plans() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
        let mut searches = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".toml") || name == "templates.toml" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            match plan(&text, &name) {
                Ok(SweepPlan::Grid(runs)) => assert!(!runs.is_empty(), "{name}"),
                Ok(SweepPlan::Search(search)) => {
                    searches += 1;
                    assert!(search.groups.iter().all(|g| !g.trials.is_empty()), "{name}");
                }
                Err(err) => panic!("{err:#}"),
            }
        }
        assert!(searches >= 1, "lr-search is a search");
    }
}
