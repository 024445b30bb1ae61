//! `ptv2 sweep` of a search end to end on a one-layer MiniLM and real RTE: successive halving
//! killed with SIGKILL mid-rung (two workers) and started again ends with the same trials,
//! promotions and scores as an uninterrupted one; a promoted trial's curve is bitwise the one
//! of the same configuration trained straight through; a second run trains nothing; `--dry-run`
//! lists the trials and rungs; the report says what was found and what it saved.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ptv2_harness::orchestration::plan::{plan, SweepPlan};
use ptv2_harness::orchestration::search_run::{record, survey};
use ptv2_harness::records::run_dir::{RunDir, RunMetrics, RunStatus, SweepDir};
use ptv2_harness::run::setup::RunEnv;
use ptv2_harness::run::train::train;

mod common;
use common::{data_dir, kill_group};

const SEARCH: &str = r#"
[fixed]
model = "minilm-l6@1"
task = "rte"
epochs = 4
batch_size = 8
max_train = 64
max_eval = 32
max_len = 64
[grid]
method = ["pt2", "lora"]
seed = [1, 2]
[search]
trials = 4
eta = 2
min_epochs = 1
seed = 3
[[override]]
when = { method = "pt2" }
search = { lr = { log_uniform = [3e-3, 1e-1] }, prompt_len = { choice = [4, 8] } }
[[override]]
when = { method = "lora" }
search = { lr = { log_uniform = [1e-4, 1e-2] } }
"#;

fn ptv2(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ptv2"));
    command.args(args).arg("--data").arg(data_dir());
    command
}

fn sweep_args<'a>(toml: &'a str, reports: &'a str, workers: &'a str) -> Vec<&'a str> {
    vec!["sweep", toml, "--reports", reports, "--workers", workers]
}

type Curve = Vec<(f64, Vec<(String, f64)>)>;

fn curve(m: &RunMetrics) -> Curve {
    m.epochs
        .iter()
        .map(|e| (e.train_loss, e.dev.clone()))
        .collect()
}

/// Every trial's and seed run's state and curve, by run id.
fn outcome(reports: &Path) -> Vec<(String, Option<RunStatus>, Option<Curve>)> {
    let search = match plan(SEARCH, "s.toml").unwrap() {
        SweepPlan::Search(search) => search,
        SweepPlan::Grid(_) => panic!("a search"),
    };
    let sweep = SweepDir(reports.join("s"));
    let mut ids: Vec<String> = search.trial_runs().into_iter().map(|r| r.id).collect();
    for state in survey(&search, &sweep).unwrap() {
        ids.extend(state.seed_runs.iter().map(|r| r.id.clone()));
    }
    ids.into_iter()
        .map(|id| {
            let dir = sweep.run(&id);
            let status = dir.status().map(|s| s.status);
            (id, status, dir.metrics().ok().map(|m| curve(&m)))
        })
        .collect()
}

