//! Bad input, everywhere: each case runs the `ptv2` binary on one mistake a user can make and
//! expects one error naming the flag, key, file or line, a non-zero exit, and no panic.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::data_dir;

/// The files the cases point at, in a temporary dir.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "bad.tsv",
            "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tmaybe\n",
        );
        write("bad.conll", "EU B-ORG\nrejects\n\n");
        write("bad.json", r#"{"data": [{"paragraphs": [{"qas": []}]}]}"#);
        write(
            "bad.jsonl",
            "{\"question\": \"q\", \"passage\": \"p\", \"label\": true}\nnot json\n",
        );
        write("unknown-key.toml", "[fixed]\nmodle = \"x\"\n");
        write(
            "wrong-type.toml",
            "[fixed]\ntask = \"sst2\"\nmethod = \"ft\"\nlr = 1e-4\nbatch_size = \"eight\"\n",
        );
        write("not-toml.toml", "[fixed\ntask = \n");
        write(
            "bad-bench.csv",
            "framework,model,method,precision,batch_size,train_step_s,eval_seq_per_s,train_gflop,eval_gflop,threads\nptv2,minilm-l6,pt2,f32,16,fast,60,93,46,2\n",
        );
        write("grid-scalar.toml", "[grid]\nlr = 0.1\n");
        write(
            "negative-lr.toml",
            "[fixed]\ntask = \"sst2\"\nmethod = \"pt2\"\nlr = -1.0\n",
        );
        write(
            "baseline-no-setting.csv",
            "task,metric,mean\nsst2,accuracy,0.5\n",
        );
        write("labels.txt", "1\n0\nseven\n");
        std::fs::create_dir(dir.path().join("empty-run")).unwrap();
        let run = dir.path().join("truncated-run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(
            run.join("config.json"),
            r#"{"model":"minilm-l6","task":"sst2","method":"pt2","prompt_len":4,"reparam_hidden":null,"prefix_layers":"all","prompt_init":"random","prefix_init":"random","lr":0.01,"epochs":1,"batch_size":8,"seed":1,"max_train":8,"max_eval":8,"max_len":32,"dropout":0.1,"schedule":"linear"}"#,
        )
        .unwrap();
        std::fs::write(
            run.join("checkpoint.safetensors"),
            b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":",
        )
        .unwrap();
        Self(dir)
    }
}

/// `ptv2 ARGS` → (exit code, stderr).
fn ptv2(args: &[String]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ptv2"))
        .args(args)
        .env("PTV2_DATA", data_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.code().unwrap_or(-1), stderr)
}

