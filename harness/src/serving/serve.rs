//! Many trained runs served from one process (`ptv2 serve`): the runs of one frozen backbone (PT,
//! PT2) share its encoder, loaded once; FT and LoRA runs keep their own. Requests from many clients queue
//! for one batcher thread, which puts the waiting inputs of many tasks into one forward pass per
//! backbone: each row carries its own prompts or prefix and gets its own task's head
//! (`ptv2_models::methods::mixed`). Each request is parsed and answered by its task's own `predict`, the
//! code of `ptv2 predict`, with the batcher behind its `Forward`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use burn::tensor::Device;
use ptv2_models::methods::mixed::{forward_mixed, RowGroup};
use ptv2_models::{EncoderCache, EncoderInput, Logits, TextEncoder, TunedModel};
use serde_json::{json, Value};

use crate::records::settings::MissingPooler;
use crate::run::setup::RunEnv;
use crate::run::tasks::{Forward, Predictor, Task};
use crate::run::trained::Trained;

/// Which inputs may share a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Batching {
    /// Every task of one backbone together: each row with its own prefix and head.
    Mixed,
    /// One task per forward pass (what prompt methods without per-row prefixes allow).
    PerTask,
}

/// How long the batcher waits for more inputs, and how many rows one pass takes at most.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    pub batching: Batching,
    pub max_rows: usize,
    pub max_wait: Duration,
}

/// What a request names: a served task and how to predict with it.
pub struct ServedTask {
    pub name: String,
    /// Runs on the encoder as loaded (PT, PT2 without a random pooler): may share a backbone.
    pub frozen: bool,
    pub method: ptv2_models::MethodKind,
    pub model: String,
    pub task: Box<dyn Task>,
    pub text: TextEncoder,
    /// The run dir it was loaded from.
    pub dir: PathBuf,
}

impl ServedTask {
    pub fn describe(&self) -> Value {
        json!({
            "name": self.name,
            "task": self.task.name(),
            "method": self.method,
            "model": self.model,
            "labels": self.task.labels(),
            "checkpoint": self.dir.display().to_string(),
        })
    }
}

/// A request's failure: the HTTP status and the message (naming the field) for the client.
#[derive(Debug)]
pub struct ServeError {
    pub status: u16,
    pub message: String,
}

impl ServeError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// A forward pass that failed inside the batcher (not the request's fault).
#[derive(Debug, thiserror::Error)]
#[error("forward pass failed: {0}")]
struct ForwardFailed(String);

/// One chunk of a request's inputs, waiting for a forward pass.
struct Job {
    task: usize,
    input: EncoderInput,
    reply: Sender<Result<Logits, String>>,
}

/// The runs being served, the queue to their batcher, and what has been measured.
pub struct Server {
    pub tasks: Vec<ServedTask>,
    queue: Mutex<Option<Sender<Job>>>,
    pub stats: Stats,
    device: Device,
}

/// `[NAME=]DIR`: a served name (default: the run's task) and a run dir.
pub fn parse_checkpoint(text: &str) -> (Option<String>, PathBuf) {
    match text.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !name.contains('/') => {
            (Some(name.to_string()), PathBuf::from(dir))
        }
        _ => (None, PathBuf::from(text)),
    }
}

/// Each run's model, and the encoder each backbone runs (a PT/PT2 backbone's is its first run's).
struct Models {
    models: Vec<TunedModel>,
    /// Per task: the task that holds its backbone's encoder.
    backbone: Vec<usize>,
    pad_ids: Vec<i64>,
}

/// Add a loaded run to the served tasks, sharing the backbone of an earlier run of the same
/// model where neither changed its encoder.
fn add_served(
    tasks: &mut Vec<ServedTask>,
    models: &mut Models,
    trained: Trained,
    name: Option<String>,
    dir: &Path,
) -> Result<()> {
    let name = name.unwrap_or_else(|| trained.settings.task.clone());
    if let Some(other) = tasks.iter().find(|t| t.name == name) {
        bail!(
            "two checkpoints serve the task name \"{name}\" ({} and {}): name them, NAME=DIR",
            other.dir.display(),
            dir.display()
        );
    }
    // PT and PT2 leave the encoder as loaded; FT and LoRA (merged) change its weights, a
    // random pooler (`missing_pooler = random`) is the run's own.
    let frozen = trained
        .settings
        .tuning
        .method
        .facts()
        .shares_served_backbone
        && trained.settings.missing_pooler == MissingPooler::Cls;
    let shares = |t: &ServedTask| t.model == trained.settings.model && t.frozen;
    let backbone = match tasks.iter().position(shares) {
        Some(first) if frozen => models.backbone[first],
        _ => tasks.len(),
    };
    models.backbone.push(backbone);
    models.pad_ids.push(trained.text.pad_id() as i64);
    models.models.push(trained.model);
    tasks.push(ServedTask {
        name,
        frozen,
        method: trained.settings.tuning.method,
        model: trained.settings.model.clone(),
        task: trained.task,
        text: trained.text,
        dir: dir.to_path_buf(),
    });
    Ok(())
}

