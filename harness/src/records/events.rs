//! What a sweep says as it goes, wherever its output goes (a file, a pipe, Slurm's log): a line
//! per run started and finished with the sweep's done/total and ETA, a line per epoch, and a
//! line every few minutes inside a long epoch — each flushed to stdout as it happens — or the
//! same events as JSON, one object per line, for tools. On a terminal the progress bars say it
//! instead, and `--quiet` says nothing.
//!
//! One process trains one run at a time (`train`'s lock), so the run an epoch belongs to is
//! this process's current run (`set_current_run`).

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How a sweep talks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Talk {
    /// Nothing (a terminal's progress bars, or `--quiet`).
    Quiet,
    /// One line of text per event.
    Lines,
    /// One JSON object per event.
    Json,
}

/// One thing that happened.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    RunStarted {
        run_id: &'a str,
        task: &'a str,
        method: &'a str,
        seed: u64,
        done: usize,
        total: usize,
    },
    /// Inside a long epoch, every `HEARTBEAT` at most.
    Step {
        run_id: &'a str,
        epoch: usize,
        epochs: usize,
        step: usize,
        steps: usize,
        train_loss: f64,
    },
    Epoch {
        run_id: &'a str,
        epoch: usize,
        epochs: usize,
        train_loss: f64,
        metric: &'a str,
        dev: f64,
        seconds: f64,
    },
    RunFinished {
        run_id: &'a str,
        task: &'a str,
        method: &'a str,
        seed: u64,
        status: &'a str,
        metric: Option<&'a str>,
        score: Option<f64>,
        seconds: Option<f64>,
        done: usize,
        total: usize,
        /// The sweep's remaining time from this process's pace; None before a run finished.
        eta_seconds: Option<f64>,
    },
    /// A search's trial (or a seed run of its best configuration) starts, reaches a rung,
    /// finishes or is pruned; done/total count run-epochs, the search's unit of work.
    Trial {
        run_id: &'a str,
        task: &'a str,
        method: &'a str,
        /// The drawn settings (`lr=0.00316 prompt_len=16`).
        values: &'a str,
        what: &'a str,
        metric: Option<&'a str>,
        score: Option<f64>,
        done: usize,
        total: usize,
        eta_seconds: Option<f64>,
    },
}

/// The longest a running epoch stays silent off a terminal.
pub const HEARTBEAT: Duration = Duration::from_secs(300);

static TALK: OnceLock<Talk> = OnceLock::new();

struct State {
    run_id: String,
    last: Instant,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// How this process talks, once (the sweep command sets it; nothing else talks).
pub fn set_talk(talk: Talk) {
    let _ = TALK.set(talk);
}

fn talk() -> Talk {
    TALK.get().copied().unwrap_or(Talk::Quiet)
}

/// The run whose epochs this process reports now (None between runs).
pub fn set_current_run(run_id: Option<&str>) {
    let mut state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    *state = run_id.map(|id| State {
        run_id: id.to_string(),
        last: Instant::now(),
    });
}

/// The current run's id, if this process is talking and runs one.
pub fn current_run() -> Option<String> {
    if talk() == Talk::Quiet {
        return None;
    }
    let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    state.as_ref().map(|s| s.run_id.clone())
}

/// Is a heartbeat due (nothing said about the current run for `HEARTBEAT`)?
pub fn heartbeat_due() -> bool {
    let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    talk() != Talk::Quiet
        && state
            .as_ref()
            .is_some_and(|s| s.last.elapsed() >= HEARTBEAT)
}

/// Say `event` on stdout, flushed, as one write (worker processes share the stream).
pub fn emit(event: &Event) {
    let text = match talk() {
        Talk::Quiet => return,
        Talk::Json => serde_json::to_string(event).expect("events serialize"),
        Talk::Lines => line(event),
    };
    if let Some(state) = STATE.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        state.last = Instant::now();
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{text}\n").as_bytes());
    let _ = out.flush();
}

/// `ETA 41 min`: seconds left in whole minutes, rounded up.
pub fn eta_text(seconds: f64) -> String {
    format!("ETA {:.0} min", (seconds / 60.0).ceil())
}

/// `[3/30, ETA 41 min] finished …`: an event as a line of text.
pub fn line(event: &Event) -> String {
    match event {
        Event::RunStarted {
            run_id,
            task,
            method,
            seed,
            done,
            total,
        } => format!("[{done}/{total}] started {run_id} {task} {method} seed {seed}"),
        Event::Step {
            run_id,
            epoch,
            epochs,
            step,
            steps,
            train_loss,
        } => format!("  {run_id} epoch {epoch}/{epochs}: step {step}/{steps}, train loss {train_loss:.4}"),
        Event::Epoch {
            run_id,
            epoch,
            epochs,
            train_loss,
            metric,
            dev,
            seconds,
        } => format!("  {run_id} epoch {epoch}/{epochs}: train loss {train_loss:.4}, dev {metric} {dev:.4} ({seconds:.0} s)"),
        Event::RunFinished {
            run_id,
            task,
            method,
            seed,
            status,
            metric,
            score,
            seconds,
            done,
            total,
            eta_seconds,
        } => {
            let eta = eta_seconds.map_or("ETA after the first run".into(), eta_text);
            let result = match (metric, score) {
                (Some(metric), Some(score)) => format!("{metric} {score:.4}"),
                _ => status.to_string(),
            };
            let took = seconds.map_or(String::new(), |s| format!(" ({s:.0} s)"));
            format!("[{done}/{total}, {eta}] finished {run_id} {task} {method} seed {seed}: {result}{took}")
        }
        Event::Trial { .. } => trial_line(event),
    }
}

/// `[12/84 run-epochs, ETA 9 min] <id> sst2 pt2 lr=0.0469 prompt_len=16 reached epoch 2: …`
fn trial_line(event: &Event) -> String {
    let Event::Trial {
        run_id,
        task,
        method,
        values,
        what,
        metric,
        score,
        done,
        total,
        eta_seconds,
    } = event
    else {
        unreachable!("trial_line is called with trial events")
    };
    let eta = eta_seconds.map_or(String::new(), |s| format!(", {}", eta_text(s)));
    let result = match (metric, score) {
        (Some(metric), Some(score)) => format!(": {metric} {score:.4}"),
        _ => String::new(),
    };
    format!("[{done}/{total} run-epochs{eta}] {run_id} {task} {method} {values} {what}{result}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_the_run_its_place_in_the_sweep_and_its_score() {
        let finished = Event::RunFinished {
            run_id: "abc",
            task: "sst2",
            method: "pt2",
            seed: 2,
            status: "ok",
            metric: Some("accuracy"),
            score: Some(0.8125),
            seconds: Some(61.2),
            done: 3,
            total: 30,
            eta_seconds: Some(1790.0),
        };
        assert_eq!(
            line(&finished),
            "[3/30, ETA 30 min] finished abc sst2 pt2 seed 2: accuracy 0.8125 (61 s)"
        );
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&finished).unwrap()).unwrap();
        assert_eq!(json["event"], "run_finished");
        assert_eq!(json["score"], 0.8125);
    }
}
