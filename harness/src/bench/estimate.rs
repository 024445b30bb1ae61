//! The time estimate of `ptv2 sweep NAME --dry-run`: each run's train steps and dev evaluations
//! priced by the `ptv2 bench` rows (bench.csv) measured on the machine the sweep will run on.
//!
//! A run's step is priced by the bench row closest to it in matmul work (`step_gflop`): the
//! same method and precision where benched, else one whose backbone is trained or frozen alike
//! (P-tuning priced as PT, its prompts in the same place). With a second row of that
//! configuration at another length, the cost is the line through both (a fixed part per step,
//! the optimizer's, and a part per GFLOP); with one, proportional to the work. DeBERTa's
//! relative-position attention is not in the work formula: its runs take longer than priced.
//!
//! A batch pads to its longest example: random batches of B are priced at the length B/(B+1) of
//! the training examples stay under, length-grouped ones at the mean, from characters (4.5 a
//! token, as MiniLM's WordPiece cuts SST-2, RTE and CoNLL-2003), at most `max_len`; QA windows
//! at `max_len`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ptv2_models::hub::split_layers;
use ptv2_models::{EncoderConfig, MethodKind, ModelDir, Precision};

use super::train_step::step_gflop;
use crate::records::settings::{Batching, Framework, RunSettings, Subset};
use crate::run::tasks::load_task;

/// One bench.csv row: what a step and an evaluated sequence cost at one configuration.
#[derive(Debug, Clone, PartialEq)]
struct Rate {
    framework: String,
    model: String,
    method: MethodKind,
    precision: Precision,
    batch_size: usize,
    train_step_s: f64,
    eval_seq_per_s: f64,
    train_gflop: f64,
    eval_gflop: f64,
    threads: usize,
}

/// The rows of one bench.csv (ours and PyTorch's), and where they came from.
#[derive(Debug, Clone)]
pub struct BenchRates {
    pub path: PathBuf,
    rates: Vec<Rate>,
}

