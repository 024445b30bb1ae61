//! The load test behind `ptv2 bench-serve`: `ptv2 serve` on loopback under a bounded load. N
//! clients send requests of three tasks mixed, each a few inputs, to three servers in turn: (a)
//! the PT2 runs with mixed-task batches on one backbone, (b) the same runs served one task per
//! forward pass, (c) the FT runs, three models side by side. Throughput, latency quantiles
//! (client side) and the server's peak RSS go to a table (bench_serve.md) and bench_serve.json.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::serving::serve::{http_request, ServeProcess};

/// The runs to serve, the load, and where the tables go.
#[derive(Debug)]
pub struct ServeLoad {
    /// PT2 run dirs of three tasks on one backbone, `[NAME=]DIR`.
    pub pt2: Vec<String>,
    /// FT run dirs of the same tasks, in the same order.
    pub ft: Vec<String>,
    pub clients: usize,
    pub requests: usize,
    pub out: PathBuf,
    /// The servers' `--data`, where one is given.
    pub data: Option<PathBuf>,
}

/// A few inputs in the shape of a task of `task`'s family (by its head: labels or not).
fn inputs_for(task: &Value) -> Vec<Value> {
    let texts = [
        "The film is a gorgeous, witty meditation on memory and loss.",
        "It drags on for two hours and says nothing new.",
        "A man in a red jacket is playing the guitar on a crowded street in New York.",
        "Nobody at the meeting in Berlin agreed with the plan.",
    ];
    let name = task["task"].as_str().unwrap_or("");
    let pair = ["rte", "mrpc", "cb", "boolq", "wic"].contains(&name);
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            if task["labels"].as_array().is_some_and(|l| l.is_empty()) {
                json!({"tokens": text.split_whitespace().collect::<Vec<_>>()})
            } else if pair {
                json!({"text": text, "pair": texts[(i + 1) % texts.len()]})
            } else {
                json!({"text": text})
            }
        })
        .collect()
}

fn start(checkpoints: &[String], batching: &str, data: &Option<PathBuf>) -> Result<ServeProcess> {
    let mut args: Vec<String> = [
        "--batching",
        batching,
        "--checkpoints",
        &checkpoints.join(","),
    ]
    .map(String::from)
    .to_vec();
    if let Some(dir) = data {
        args.extend(["--data".to_string(), dir.display().to_string()]);
    }
    ServeProcess::start(&std::env::current_exe()?, &args, Stdio::null())
}

/// `args.clients` clients, each sending `args.requests` of the bodies in turn: each request's
/// latency in ms and its number of inputs.
fn load(
    server: &ServeProcess,
    args: &ServeLoad,
    bodies: &[(String, usize)],
) -> Vec<Result<(f64, usize)>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.clients)
            .map(|client| {
                scope.spawn(move || {
                    (0..args.requests)
                        .map(|r| {
                            let (body, n) = &bodies[(client + r) % bodies.len()];
                            let sent = Instant::now();
                            let (status, text) =
                                http_request(&server.address, "POST", "/v1/predict", body)?;
                            if status != 200 {
                                bail!("request failed ({status}): {text}");
                            }
                            Ok((sent.elapsed().as_secs_f64() * 1e3, *n))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// One configuration under the load: its row of the table.
fn measure(name: &str, server: &ServeProcess, args: &ServeLoad) -> Result<Value> {
    let (_, text) = http_request(&server.address, "GET", "/v1/tasks", "")?;
    let tasks: Value = serde_json::from_str(&text)?;
    let bodies: Vec<(String, usize)> = tasks["tasks"]
        .as_array()
        .context("/v1/tasks")?
        .iter()
        .map(|task| {
            let inputs = inputs_for(task);
            (
                json!({"task": task["name"], "inputs": inputs}).to_string(),
                inputs.len(),
            )
        })
        .collect();
    for (body, _) in &bodies {
        let (status, text) = http_request(&server.address, "POST", "/v1/predict", body)?;
        if status != 200 {
            bail!("{name}: warm-up request failed ({status}): {text}");
        }
    }
    let started = Instant::now();
    let latencies = load(server, args, &bodies);
    let wall = started.elapsed().as_secs_f64();
    let latencies = latencies.into_iter().collect::<Result<Vec<_>>>()?;
    let mut ms: Vec<f64> = latencies.iter().map(|(l, _)| *l).collect();
    ms.sort_by(f64::total_cmp);
    let quantile = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let inputs: usize = latencies.iter().map(|(_, n)| n).sum();
    let (_, text) = http_request(&server.address, "GET", "/metrics", "")?;
    let metrics: Value = serde_json::from_str(&text)?;
    Ok(json!({
        "configuration": name,
        "requests": ms.len(),
        "inputs_per_s": inputs as f64 / wall,
        "requests_per_s": ms.len() as f64 / wall,
        "p50_ms": quantile(0.5),
        "p99_ms": quantile(0.99),
        "server_peak_rss_mb": metrics["peak_rss_mb"],
        "rows_per_pass": metrics["rows_per_pass"]["mean"],
        "tasks_per_pass": metrics["tasks_per_pass"]["mean"],
    }))
}

fn table(rows: &[Value], args: &ServeLoad) -> String {
    let mut text = format!(
        "# ptv2 serve under load\n\n{} clients × {} requests (3 tasks in turn, 4 inputs a request), loopback, {} cores.\n\n",
        args.clients,
        args.requests,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    text.push_str("| configuration | inputs/s | requests/s | p50 ms | p99 ms | server peak RSS MB | rows/pass | tasks/pass |\n|---|---|---|---|---|---|---|---|\n");
    for row in rows {
        let f = |key: &str| row[key].as_f64().unwrap_or(f64::NAN);
        text.push_str(&format!(
            "| {} | {:.1} | {:.2} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} |\n",
            row["configuration"].as_str().unwrap_or(""),
            f("inputs_per_s"),
            f("requests_per_s"),
            f("p50_ms"),
            f("p99_ms"),
            f("server_peak_rss_mb"),
            f("rows_per_pass"),
            f("tasks_per_pass"),
        ));
    }
    text
}

pub fn run(args: &ServeLoad) -> Result<()> {
    let configurations = [
        (
            "(a) PT2, mixed-task batches, one backbone",
            &args.pt2,
            "mixed",
        ),
        (
            "(b) PT2, one task per batch, one backbone",
            &args.pt2,
            "per-task",
        ),
        ("(c) FT, three models side by side", &args.ft, "mixed"),
    ];
    let mut rows = vec![];
    for (name, checkpoints, batching) in configurations {
        eprintln!("{name} …");
        let server = start(checkpoints, batching, &args.data)?;
        rows.push(measure(name, &server, args)?);
    }
    let text = table(&rows, args);
    std::fs::create_dir_all(&args.out)?;
    crate::records::io::write_atomic(&args.out.join("bench_serve.md"), text.as_bytes())?;
    crate::records::io::write_json(&args.out.join("bench_serve.json"), &rows)?;
    print!("{text}");
    Ok(())
}
