//! The arguments several commands share: where models are cached and what computes, where the
//! benchmark data is, which sweep.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::orchestration::plan::SweepPlan;
use crate::records::run_dir::{PlannedRun, SweepDir};
use crate::run::setup::RunEnv;

/// Where embedded models are cached and what computes.
#[derive(Args, Debug, Clone)]
pub struct MachineArgs {
    /// Where embedded models are fetched to [default: $PTV2_CACHE or ~/.cache/ptv2].
    #[arg(long, env = "PTV2_CACHE")]
    pub cache: Option<PathBuf>,
    /// cpu (burn flex backend), wgpu / vulkan (builds with the wgpu / vulkan feature) or cuda
    /// (builds with the cuda feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl MachineArgs {
    pub fn cache_dir(&self) -> PathBuf {
        self.cache
            .clone()
            .unwrap_or_else(ptv2_models::hub::default_cache_dir)
    }
}

/// Where a command that loads runs finds models and data: the machine's cache and device, the
/// benchmark data dir.
#[derive(Args, Debug, Clone)]
pub struct EnvArgs {
    #[command(flatten)]
    pub machine: MachineArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

impl EnvArgs {
    /// Where one run in `dir` reads and writes; `verbose` draws its progress and epoch lines.
    pub fn run_env(&self, dir: &Path, verbose: bool) -> Result<RunEnv> {
        Ok(RunEnv {
            cache: self.machine.cache_dir(),
            device: self.machine.device.clone(),
            data_dir: self.data.dir()?,
            out: dir.to_path_buf(),
            progress: verbose.then(indicatif::MultiProgress::new),
            verbose,
            stop_after: None,
        })
    }
}

/// Where the benchmark files are.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Benchmark data dir [default: $PTV2_DATA or ../shared/data].
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl DataArgs {
    pub fn dir(&self) -> Result<PathBuf> {
        crate::records::data::resolve_data_dir(self.data.as_deref())
    }
}

/// A sweep and where its files are.
#[derive(Args, Debug, Clone)]
pub struct SweepPaths {
    /// Sweep name (`experiments/NAME.toml`) or a path to a sweep TOML file.
    pub name: String,
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    /// Results go to REPORTS/NAME/.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
}

impl SweepPaths {
    /// The sweep's TOML file: `experiments/NAME.toml`, or the argument when it is a path.
    pub fn file(&self) -> PathBuf {
        if self.name.ends_with(".toml") {
            PathBuf::from(&self.name)
        } else {
            self.experiments.join(format!("{}.toml", self.name))
        }
    }

    /// Its name (the reports dir): the file stem of a path, else the argument.
    pub fn sweep_name(&self) -> String {
        Path::new(&self.name)
            .file_stem()
            .map_or_else(|| self.name.clone(), |s| s.to_string_lossy().to_string())
    }

    pub fn dir(&self) -> SweepDir {
        SweepDir(self.reports.join(self.sweep_name()))
    }

    /// Where `tools/just bench` (`ptv2 bench`'s default `--out`) writes its rows, which
    /// `--dry-run` prices runs by.
    pub fn bench_csv(&self) -> PathBuf {
        self.reports.join("bench").join("bench.csv")
    }

    /// What its file asks for; run dirs of an older id scheme are renamed to their ids now first.
    pub fn plan(&self) -> Result<SweepPlan> {
        let path = self.file();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read sweep file {}", path.display()))?;
        let plan = crate::orchestration::plan::plan(&text, &path.display().to_string())?;
        let moved = self.dir().adopt_older_runs()?;
        if moved > 0 {
            eprintln!("renamed {moved} run dirs of an older ptv2 to their ids now");
        }
        Ok(plan)
    }

    /// The runs its results are read from: a grid's runs, or a search's best configurations at
    /// every seed (of the groups searched so far).
    pub fn runs(&self) -> Result<Vec<PlannedRun>> {
        self.plan()?.result_runs(&self.dir())
    }
}
