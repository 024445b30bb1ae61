//! Command-line arguments shared by the commands, and the `train` / `eval` commands.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use ptv2_models::methods::p_tuning_v2::LayerSelection;
use ptv2_models::{Method, PromptInit};

use crate::data::resolve_data_dir;
use crate::optim::Schedule;
use crate::sweep::{sweep_file, sweep_name};
use crate::train::{evaluate_checkpoint, train, RunConfig, RunEnv, METRICS_FILE};

/// How a command finds its model and where it runs.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A Hugging Face model dir, or an embedded model name (`minilm-l6`, `minilm-l6@2` = first 2 layers).
    #[arg(long, default_value = ptv2_models::DEFAULT_MODEL)]
    pub model: String,
    /// Where embedded models are fetched to [default: $PTV2_CACHE or ~/.cache/ptv2].
    #[arg(long, env = "PTV2_CACHE")]
    pub cache: Option<PathBuf>,
    /// cpu (burn flex backend) or cuda (builds with the cuda feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl ModelArgs {
    pub fn cache_dir(&self) -> PathBuf {
        self.cache
            .clone()
            .unwrap_or_else(ptv2_models::hub::default_cache_dir)
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Task name (sst2, rte, mrpc, cola, …).
    #[arg(long)]
    pub task: String,
    /// ft (full fine-tuning), pt (prompt tuning), pt2 (P-tuning v2).
    #[arg(long)]
    pub method: String,
    /// Prompt length P for pt and pt2.
    #[arg(long, default_value_t = 16)]
    pub prompt_len: usize,
    /// pt2: train the prefix through an MLP with this hidden size (reparameterization).
    #[arg(long)]
    pub reparam_hidden: Option<usize>,
    /// pt2: which layers get a prefix: all, top:K or bottom:K.
    #[arg(long, default_value = "all")]
    pub prefix_layers: String,
    /// pt: how the prompts start: random, vocab (frequent training tokens' word embeddings) or
    /// text:WORDS.
    #[arg(long, default_value = "random")]
    pub prompt_init: String,
    /// pt2: how the prefix starts: random, vocab (the frozen encoder's keys/values of frequent
    /// training tokens, every layer) or text:WORDS.
    #[arg(long, default_value = "random")]
    pub prefix_init: String,
    #[arg(long)]
    pub lr: f64,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Train on a fixed random subset of this many examples.
    #[arg(long)]
    pub max_train: Option<usize>,
    /// Evaluate on the first this-many dev examples.
    #[arg(long)]
    pub max_eval: Option<usize>,
    /// Maximum tokens per example (longest-first truncation).
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// Dropout on the prefix and before the head.
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f64,
    /// linear, linear:WARMUP_RATIO or exp:GAMMA (per epoch).
    #[arg(long, default_value = "linear")]
    pub schedule: String,
    /// Benchmark data dir [default: $PTV2_DATA or ../shared/data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output dir for config.json, metrics.json, the checkpoint and predictions.
    #[arg(long)]
    pub out: PathBuf,
}

/// A method's options as the command line and sweep files name them.
pub struct MethodOptions<'a> {
    pub prompt_len: usize,
    pub reparam_hidden: Option<usize>,
    pub prefix_layers: &'a str,
    pub prompt_init: &'a str,
    pub prefix_init: &'a str,
}

impl Default for MethodOptions<'_> {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            prompt_len: 16,
            reparam_hidden: None,
            prefix_layers: "all",
            prompt_init: "random",
            prefix_init: "random",
        }
    }
}

/// Build a method from its name and options; options another method has are ignored.
pub fn method_from(name: &str, o: &MethodOptions) -> Result<Method> {
    let layers = LayerSelection::parse(o.prefix_layers).map_err(anyhow::Error::msg)?;
    let init =
        |key: &str, text: &str| PromptInit::parse(text).map_err(|e| anyhow::anyhow!("{key}: {e}"));
    Ok(match name {
        "ft" => Method::Ft,
        "pt" => Method::Pt {
            prompt_len: o.prompt_len,
            init: init("prompt_init", o.prompt_init)?,
        },
        "pt2" => {
            let init = init("prefix_init", o.prefix_init)?;
            if o.reparam_hidden.is_some() && !init.is_random() {
                bail!("prefix_init {init} needs a plain prefix: a reparameterized one (reparam_hidden) starts random");
            }
            Method::Pt2 {
                prompt_len: o.prompt_len,
                reparam_hidden: o.reparam_hidden,
                layers,
                init,
            }
        }
        other => bail!("unknown method \"{other}\": expected ft, pt or pt2"),
    })
}