impl Server {
    /// Load `[NAME=]DIR` runs; the frozen backbones once each.
    pub fn load(checkpoints: &[String], env: &RunEnv, policy: BatchPolicy) -> Result<Arc<Self>> {
        if checkpoints.is_empty() {
            bail!("no checkpoints to serve: give --checkpoints DIR[,DIR…]");
        }
        let device = ptv2_models::backend::device_by_name(&env.device)?;
        let mut encoders = EncoderCache::default();
        let mut tasks: Vec<ServedTask> = vec![];
        let mut models = Models {
            models: vec![],
            backbone: vec![],
            pad_ids: vec![],
        };
        for text in checkpoints {
            let (name, dir) = parse_checkpoint(text);
            let trained = Trained::load_sharing(&dir, env, &mut encoders)
                .map_err(|e| e.context(format!("loading checkpoint {}", dir.display())))?;
            add_served(&mut tasks, &mut models, trained, name, &dir)?;
        }
        let (sender, receiver) = mpsc::channel();
        let server = Arc::new(Self {
            tasks,
            queue: Mutex::new(Some(sender)),
            stats: Stats::default(),
            device,
        });
        let for_batcher = Arc::clone(&server);
        std::thread::Builder::new()
            .name("ptv2-batcher".into())
            .spawn(move || batcher(models, receiver, policy, &for_batcher.stats))?;
        Ok(server)
    }

    /// Stop taking work: the batcher ends once the jobs already queued are answered.
    pub fn close(&self) {
        self.queue.lock().unwrap().take();
    }

    pub fn task_index(&self, name: &str) -> Result<usize, ServeError> {
        self.tasks
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.tasks.iter().map(|t| t.name.as_str()).collect();
                ServeError::new(
                    404,
                    format!(
                        "\"task\": no task \"{name}\" is served; served: {}",
                        names.join(", ")
                    ),
                )
            })
    }

    /// Predict `inputs` (each in the task's `ptv2 predict` shape) with the served task `index`.
    pub fn predict(&self, index: usize, inputs: &[Value]) -> Result<Vec<Value>, ServeError> {
        let queue = self.queue.lock().unwrap().clone();
        let Some(queue) = queue else {
            return Err(ServeError::new(503, "the server is shutting down"));
        };
        let served = &self.tasks[index];
        let forward = Queued { task: index, queue };
        let with = Predictor {
            model: &forward,
            text: &served.text,
            device: &self.device,
        };
        let at = |i: usize| format!("inputs[{i}]");
        served.task.predict(&with, inputs, &at).map_err(|e| {
            let status = if e.downcast_ref::<ForwardFailed>().is_some() {
                500
            } else {
                422
            };
            ServeError::new(status, format!("{e:#}"))
        })
    }
}

/// A request's `Forward`: its chunks go to the batcher and the reply is waited for.
struct Queued {
    task: usize,
    queue: Sender<Job>,
}

impl Forward for Queued {
    fn forward(&self, input: &EncoderInput) -> Result<Logits> {
        let (reply, answer) = mpsc::channel();
        let job = Job {
            task: self.task,
            input: input.clone(),
            reply,
        };
        let fail = |why: &str| anyhow::Error::new(ForwardFailed(why.to_string()));
        self.queue
            .send(job)
            .map_err(|_| fail("the batcher has stopped"))?;
        match answer.recv() {
            Ok(Ok(logits)) => Ok(logits),
            Ok(Err(message)) => Err(fail(&message)),
            Err(_) => Err(fail("the batcher has stopped")),
        }
    }
}