/// Each case: a name, the command line (`train` gets a tiny PT2 run on SST-2 with these flags in
/// place of its defaults; `{files}` is the dir of `Files`, `{experiments}` the committed sweeps),
/// and the text its error must hold.
const CASES: &[(&str, &str, &str)] = &[
    (
        "negative lr",
        "train --lr=-1",
        "\"lr\" must be a number > 0, found -1",
    ),
    (
        "zero lr",
        "train --lr=0",
        "\"lr\" must be a number > 0, found 0",
    ),
    (
        "lr not a number",
        "train --lr=fast",
        "invalid value 'fast' for '--lr <LR>'",
    ),
    (
        "dropout of 1.5",
        "train --dropout=1.5",
        "\"dropout\" must be in [0, 1), found 1.5",
    ),
    (
        "no batch",
        "train --batch-size=0",
        "\"batch_size\" must be at least 1, found 0",
    ),
    (
        "batch in words",
        "train --batch-size=eight",
        "invalid value 'eight' for '--batch-size",
    ),
    (
        "no epochs",
        "train --epochs=0",
        "\"epochs\" must be at least 1, found 0",
    ),
    (
        "no examples",
        "train --max-train=0",
        "\"max_train\" must be at least 1, found 0",
    ),
    (
        "too few tokens",
        "train --max-len=2",
        "\"max_len\" must be at least 8 tokens, found 2",
    ),
    (
        "no prompt",
        "train --prompt-len=0",
        "\"prompt_len\" must be at least 1 for pt2, found 0",
    ),
    (
        "prompt beyond the positions",
        "train --prompt-len=600",
        "\"prompt_len\" 600 + \"max_len\" 128 = 728 tokens, but minilm-l6 has 512 positions",
    ),
    (
        "unknown method",
        "train --method=pt3",
        "invalid value 'pt3' for '--method <METHOD>'",
    ),
    (
        "unknown schedule",
        "train --schedule=cosine",
        "schedule \"cosine\": expected linear",
    ),
    (
        "warmup past the end",
        "train --schedule=linear:1.5",
        "WARMUP_RATIO must be in [0, 1)",
    ),
    (
        "no decay",
        "train --schedule=exp:0",
        "GAMMA must be in (0, 1]",
    ),
    (
        "unknown layers",
        "train --prefix-layers=middle:2",
        "layer selection \"middle:2\"",
    ),
    (
        "unknown init",
        "train --prefix-init=bogus",
        "init \"bogus\": expected random, normal:STD (STD > 0), vocab",
    ),
    (
        "real-token init of an MLP",
        "train --prefix-init=vocab --reparam-hidden=64",
        "prefix_init vocab needs a plain prefix",
    ),
    (
        "unknown task",
        "train --task=nope",
        "unknown task \"nope\": expected one of sst2",
    ),
    (
        "no such model",
        "train --model=/no/such/model",
        "unknown model \"/no/such/model\"",
    ),
    (
        "no such data dir",
        "train --data=/no/such/data",
        "data dir /no/such/data does not exist",
    ),
    (
        "unwritable output",
        "train --out=/proc/ptv2/run",
        "cannot create /proc/ptv2/run",
    ),
    (
        "bad TSV label",
        "train --task=rte:{files}/bad.tsv,{files}/bad.tsv",
        "{files}/bad.tsv:3: label \"maybe\" is not one of",
    ),
    (
        "bad CoNLL line",
        "train --task=conll:{files}/bad.conll,{files}/bad.conll",
        "{files}/bad.conll:2: expected a word and a tag",
    ),
    (
        "bad SQuAD file",
        "train --task=squad:{files}/bad.json,{files}/bad.json",
        "{files}/bad.json: data[0].paragraphs[0].context must be a string",
    ),
    (
        "bad JSONL line",
        "train --task=boolq:{files}/bad.jsonl,{files}/bad.jsonl",
        "{files}/bad.jsonl:2: not a JSON object",
    ),
    (
        "no such Parquet file",
        "train --task=parquet:sst2:/no/a.parquet,/no/b.parquet",
        "missing file /no/a.parquet",
    ),
    (
        "sweep: a bench row that is not a number",
        "sweep smoke --experiments={experiments} --bench={files}/bad-bench.csv",
        "bad-bench.csv:2: column train_step_s is \"fast\", expected a number",
    ),
    (
        "sweep: unknown key",
        "sweep {files}/unknown-key.toml",
        "unknown key \"modle\"",
    ),
    (
        "sweep: wrong type",
        "sweep {files}/wrong-type.toml",
        "wrong-type.toml: \"batch_size\" = \"eight\" is not valid",
    ),
    (
        "sweep: not TOML",
        "sweep {files}/not-toml.toml",
        "not-toml.toml: not valid TOML",
    ),
    (
        "sweep: no such file",
        "sweep {files}/missing.toml",
        "cannot read sweep file",
    ),
    (
        "sweep: axis not a list",
        "sweep {files}/grid-scalar.toml",
        "\"lr\" must be a non-empty list",
    ),
    (
        "sweep: negative lr",
        "sweep {files}/negative-lr.toml",
        "negative-lr.toml: \"lr\" must be a number > 0, found -1",
    ),
    (
        "sweep: bad shard",
        "sweep smoke --experiments={experiments} --shard=3/3",
        "--shard \"3/3\": expected i/n with 0 ≤ i < n",
    ),
    (
        "check: no such baseline",
        "check smoke --experiments={experiments} --baseline={files}/missing.csv",
        "missing.csv: not a readable summary CSV",
    ),
    (
        "check: baseline without settings",
        "check smoke --experiments={experiments} --baseline={files}/baseline-no-setting.csv",
        "no column \"setting\"",
    ),
    (
        "score: no such predictions",
        "score --task=sst2 --predictions={files}/missing.txt",
        "cannot read {files}/missing.txt",
    ),
    (
        "score: a label that is not one",
        "score --task=sst2 --predictions={files}/labels.txt",
        "{files}/labels.txt:3: \"seven\" is not a label of sst2",
    ),
    (
        "eval: not a run dir",
        "eval --checkpoint={files}/empty-run",
        "cannot read {files}/empty-run/config.json",
    ),
    (
        "predict: an input that is not JSON",
        "predict --checkpoint={files}/truncated-run --input={files}/bad.jsonl",
        "{files}/bad.jsonl:2: not a JSON object",
    ),
    (
        "predict: no such input",
        "predict --checkpoint={files}/truncated-run --input={files}/missing.jsonl",
        "cannot read {files}/missing.jsonl",
    ),
    (
        "eval: truncated checkpoint",
        "eval --checkpoint={files}/truncated-run",
        "checkpoint.safetensors: not a valid safetensors file",
    ),
];