impl BenchRates {
    /// Read `PATH` (a bench.csv, or the dir `ptv2 bench --out` wrote it to).
    pub fn read(path: &Path) -> Result<Self> {
        let path = if path.is_dir() {
            path.join("bench.csv")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read bench rows {}", path.display()))?;
        let rates = parse_rates(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
        Ok(Self { path, rates })
    }

    /// The row that prices a run of `work` GFLOP a step: same framework (no `tiny` rows: a
    /// random 2-layer model's step is all overhead), a backbone trained or frozen as the run's;
    /// first the same method, then one with its prompts in the same place, the same precision,
    /// then the closest work.
    fn closest(&self, s: &RunSettings, work: f64) -> Option<&Rate> {
        let ours = s.framework == Framework::Ptv2;
        let method = s.tuning.method;
        self.rates
            .iter()
            .filter(|r| r.framework.starts_with("ptv2") == ours && r.model != "tiny")
            .filter(|r| r.method.freezes_backbone() == method.freezes_backbone())
            .min_by(|a, b| {
                let key = |r: &Rate| {
                    let prompts_elsewhere = r.method.facts().prompts != method.facts().prompts;
                    (
                        r.method != method,
                        prompts_elsewhere,
                        r.precision != s.precision,
                    )
                };
                let distance = |r: &Rate| (r.train_gflop / work).ln().abs();
                key(a)
                    .cmp(&key(b))
                    .then(distance(a).total_cmp(&distance(b)))
            })
    }

    /// The thread counts the rows were measured at (a run with fewer takes longer).
    pub fn threads(&self) -> String {
        let mut counts: Vec<usize> = self.rates.iter().map(|r| r.threads).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The row beside `rate` that differs from it in length only (same framework, model,
    /// method, precision and batch), the closest in work: with it a cost is a line, not a ratio.
    fn partner(&self, rate: &Rate) -> Option<&Rate> {
        self.rates
            .iter()
            .filter(|r| {
                (&r.framework, &r.model, r.method, r.precision, r.batch_size)
                    == (
                        &rate.framework,
                        &rate.model,
                        rate.method,
                        rate.precision,
                        rate.batch_size,
                    )
                    && r.train_gflop != rate.train_gflop
            })
            .min_by(|a, b| {
                let distance = |r: &Rate| (r.train_gflop / rate.train_gflop).ln().abs();
                distance(a).total_cmp(&distance(b))
            })
    }
}

/// Seconds of `work` GFLOP from a measured (work, seconds) point: on the line through a second
/// point where it has a positive slope and a non-negative fixed part (what does not grow with
/// length: the optimizer's update, per-step overhead), else in proportion to the work.
fn priced(work: f64, at: (f64, f64), beside: Option<(f64, f64)>) -> f64 {
    if let Some((w2, t2)) = beside {
        let slope = (t2 - at.1) / (w2 - at.0);
        let fixed = at.1 - slope * at.0;
        if slope > 0.0 && fixed >= 0.0 {
            return fixed + slope * work;
        }
    }
    at.1 * work / at.0
}

impl Rate {
    /// (GFLOP, seconds) of a train step.
    fn step(&self) -> (f64, f64) {
        (self.train_gflop, self.train_step_s)
    }

    /// (GFLOP, seconds) of one evaluated sequence.
    fn sequence(&self) -> (f64, f64) {
        (
            self.eval_gflop / self.batch_size as f64,
            1.0 / self.eval_seq_per_s,
        )
    }
}

/// The columns a row is read from, in `parse_rate`'s order.
const COLUMNS: [&str; 10] = [
    "framework",
    "model",
    "method",
    "precision",
    "batch_size",
    "train_step_s",
    "eval_seq_per_s",
    "train_gflop",
    "eval_gflop",
    "threads",
];

fn parse_rates(text: &str) -> Result<Vec<Rate>> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.split(',').collect())
        .unwrap_or_default();
    let at = COLUMNS.map(|name| {
        header.iter().position(|h| *h == name).with_context(|| {
            format!("1: the header has no column \"{name}\" (a bench.csv of `ptv2 bench`)")
        })
    });
    let at: Vec<usize> = at.into_iter().collect::<Result<_>>()?;
    let rates = lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| parse_rate(line, &at).map_err(|e| anyhow::anyhow!("{}: {e}", i + 1)))
        .collect::<Result<Vec<_>>>()?;
    if rates.is_empty() {
        bail!("1: no rows under the header");
    }
    Ok(rates)
}

/// One row; `at` holds the position of each of `COLUMNS`.
fn parse_rate(line: &str, at: &[usize]) -> Result<Rate> {
    let fields: Vec<&str> = line.split(',').collect();
    let field = |k: usize| fields.get(at[k]).copied().unwrap_or("");
    let number = |k: usize| -> Result<f64> {
        field(k)
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .with_context(|| {
                format!(
                    "column {} is \"{}\", expected a number",
                    COLUMNS[k],
                    field(k)
                )
            })
    };
    Ok(Rate {
        framework: field(0).to_string(),
        model: field(1).to_string(),
        method: MethodKind::parse(field(2)).map_err(anyhow::Error::msg)?,
        precision: <Precision as clap::ValueEnum>::from_str(field(3), true)
            .map_err(|e| anyhow::anyhow!("column precision: {e}"))?,
        batch_size: number(4)? as usize,
        train_step_s: number(5)?,
        eval_seq_per_s: number(6)?,
        train_gflop: number(7)?,
        eval_gflop: number(8)?,
        threads: number(9)? as usize,
    })
}

/// What one run is expected to take, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunEstimate {
    pub train_s: f64,
    pub eval_s: f64,
    /// The method whose bench row priced the run, where it is not the run's own.
    pub priced_as: Option<MethodKind>,
}

impl RunEstimate {
    pub fn seconds(&self) -> f64 {
        self.train_s + self.eval_s
    }
}

/// Prices runs; a task's split sizes are read once per subset.
pub struct Estimator<'a> {
    pub rates: &'a BenchRates,
    data_dir: PathBuf,
    splits: HashMap<(String, Option<usize>, Option<usize>, Subset), Splits>,
}

impl<'a> Estimator<'a> {
    pub fn new(rates: &'a BenchRates, data_dir: &Path) -> Self {
        Self {
            rates,
            data_dir: data_dir.to_path_buf(),
            splits: HashMap::new(),
        }
    }

    /// The run's estimate, or why there is none (its model's shape or task cannot be read, no
    /// bench row trains its way).
    pub fn estimate(&mut self, s: &RunSettings) -> Result<RunEstimate, String> {
        let shape = model_shape(&s.model)?;
        let splits = self.splits(s)?;
        let seq = splits.batch_tokens(s.batch_size, s.batching, s.max_len);
        let (train, dev) = (splits.train, splits.dev);
        let method = s.tuning.method;
        let prompts = s.tuning.prompt_len;
        let (work, _) = step_gflop(&shape, method, s.batch_size, seq, prompts);
        let (_, sequence_work) = step_gflop(&shape, method, 1, seq, prompts);
        let Some(rate) = self.rates.closest(s, work) else {
            return Err(format!(
                "no {} bench row prices {method}",
                framework_rows(s.framework)
            ));
        };
        let steps = if method.trains_nothing() {
            0
        } else {
            s.epochs * train.div_ceil(s.batch_size)
        };
        // Dev is scored after every epoch (once when nothing trains).
        let evaluations = s.epochs.max(1) as f64;
        let partner = self.rates.partner(rate);
        let step_s = priced(work, rate.step(), partner.map(Rate::step));
        let sequence_s = priced(sequence_work, rate.sequence(), partner.map(Rate::sequence));
        Ok(RunEstimate {
            train_s: steps as f64 * step_s,
            eval_s: evaluations * dev as f64 * sequence_s,
            priced_as: (rate.method != method).then_some(rate.method),
        })
    }