/// Wait for one job, then take what else arrives within `max_wait` (up to `max_rows` rows), and
/// run them: one pass per backbone (per task under `PerTask`), jobs in arrival order.
fn batcher(models: Models, queue: Receiver<Job>, policy: BatchPolicy, stats: &Stats) {
    while let Ok(first) = queue.recv() {
        let mut rows = first.input.input_ids.dims()[0];
        let mut jobs = vec![first];
        let deadline = Instant::now() + policy.max_wait;
        while rows < policy.max_rows {
            match queue.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => {
                    rows += job.input.input_ids.dims()[0];
                    jobs.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let pass_key = |job: &Job| match policy.batching {
            Batching::Mixed => models.backbone[job.task],
            Batching::PerTask => job.task,
        };
        while !jobs.is_empty() {
            let key = pass_key(&jobs[0]);
            let (same, rest): (Vec<Job>, Vec<Job>) =
                jobs.into_iter().partition(|j| pass_key(j) == key);
            jobs = rest;
            for pass in by_length(same) {
                run_pass(&models, pass, stats);
            }
        }
    }
}

/// Padding a pass may add, as a share of its real tokens: jobs of very different lengths (short
/// sentences, long sentence pairs) go to separate passes rather than all padded to the longest.
const MAX_PADDING: f64 = 0.25;

/// Jobs sorted by length and cut into passes whose padding stays under `MAX_PADDING`.
fn by_length(mut jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let dims = |job: &Job| job.input.input_ids.dims();
    jobs.sort_by_key(|job| dims(job)[1]);
    let mut passes: Vec<Vec<Job>> = vec![];
    let (mut rows, mut real) = (0, 0);
    for job in jobs {
        let [n, len] = dims(&job);
        let padded = (rows + n) * len;
        if passes.is_empty() || padded as f64 > (1.0 + MAX_PADDING) * (real + n * len) as f64 {
            passes.push(vec![]);
            (rows, real) = (0, 0);
        }
        rows += n;
        real += n * len;
        passes.last_mut().unwrap().push(job);
    }
    passes
}

/// One forward pass over jobs of one backbone; every job gets its logits or the failure.
fn run_pass(models: &Models, jobs: Vec<Job>, stats: &Stats) {
    let backbone = models.backbone[jobs[0].task];
    let encoder = &models.models[backbone].encoder;
    let groups: Vec<RowGroup> = jobs
        .iter()
        .map(|job| RowGroup {
            input: &job.input,
            model: &models.models[job.task],
        })
        .collect();
    let pad_id = models.pad_ids[backbone];
    // A failing pass (a bug, an input the model cannot take) answers its jobs and the server goes on.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        forward_mixed(encoder, &groups, pad_id)
    }));
    let rows: usize = jobs.iter().map(|j| j.input.input_ids.dims()[0]).sum();
    let mut tasks: Vec<usize> = jobs.iter().map(|j| j.task).collect();
    tasks.sort_unstable();
    tasks.dedup();
    stats.record_pass(rows, tasks.len());
    match outcome {
        Ok(all) => {
            for (job, logits) in jobs.into_iter().zip(all) {
                let _ = job.reply.send(Ok(logits));
            }
        }
        Err(panic) => {
            let message = ptv2_models::error::panic_text(panic.as_ref())
                .unwrap_or("panic")
                .to_string();
            for job in jobs {
                let _ = job.reply.send(Err(message.clone()));
            }
        }
    }
}

/// Counters and recent latencies for `GET /metrics`.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    requests: u64,
    errors: u64,
    inputs: u64,
    passes: u64,
    pass_rows: u64,
    pass_tasks: u64,
    max_pass_rows: u64,
    max_pass_tasks: u64,
    /// The latest request latencies in ms (a window, for the quantiles).
    latencies_ms: VecDeque<f64>,
}

const LATENCY_WINDOW: usize = 10_000;

impl Stats {
    fn record_pass(&self, rows: usize, tasks: usize) {
        let mut c = self.inner.lock().unwrap();
        c.passes += 1;
        c.pass_rows += rows as u64;
        c.pass_tasks += tasks as u64;
        c.max_pass_rows = c.max_pass_rows.max(rows as u64);
        c.max_pass_tasks = c.max_pass_tasks.max(tasks as u64);
    }

    pub fn record_request(&self, inputs: usize, ok: bool, latency: Duration) {
        let mut c = self.inner.lock().unwrap();
        c.requests += 1;
        c.inputs += inputs as u64;
        c.errors += u64::from(!ok);
        if c.latencies_ms.len() == LATENCY_WINDOW {
            c.latencies_ms.pop_front();
        }
        c.latencies_ms.push_back(latency.as_secs_f64() * 1e3);
    }

    pub fn to_json(&self) -> Value {
        let c = self.inner.lock().unwrap();
        let mut sorted: Vec<f64> = c.latencies_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let quantile = |q: f64| {
            (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * q).round() as usize])
        };
        let per_pass = |total: u64| (c.passes > 0).then(|| total as f64 / c.passes as f64);
        json!({
            "requests": c.requests,
            "errors": c.errors,
            "inputs": c.inputs,
            "forward_passes": c.passes,
            "rows_per_pass": {"mean": per_pass(c.pass_rows), "max": c.max_pass_rows},
            "tasks_per_pass": {"mean": per_pass(c.pass_tasks), "max": c.max_pass_tasks},
            "latency_ms": {"p50": quantile(0.5), "p90": quantile(0.9), "p99": quantile(0.99), "window": sorted.len()},
            "peak_rss_mb": crate::records::run_dir::peak_rss_mb(),
        })
    }
}

/// A plain HTTP/1.1 request on loopback (`Connection: close`): the status and the body. For the
/// serve benchmark and tests, which need no client library.
pub fn http_request(address: &str, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("{address}{path}: no HTTP response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{address}{path}: bad status line in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// A `ptv2 serve` child process on a free loopback port (the serve benchmark and tests); stopped
/// with SIGTERM when dropped.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub address: String,
}

impl ServeProcess {
    /// Start `exe serve --port 0 ARGS`; its standard error is `stderr`.
    pub fn start(
        exe: &std::path::Path,
        args: &[String],
        stderr: std::process::Stdio,
    ) -> Result<Self> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(exe)
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let Some(address) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("ptv2 serve did not start ({})", args.join(" "));
        };
        Ok(Self {
            address: address.to_string(),
            child,
        })
    }

    /// SIGTERM, and how the server exited.
    pub fn stop(&mut self) -> Result<std::process::ExitStatus> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        Ok(self.child.wait()?)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.stop();
        }
    }
}