impl TrainArgs {
    pub fn run_config(&self) -> Result<RunConfig> {
        if self.batch_size == 0 || self.epochs == 0 {
            bail!("--batch-size and --epochs must be at least 1");
        }
        Ok(RunConfig {
            model: self.model.model.clone(),
            task: self.task.clone(),
            method: method_from(
                &self.method,
                &MethodOptions {
                    prompt_len: self.prompt_len,
                    reparam_hidden: self.reparam_hidden,
                    prefix_layers: &self.prefix_layers,
                    prompt_init: &self.prompt_init,
                    prefix_init: &self.prefix_init,
                },
            )?,
            lr: self.lr,
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            max_train: self.max_train,
            max_eval: self.max_eval,
            max_len: self.max_len,
            dropout: self.dropout,
            schedule: Schedule::parse(&self.schedule).map_err(anyhow::Error::msg)?,
        })
    }
}

pub fn run_train(args: &TrainArgs) -> Result<()> {
    let config = args.run_config()?;
    let env = RunEnv {
        cache: args.model.cache_dir(),
        device: args.model.device.clone(),
        data_dir: resolve_data_dir(args.data.as_deref())?,
        out: args.out.clone(),
        progress: Some(indicatif::MultiProgress::new()),
        verbose: true,
    };
    let metrics = train(&config, &env)?;
    eprintln!(
        "best epoch {}/{}: {}; {:.1} s, {:.2} steps/s, peak RSS {:.0} MB, checkpoint {} bytes → {}",
        metrics.best_epoch + 1,
        config.epochs,
        metrics
            .best_dev
            .iter()
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        metrics.wall_seconds,
        metrics.train_steps_per_second,
        metrics.peak_rss_mb,
        metrics.checkpoint_bytes,
        env.out.join(METRICS_FILE).display()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run dir written by `ptv2 train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long, env = "PTV2_CACHE")]
    pub cache: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long)]
    pub data: Option<PathBuf>,
}

pub fn run_eval(args: &EvalArgs) -> Result<()> {
    let env = RunEnv {
        cache: args
            .cache
            .clone()
            .unwrap_or_else(ptv2_models::hub::default_cache_dir),
        device: args.device.clone(),
        data_dir: resolve_data_dir(args.data.as_deref())?,
        out: args.checkpoint.clone(),
        progress: None,
        verbose: false,
    };
    let (config, scores) = evaluate_checkpoint(&args.checkpoint, &env)?;
    let text: Vec<String> = scores.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    println!(
        "{} {} dev: {}",
        config.task,
        config.method.name(),
        text.join(", ")
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Task whose dev split is the gold standard (also `conll:TRAIN,DEV`, `squad:TRAIN,DEV`).
    #[arg(long)]
    pub task: String,
    /// Predictions: one label per line (or ptv2's dev_predictions.tsv), CoNLL columns with the
    /// prediction last, or SQuAD `{id: answer}` JSON.
    #[arg(long)]
    pub predictions: PathBuf,
    /// Score against the first N dev examples only (as a run with --max-eval N).
    #[arg(long)]
    pub max_eval: Option<usize>,
    #[arg(long)]
    pub data: Option<PathBuf>,
}

pub fn run_score(args: &ScoreArgs) -> Result<()> {
    let data_dir = resolve_data_dir(args.data.as_deref())?;
    let mut task = crate::tasks::load_task(&args.task, &data_dir)?;
    task.subset(None, args.max_eval);
    let scores = task.score_file(&args.predictions)?;
    for (name, value) in scores {
        println!("{name}\t{value:.6}");
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Sweep name (`experiments/NAME.toml`) or a path to a sweep TOML file.
    pub name: String,
    /// Print the runs (id, settings, done or pending) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the pending runs in this many local worker processes [default: one per CPU core,
    /// at most one per pending run; each worker gets cores / N rayon threads].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Run only shard i of n (0-based): every n-th run starting at i.
    #[arg(long)]
    pub shard: Option<String>,
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    /// Results go to REPORTS/NAME/.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, env = "PTV2_CACHE")]
    pub cache: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Keep every run's best checkpoint (off: FT checkpoints are the whole model).
    #[arg(long)]
    pub keep_checkpoints: bool,
    /// Skip the summary at the end (worker processes).
    #[arg(long, hide = true)]
    pub no_report: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run_sweep(args: &SweepArgs) -> Result<()> {
    use crate::runner::{read_status, run_all, run_workers, SweepEnv};
    use crate::sweep::{load, parse_shard, shard};

    let runs = load(&args.name, &args.experiments)?;
    let name = sweep_name(&args.name);
    let env = SweepEnv {
        dir: args.reports.join(&name),
        name,
        cache: args
            .cache
            .clone()
            .unwrap_or_else(ptv2_models::hub::default_cache_dir),
        device: args.device.clone(),
        data_dir: resolve_data_dir(args.data.as_deref())?,
        keep_checkpoints: args.keep_checkpoints,
    };
    let mine = match &args.shard {
        Some(text) => shard(&runs, parse_shard(text)?),
        None => runs.clone(),
    };
    if args.dry_run {
        // A reader that stops early (`| head`) is not an error: stop printing quietly.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{} runs in sweep {} ({} in this shard)",
            runs.len(),
            env.name,
            mine.len()
        );
        for run in &mine {
            let c = &run.config;
            let state = read_status(&env.run_dir(&run.id)).map_or("pending".to_string(), |s| {
                format!("{:?}", s.status).to_lowercase()
            });
            let mut extra = match &c.method {
                Method::Pt2 {
                    layers,
                    reparam_hidden,
                    ..
                } => {
                    format!(
                        " layers={layers}{}",
                        reparam_hidden.map_or(String::new(), |h| format!(" reparam={h}"))
                    )
                }
                _ => String::new(),
            };
            if !c.method.init().is_random() {
                extra.push_str(&format!(" init={}", c.method.init()));
            }
            let line = writeln!(
                out,
                "{}  {:<8} {:<4} P={:<3} lr={:<8} epochs={:<3} bs={:<3} seed={:<3} model={}{extra} [{state}]",
                run.id,
                c.task,
                c.method.name(),
                c.method.prompt_len(),
                c.lr,
                c.epochs,
                c.batch_size,
                c.seed,
                c.model
            );
            if line.is_err() {
                break;
            }
        }
        return Ok(());
    }
    std::fs::create_dir_all(&env.dir)?;
    // Independent runs scale better as one process per core than as one process on every core.
    let workers = args.workers.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.min(crate::runner::pending(&mine, &env).len()).max(1)
    });
    if workers > 1 && args.shard.is_none() {
        let mut worker_args: Vec<String> = vec!["sweep".into(), args.name.clone()];
        worker_args.extend([
            "--experiments".into(),
            args.experiments.display().to_string(),
        ]);
        worker_args.extend(["--reports".into(), args.reports.display().to_string()]);
        worker_args.extend(["--data".into(), env.data_dir.display().to_string()]);
        worker_args.extend(["--cache".into(), env.cache.display().to_string()]);
        worker_args.extend(["--device".into(), env.device.clone()]);
        if args.keep_checkpoints {
            worker_args.push("--keep-checkpoints".into());
        }
        run_workers(&runs, &env, workers, &worker_args)?;
    } else {
        run_all(&mine, &env, !args.quiet)?;
    }
    if !args.no_report {
        print_summary(&runs, &env);
        build_report(&runs, &env, &sweep_file(&args.name, &args.experiments))?;
    }
    Ok(())
}

/// Tables, charts and report.md of a sweep, from its runs' files alone.
pub fn build_report(
    runs: &[crate::sweep::PlannedRun],
    env: &crate::runner::SweepEnv,
    file: &std::path::Path,
) -> Result<()> {
    let records = crate::results::collect(runs, env)?;
    let (rows, summary) = crate::results::write_tables(&records, &env.dir)?;
    let charts = crate::charts::draw_all(&summary, &env.dir.join("charts"))?;
    let ctx = crate::report::ReportContext {
        name: &env.name,
        sweep_file: file,
        device: &env.device,
        charts: &charts,
    };
    crate::report::write_report(&records, &rows, &summary, &ctx, &env.dir)?;
    eprintln!(
        "wrote {} ({} rows, {} charts)",
        env.dir.join("report.md").display(),
        rows.len(),
        charts.len()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Sweep name (`experiments/NAME.toml`) or a path to a sweep TOML file.
    pub name: String,
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// `ptv2 report NAME`: rebuild tables, charts and report without training.
pub fn run_report(args: &ReportArgs) -> Result<()> {
    let runs = crate::sweep::load(&args.name, &args.experiments)?;
    let name = sweep_name(&args.name);
    let env = crate::runner::SweepEnv::for_reading(name, &args.reports, &args.device);
    build_report(&runs, &env, &sweep_file(&args.name, &args.experiments))
}

/// One line per run: its main dev score, or its status.
fn print_summary(runs: &[crate::sweep::PlannedRun], env: &crate::runner::SweepEnv) {
    use crate::runner::{read_status, RunStatus};
    use crate::train::{RunMetrics, METRICS_FILE};
    for run in runs {
        let dir = env.run_dir(&run.id);
        let c = &run.config;
        let outcome = match read_status(&dir) {
            None => "pending".to_string(),
            Some(s) if s.status != RunStatus::Ok => {
                format!("{:?}: {}", s.status, s.error.unwrap_or_default())
            }
            Some(_) => std::fs::read_to_string(dir.join(METRICS_FILE))
                .ok()
                .and_then(|t| serde_json::from_str::<RunMetrics>(&t).ok())
                .map_or("no metrics.json".into(), |m| {
                    format!("{} {:.4}", m.best_dev[0].0, m.best_dev[0].1)
                }),
        };
        println!(
            "{}  {:<8} {:<4} P={:<3} seed={:<3} {outcome}",
            run.id,
            c.task,
            c.method.name(),
            c.method.prompt_len(),
            c.seed
        );
    }
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Sweep name (`experiments/NAME.toml`) or a path to a sweep TOML file.
    pub name: String,
    /// A committed summary.csv of a real run.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Allowed drop of a configuration's mean score (absolute, e.g. 0.02 = 2 points).
    #[arg(long, default_value_t = 0.02)]
    pub tolerance: f64,
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
}

/// `ptv2 check`: exit non-zero with a readable table when a score fell beyond the tolerance.
pub fn run_check(args: &CheckArgs) -> Result<()> {
    let runs = crate::sweep::load(&args.name, &args.experiments)?;
    let name = sweep_name(&args.name);
    let env = crate::runner::SweepEnv::for_reading(name, &args.reports, "");
    let records = crate::results::collect(&runs, &env)?;
    let current = crate::results::summarize(&crate::results::rows(&records));
    let baseline = crate::check::read_baseline(&args.baseline)?;
    let lines = crate::check::compare(&baseline, &current, args.tolerance);
    print!("{}", crate::check::table(&lines, args.tolerance));
    let failed = lines.iter().filter(|l| !l.passed).count();
    if failed > 0 {
        bail!(
            "{failed} of {} configurations regressed or are missing (baseline {})",
            lines.len(),
            args.baseline.display()
        );
    }
    println!(
        "all {} configurations within {} of the baseline",
        lines.len(),
        args.tolerance
    );
    Ok(())
}

/// `ptv2 slurm NAME`: submit the sweep as a job array; with --wait, build the report after.
pub fn run_slurm(args: &crate::slurm::SlurmArgs) -> Result<()> {
    let runs = crate::sweep::load(&args.name, &args.experiments)?;
    let data_dir = resolve_data_dir(args.data.as_deref())?;
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(ptv2_models::hub::default_cache_dir);
    let finished = crate::slurm::run(args, runs.len(), &data_dir, &cache)?;
    if finished {
        let name = sweep_name(&args.name);
        let env = crate::runner::SweepEnv {
            dir: args.reports.join(&name),
            name,
            cache,
            device: "slurm".into(),
            data_dir,
            keep_checkpoints: false,
        };
        print_summary(&runs, &env);
        build_report(&runs, &env, &sweep_file(&args.name, &args.experiments))?;
    }
    Ok(())
}