    fn splits(&mut self, s: &RunSettings) -> Result<&Splits, String> {
        let key = (s.task.clone(), s.max_train, s.max_eval, s.subset);
        if !self.splits.contains_key(&key) {
            let mut task = load_task(&s.task, &self.data_dir).map_err(|e| format!("{e:#}"))?;
            task.subset(s.max_train, s.max_eval, s.subset);
            let mut chars = task.train_sizes();
            chars.sort_unstable();
            let splits = Splits {
                train: task.planned_train_len(),
                dev: task.dev_len(),
                chars,
            };
            self.splits.insert(key.clone(), splits);
        }
        Ok(&self.splits[&key])
    }
}

/// A task's split sizes as a run subsets them.
struct Splits {
    /// Training units (QA: examples; each makes one or more windows) and dev examples.
    train: usize,
    dev: usize,
    /// Each training example's characters, sorted (empty for QA: its windows are tokens).
    chars: Vec<usize>,
}

impl Splits {
    /// The tokens a batch of `batch` pads to (see the module's doc).
    fn batch_tokens(&self, batch: usize, batching: Batching, max_len: usize) -> usize {
        if self.chars.is_empty() {
            return max_len;
        }
        let chars = match batching {
            Batching::Random => self.chars[self.chars.len() * batch / (batch + 1)],
            Batching::Grouped => self.chars.iter().sum::<usize>() / self.chars.len(),
        };
        // Two special tokens ([CLS] … [SEP]) around the text's.
        ((chars as f64 / 4.5).round() as usize + 2).min(max_len)
    }
}

fn framework_rows(framework: Framework) -> &'static str {
    match framework {
        Framework::Ptv2 => "ptv2",
        Framework::Pytorch | Framework::PeftNative => "PyTorch",
    }
}

/// Layers, hidden and feed-forward width of a model (all the work formula reads): its dir's
/// config.json, or a well-known checkpoint's shape by its name (a sweep written for a GPU
/// machine names dirs that are not here). `@K` keeps K layers; `random:DIR` is DIR's shape.
pub fn model_shape(model: &str) -> Result<EncoderConfig, String> {
    let model = model.strip_prefix("random:").unwrap_or(model);
    let (name, layers) = split_layers(model).map_err(|e| e.to_string())?;
    let dir = ModelDir::new(name);
    let mut shape = if dir.config_path().is_ok() {
        dir.config().map_err(|e| e.to_string())?
    } else {
        let base = Path::new(name)
            .file_name()
            .map_or(name.to_string(), |f| f.to_string_lossy().to_lowercase());
        let Some(&(_, layers, hidden, intermediate)) =
            KNOWN_SHAPES.iter().find(|(known, ..)| *known == base)
        else {
            return Err(format!(
                "no {} and \"{base}\" is not a known checkpoint's name",
                dir.root.join("config.json").display()
            ));
        };
        EncoderConfig {
            num_hidden_layers: layers,
            hidden_size: hidden,
            intermediate_size: intermediate,
            ..EncoderConfig::tiny_bert()
        }
    };
    if let Some(k) = layers {
        shape.num_hidden_layers = shape.num_hidden_layers.min(k);
    }
    Ok(shape)
}

/// (name, layers, hidden, feed-forward) of the checkpoints the paper and ptv2's sweeps use.
const KNOWN_SHAPES: &[(&str, usize, usize, usize)] = &[
    ("minilm-l6", 6, 384, 1536),
    ("all-minilm-l6-v2", 6, 384, 1536),
    ("bert-base-uncased", 12, 768, 3072),
    ("bert-base-cased", 12, 768, 3072),
    ("bert-large-uncased", 24, 1024, 4096),
    ("bert-large-cased", 24, 1024, 4096),
    ("roberta-base", 12, 768, 3072),
    ("roberta-large", 24, 1024, 4096),
    ("deberta-v3-base", 12, 768, 3072),
    ("deberta-v3-large", 24, 1024, 4096),
    ("deberta-v2-xlarge", 24, 1536, 6144),
    ("deberta-v2-xxlarge", 48, 1536, 6144),
];