/// A case's command line as arguments: `train` merges its flags into the tiny run's.
fn arguments(line: &str, files: &str) -> Vec<String> {
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
    let line = line
        .replace("{files}", files)
        .replace("{experiments}", &experiments.display().to_string());
    let mut words: Vec<String> = line.split_whitespace().map(String::from).collect();
    if words[0] == "train" {
        let out = std::env::temp_dir().join(format!("ptv2-bad-input-{}", std::process::id()));
        let defaults = [
            "--task=sst2".to_string(),
            "--method=pt2".into(),
            "--lr=1e-2".into(),
            "--max-train=8".into(),
            "--max-eval=8".into(),
            "--epochs=1".into(),
            format!("--out={}", out.display()),
        ];
        let flag = |w: &String| w.split('=').next().unwrap_or_default().to_string();
        for default in defaults {
            if !words.iter().any(|w| flag(w) == flag(&default)) {
                words.push(default);
            }
        }
    } else if words[0] == "sweep" {
        words.push("--dry-run".into());
    }
    words
}

#[test]
fn every_bad_input_gets_one_clear_error() {
    assert!(CASES.len() >= 30);
    let files = Files::new();
    let dir = files.0.path().display().to_string();
    let mut wrong = vec![];
    for (name, line, expected) in CASES {
        let (code, stderr) = ptv2(&arguments(line, &dir));
        let expected = expected.replace("{files}", &dir);
        // `SHOW_ERRORS=1 cargo test --test bad_inputs -- --nocapture` prints every message.
        if std::env::var_os("SHOW_ERRORS").is_some() {
            eprintln!("--- {name} (exit {code})\n{stderr}");
        }
        let ok = code != 0 && code != 101 && !stderr.contains("panicked");
        if !ok || !stderr.contains(&expected) {
            wrong.push(format!(
                "{name}: exit {code}, expected \"{expected}\" in:\n{stderr}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        CASES.len(),
        wrong.join("\n")
    );
}

/// A small tmpfs, mounted for the test's life (root only).
struct TinyDisk(PathBuf);

impl TinyDisk {
    fn mount(dir: &Path) -> Option<Self> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Ignored in the plain test run (mounting a tmpfs needs root); `just test` runs it as root.
#[test]
#[ignore = "mounts a 4 MB tmpfs: needs root (just test runs it when root)"]
fn a_full_disk_damages_nothing_already_written() {
    let dir = tempfile::tempdir().unwrap();
    let disk = TinyDisk::mount(dir.path()).expect("mounting a tmpfs (needs root)");
    let run = disk.0.join("run");
    let line = format!(
        "train --model=minilm-l6@1 --prompt-len=4 --max-len=32 --out={}",
        run.display()
    );
    let (code, stderr) = ptv2(&arguments(&line, ""));
    assert_eq!(code, 0, "{stderr}");
    let before = std::fs::read(run.join("metrics.json")).unwrap();
    // Fill the disk, then run again into the same dir.
    let filler = vec![0u8; 64 * 1024];
    let mut file = std::fs::File::create(disk.0.join("filler")).unwrap();
    while std::io::Write::write_all(&mut file, &filler).is_ok() {}
    let (code, stderr) = ptv2(&arguments(&format!("{line} --seed=2"), ""));
    assert!(
        code == 1 && stderr.contains("No space left on device"),
        "exit {code}: {stderr}"
    );
    assert_eq!(std::fs::read(run.join("metrics.json")).unwrap(), before);
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&config).is_ok(),
        "config.json whole"
    );
}
