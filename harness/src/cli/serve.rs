//! `ptv2 serve`: an HTTP JSON server over trained runs. `POST /v1/predict {"task", "inputs"}`
//! answers `{"outputs"}`, each output a line of `ptv2 predict`; `GET /v1/tasks`, `GET /healthz`,
//! `GET /metrics`. Bad requests get a 4xx `{"error"}` naming the field; SIGTERM or Ctrl-C stops
//! taking connections, answers the requests in flight, then exits.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use serde_json::{json, Value};

use super::args::EnvArgs;
use crate::serving::serve::{BatchPolicy, Batching, ServeError, Server};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Run dirs to serve, `[NAME=]DIR` comma-separated (NAME defaults to the run's task).
    #[arg(long, value_delimiter = ',', required = true)]
    pub checkpoints: Vec<String>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port (printed on the first line of standard output).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// mixed: every task of a backbone in one forward pass; per-task: one task a pass.
    #[arg(long, value_enum, default_value = "mixed")]
    pub batching: Batching,
    /// Rows (examples, QA windows) one forward pass takes at most.
    #[arg(long, default_value_t = 64)]
    pub max_batch_rows: usize,
    /// How long the first input of a pass waits for others, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub max_wait_ms: u64,
    /// Inputs one request may carry (more: 413).
    #[arg(long, default_value_t = 256)]
    pub max_inputs: usize,
    /// Request body size limit in bytes (more: 413).
    #[arg(long, default_value_t = 4 << 20)]
    pub max_body_bytes: usize,
    #[command(flatten)]
    pub env: EnvArgs,
}

#[derive(Clone)]
struct App {
    server: Arc<Server>,
    max_inputs: usize,
}

fn error(status: u16, message: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(json!({"error": message.into()}))).into_response()
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let env = args.env.run_env(std::path::Path::new("."), false)?;
    let policy = BatchPolicy {
        batching: args.batching,
        max_rows: args.max_batch_rows.max(1),
        max_wait: Duration::from_millis(args.max_wait_ms),
    };
    let server = Server::load(&args.checkpoints, &env, policy)?;
    let app = App {
        server: Arc::clone(&server),
        max_inputs: args.max_inputs,
    };
    let router = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/v1/tasks", get(tasks))
        .route("/v1/predict", post(predict))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            error(
                404,
                "no such endpoint: /v1/predict, /v1/tasks, /healthz, /metrics",
            )
        })
        .layer(DefaultBodyLimit::max(args.max_body_bytes))
        .with_state(app);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let address = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = listener.local_addr()?;
        println!("listening on http://{bound}");
        std::io::stdout().flush()?;
        for task in &server.tasks {
            eprintln!(
                "serving {} ({} {}, {})",
                task.name,
                task.task.name(),
                task.method,
                task.dir.display()
            );
        }
        axum::serve(listener, router)
            .with_graceful_shutdown(stop_signal())
            .await
            .context("server failed")
    })?;
    server.close();
    eprintln!("stopped: {}", server.stats.to_json());
    Ok(())
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn tasks(State(app): State<App>) -> Json<Value> {
    let tasks: Vec<Value> = app.server.tasks.iter().map(|t| t.describe()).collect();
    Json(json!({ "tasks": tasks }))
}

async fn metrics(State(app): State<App>) -> Json<Value> {
    Json(app.server.stats.to_json())
}

/// The request's task and inputs, or the error naming the field.
fn parse_request(
    body: &[u8],
    server: &Server,
    max_inputs: usize,
) -> Result<(usize, Vec<Value>), ServeError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| ServeError::new(400, format!("request body: not JSON ({e})")))?;
    let task = request.get("task").and_then(Value::as_str).ok_or_else(|| {
        ServeError::new(
            422,
            "\"task\": expected a string, the name of a served task",
        )
    })?;
    let index = server.task_index(task)?;
    let inputs = request
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| ServeError::new(422, "\"inputs\": expected an array of input objects"))?;
    if inputs.len() > max_inputs {
        return Err(ServeError::new(
            413,
            format!(
                "\"inputs\": {} inputs, at most {max_inputs} a request",
                inputs.len()
            ),
        ));
    }
    if let Some(i) = inputs.iter().position(|v| !v.is_object()) {
        return Err(ServeError::new(
            422,
            format!("inputs[{i}]: expected a JSON object"),
        ));
    }
    Ok((index, inputs.clone()))
}

async fn predict(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let server = Arc::clone(&app.server);
    let answer = tokio::task::spawn_blocking(move || {
        let body = body.map_err(|e| ServeError::new(e.status().as_u16(), e.body_text()))?;
        let (index, inputs) = parse_request(&body, &server, app.max_inputs)?;
        let outputs = server.predict(index, &inputs)?;
        Ok::<_, ServeError>((inputs.len(), outputs))
    })
    .await
    .unwrap_or_else(|e| Err(ServeError::new(500, format!("request failed: {e}"))));
    let (count, response) = match answer {
        Ok((count, outputs)) => (count, Json(json!({ "outputs": outputs })).into_response()),
        Err(e) => (0, error(e.status, e.message)),
    };
    let ok = response.status().is_success();
    app.server
        .stats
        .record_request(count, ok, started.elapsed());
    response
}