fn dry_run_lists_trials_and_rungs(toml: &str, reports: &str) {
    let listing = ptv2(&["sweep", toml, "--reports", reports, "--dry-run"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    assert!(
        listing.contains("4 trials, rungs at epochs 1, 2, 4: 8 run-epochs against 16"),
        "{listing}"
    );
    assert_eq!(
        listing.matches("[pending, to epoch 1]").count(),
        8,
        "{listing}"
    );
}

/// η 3 first (one trial of four goes on at each rung), then η 2: trials pruned under 3 and
/// promoted under 2 train again from their start and end where the η-2 search's do.
fn a_changed_eta_ends_as_a_search_run_with_it(dir: &Path, whole: &Path) {
    let changed = dir.join("changed");
    let toml = dir.join("changed.toml");
    let run = |text: &str| {
        std::fs::write(&toml, text).unwrap();
        let (toml, reports) = (toml.display().to_string(), changed.display().to_string());
        let out = ptv2(&sweep_args(&toml, &reports, "1")).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&SEARCH.replace("eta = 2", "eta = 3"));
    run(SEARCH);
    std::fs::rename(changed.join("changed"), changed.join("s")).unwrap();
    assert_eq!(outcome(&changed), outcome(whole));
}

fn the_report_says_what_was_found_and_saved(cut: &Path) {
    let record = record(
        &match plan(SEARCH, "s.toml").unwrap() {
            SweepPlan::Search(s) => s,
            SweepPlan::Grid(_) => unreachable!(),
        },
        &SweepDir(cut.join("s")),
    )
    .unwrap();
    for group in &record.groups {
        assert_eq!((group.spent_epochs, group.full_epochs), (8, 16));
        assert!(group.best.is_some());
    }
    let report = std::fs::read_to_string(cut.join("s/report.md")).unwrap();
    assert!(
        report.contains("## Search")
            && report.contains("16 run-epochs saved (50%)")
            && report.contains("min of run time"),
        "{report}"
    );
    assert!(cut.join("s/charts/search_rte_pt2_curves.png").exists());
    assert!(cut.join("s/charts/search_rte_lora_lr.png").exists());
}

#[test]
fn a_search_killed_mid_rung_ends_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("s.toml");
    std::fs::write(&toml, SEARCH).unwrap();
    let toml = toml.display().to_string();
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    let (whole_s, cut_s) = (whole.display().to_string(), cut.display().to_string());
    dry_run_lists_trials_and_rungs(&toml, &whole_s);
    let status = ptv2(&sweep_args(&toml, &whole_s, "1")).output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let log = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        log.contains("training to epoch 1") && log.contains("reached epoch 1"),
        "{log}"
    );

    for wait_ms in [2500, 6000, 4000] {
        let mut child = ptv2(&sweep_args(&toml, &cut_s, "2"))
            .stdout(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
        kill_group(&mut child);
    }
    let status = ptv2(&sweep_args(&toml, &cut_s, "2")).output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    let (a, b) = (outcome(&whole), outcome(&cut));
    assert_eq!(a, b, "same trials, promotions, seed runs and curves");
    let pruned = a
        .iter()
        .filter(|(_, s, _)| *s == Some(RunStatus::Pruned))
        .count();
    let ok = a
        .iter()
        .filter(|(_, s, _)| *s == Some(RunStatus::Ok))
        .count();
    // Per group: 4 trials → 2 at epoch 2 → 1 at epoch 4, then its seed runs (seed 1 is the
    // trial itself, listed again).
    assert_eq!((pruned, ok, a.len()), (6, 6, 12), "{a:?}");

    // A second run trains nothing.
    let before: Vec<_> = outcome(&cut);
    let again = ptv2(&sweep_args(&toml, &cut_s, "1")).output().unwrap();
    let again = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(!again.contains("training"), "{again}");
    assert_eq!(before, outcome(&cut));

    the_report_says_what_was_found_and_saved(&cut);
    a_changed_eta_ends_as_a_search_run_with_it(dir.path(), &whole);
}

#[test]
fn a_promoted_trial_is_the_run_trained_straight_through() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("s.toml");
    std::fs::write(&toml, SEARCH).unwrap();
    let reports = dir.path().join("r");
    let (toml_s, reports_s) = (toml.display().to_string(), reports.display().to_string());
    let status = ptv2(&sweep_args(&toml_s, &reports_s, "1"))
        .arg("--quiet")
        .status()
        .unwrap();
    assert!(status.success());
    let search = match plan(SEARCH, "s.toml").unwrap() {
        SweepPlan::Search(s) => s,
        SweepPlan::Grid(_) => unreachable!(),
    };
    let sweep = SweepDir(reports.join("s"));
    for state in survey(&search, &sweep).unwrap() {
        let best = state.best().expect("decided");
        let searched = sweep.run(&best.run.id).metrics().unwrap();
        assert_eq!(
            searched.epochs.len(),
            4,
            "trained to the end over three rungs"
        );
        let straight = dir.path().join(format!("straight-{}", best.run.id));
        let env = RunEnv {
            cache: ptv2_models::hub::default_cache_dir(),
            device: "cpu".into(),
            data_dir: data_dir(),
            out: straight.clone(),
            progress: None,
            verbose: false,
            stop_after: None,
        };
        train(&best.run.settings, &env).unwrap();
        let straight = RunDir(straight).metrics().unwrap();
        assert_eq!(curve(&searched), curve(&straight), "trial {}", best.run.id);
    }
}