/// `42s`, `12m05s`, `3.4h`.
pub fn span(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=5999 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{:.1}h", seconds / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BENCH: &str = "framework,model,method,seq_len,batch_size,train_step_s,eval_seq_per_s,peak_rss_mb,checkpoint_bytes,trainable,threads,train_gflop,eval_gflop,precision,device_mb
ptv2 (burn flex),minilm-l6,ft,128,16,0.90000,100.000,900.0,1,1,2,137.70,45.90,f32,
ptv2 (burn flex),minilm-l6,pt2,128,16,0.50000,120.000,500.0,1,1,2,93.00,46.50,f32,
ptv2 (burn flex),minilm-l6,pt2,128,16,0.30000,200.000,500.0,1,1,2,93.00,46.50,bf16,
ptv2 (burn flex),tiny,pt2,128,16,0.01000,9000.000,50.0,1,1,2,0.10,0.05,f32,
pytorch,minilm-l6,pt2,128,16,1.20000,90.000,700.0,1,1,2,93.00,46.50,f32,
";

    fn rates() -> BenchRates {
        BenchRates {
            path: "bench.csv".into(),
            rates: parse_rates(BENCH).unwrap(),
        }
    }

    fn settings(method: &str, precision: Precision) -> RunSettings {
        let values = [
            ("task", "sst2"),
            ("method", method),
            ("lr", "1e-3"),
            ("batch_size", "16"),
            ("max_len", "128"),
            ("prompt_len", "16"),
        ];
        let mut s = RunSettings::from_values(&values, "test").unwrap();
        s.precision = precision;
        s
    }

    #[test]
    fn a_run_is_priced_by_its_own_method_and_precision_and_scaled_by_its_work() {
        let rates = rates();
        let pick = |s: &RunSettings| {
            let shape = model_shape(&s.model).unwrap();
            let (work, _) = step_gflop(&shape, s.tuning.method, 16, 128, 16);
            rates
                .closest(s, work)
                .map(|r| (r.method, r.precision, r.train_step_s))
        };
        assert_eq!(
            pick(&settings("pt2", Precision::F32)),
            Some((MethodKind::Pt2, Precision::F32, 0.5))
        );
        assert_eq!(
            pick(&settings("pt2", Precision::Bf16)),
            Some((MethodKind::Pt2, Precision::Bf16, 0.3))
        );
        // LoRA's frozen backbone is priced as PT2's (the closest work); PT as PT2 too, no row
        // has PT's input prompts. FT has its own row, and only FT trains the backbone.
        assert_eq!(
            pick(&settings("lora", Precision::F32)).map(|p| p.0),
            Some(MethodKind::Pt2)
        );
        assert_eq!(
            pick(&settings("pt", Precision::F32)).map(|p| p.0),
            Some(MethodKind::Pt2)
        );
        let mut replay = settings("ft", Precision::F32);
        replay.framework = Framework::Pytorch;
        assert_eq!(pick(&replay), None, "PyTorch has no FT row");
    }

    #[test]
    fn a_half_length_batch_costs_about_half_a_step() {
        let shape = model_shape("minilm-l6").unwrap();
        let (full, _) = step_gflop(&shape, MethodKind::Pt2, 16, 128, 16);
        let (half, _) = step_gflop(&shape, MethodKind::Pt2, 16, 64, 16);
        assert!((0.45..0.55).contains(&(half / full)), "{}", half / full);
        assert_eq!(
            model_shape("models/roberta-large@12")
                .unwrap()
                .num_hidden_layers,
            12
        );
        assert!(model_shape("models/unknown-net")
            .unwrap_err()
            .contains("not a known checkpoint"));
    }

    #[test]
    fn bad_rows_name_their_line_and_column() {
        let bad = BENCH.replace("0.50000", "fast");
        let e = parse_rates(&bad).unwrap_err().to_string();
        assert!(e.starts_with("3: column train_step_s is \"fast\""), "{e}");
        let e = parse_rates("framework,model\n").unwrap_err().to_string();
        assert!(e.contains("no column \"method\""), "{e}");
    }

    #[test]
    fn a_cost_is_the_line_through_two_lengths_or_a_ratio_of_one() {
        // 0.33 s a step that does not grow with length: FT's AdamW update.
        let (at, beside) = ((67.0, 0.689), (137.8, 1.068));
        let line = priced(37.0, at, Some(beside));
        assert!((line - 0.528).abs() < 0.002, "{line}");
        assert!((priced(37.0, at, None) - 0.689 * 37.0 / 67.0).abs() < 1e-12);
        // A row pair that would make a negative fixed part falls back to the ratio.
        assert_eq!(priced(50.0, (10.0, 1.0), Some((20.0, 3.0))), 5.0);
    }

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(span(42.4), "42s");
        assert_eq!(span(725.0), "12m05s");
        assert_eq!(span(12_240.0), "3.4h");
    }
}
