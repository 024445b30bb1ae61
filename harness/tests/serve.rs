//! `ptv2 serve` on a free loopback port: four runs of one backbone (PT2 prefixes of two lengths,
//! PT prompts; pairs, NER, QA) answer concurrent requests, batched together across tasks, with
//! what `ptv2 predict` gives per task; bad requests get a 4xx naming the field and the server
//! stays up; SIGTERM stops it cleanly.

use std::process::Stdio;

use serde_json::{json, Value};

use ptv2_harness::serving::serve::{http_request, ServeProcess};

mod common;
use common::{data_dir, predict, small_run};

struct Served(ServeProcess);

impl Served {
    fn start(checkpoints: &str) -> Self {
        let args: Vec<String> = [
            "--max-wait-ms",
            "200",
            "--max-inputs",
            "8",
            "--max-body-bytes",
            "20000",
            "--checkpoints",
            checkpoints,
            "--data",
            data_dir().to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        let exe = std::path::Path::new(env!("CARGO_BIN_EXE_ptv2"));
        Self(ServeProcess::start(exe, &args, Stdio::inherit()).unwrap())
    }

    fn call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, text) = http_request(&self.0.address, method, path, body).unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}"));
        (status, value)
    }
}

/// Every number of two outputs within 1e-4, everything else equal.
fn assert_same(served: &Value, alone: &Value, what: &str) {
    match (served, alone) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() < 1e-4, "{what}: {a} vs {b}");
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{what}: lengths");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same(x, y, &format!("{what}[{i}]"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            assert_eq!(a.len(), b.len(), "{what}: keys");
            for (key, x) in a {
                assert_same(x, &b[key], &format!("{what}.{key}"));
            }
        }
        _ => assert_eq!(served, alone, "{what}"),
    }
}

#[test]
fn mixed_task_batches_answer_what_predict_gives_and_bad_requests_get_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| dir.path().join(name);
    small_run("rte", "pt2", 4, "64", &run("rte"));
    small_run("wnut17", "pt2", 8, "64", &run("wnut17"));
    small_run("sst2", "pt", 6, "64", &run("sst2"));
    small_run("squad", "pt2", 4, "128", &run("squad"));
    // LoRA's merged weights are its own encoder: it must not ride on the PT2 runs' backbone.
    small_run("mrpc", "lora", 4, "64", &run("mrpc"));
    let requests = [
        (
            "rte",
            vec![
                json!({"text": "A man plays a guitar on stage.", "pair": "A man is playing music."}),
                json!({"text": "The cat sleeps.", "pair": "The dog barks loudly at the mailman."}),
                json!({"text": "Paris is the capital of France.", "pair": "Paris is in France."}),
            ],
        ),
        (
            "wnut17",
            vec![
                json!({"tokens": ["I", "flew", "to", "New", "York", "with", "Delta"]}),
                json!({"tokens": ["lol", "@justin", "is", "in", "LA"]}),
            ],
        ),
        (
            "sst2",
            vec![
                json!({"text": "a gorgeous, witty film"}),
                json!({"text": "tedious"}),
            ],
        ),
        (
            "squad",
            vec![json!({
                "question": "Where is the Eiffel tower?",
                "context": "The Eiffel tower stands in Paris, the capital of France, since 1889."
            })],
        ),
        (
            "mrpc",
            vec![
                json!({"text": "The company posted a profit.", "pair": "The firm made money."}),
                json!({"text": "He left early.", "pair": "The train was late again."}),
            ],
        ),
    ];
    let alone: Vec<Vec<Value>> = requests
        .iter()
        .map(|(task, inputs)| predict(&run(task), inputs))
        .collect();

    let checkpoints: Vec<String> = requests
        .iter()
        .map(|(task, _)| run(task).display().to_string())
        .collect();
    let mut server = Served::start(&checkpoints.join(","));
    let (status, tasks) = server.call("GET", "/v1/tasks", "");
    assert_eq!(status, 200);
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 5);
    assert_eq!(
        tasks["tasks"][0]["labels"],
        json!(["entailment", "not_entailment"])
    );

    // All five tasks at once: the batcher waits 200 ms for company, so they share passes.
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = requests
            .iter()
            .map(|(task, inputs)| {
                let body = json!({"task": task, "inputs": inputs}).to_string();
                let server = &server;
                scope.spawn(move || server.call("POST", "/v1/predict", &body))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (((task, _), (status, answer)), alone) in requests.iter().zip(&answers).zip(&alone) {
        assert_eq!(*status, 200, "{task}: {answer}");
        assert_same(&answer["outputs"], &json!(alone), task);
    }
    let (_, metrics) = server.call("GET", "/metrics", "");
    assert!(
        metrics["tasks_per_pass"]["max"].as_u64().unwrap() >= 2,
        "no pass mixed tasks: {metrics}"
    );

    let bad = [
        (r#"{"task": "cola", "inputs": []}"#, 404, "\"task\""),
        (r#"{"task": 3, "inputs": []}"#, 422, "\"task\""),
        (
            r#"{"task": "rte", "inputs": {"text": "x"}}"#,
            422,
            "\"inputs\"",
        ),
        (
            r#"{"task": "rte", "inputs": [{"text": 7, "pair": "y"}]}"#,
            422,
            "inputs[0]",
        ),
        (
            r#"{"task": "wnut17", "inputs": [{"tokens": "not a list"}]}"#,
            422,
            "inputs[0]",
        ),
        (r#"{"task": "rte", "inputs": ["#, 400, "not JSON"),
    ];
    for (body, status, names) in bad {
        let (got, answer) = server.call("POST", "/v1/predict", body);
        assert_eq!(got, status, "{body}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(names), "{body}: {message}");
    }
    let many = json!({"task": "sst2", "inputs": vec![json!({"text": "ok"}); 9]}).to_string();
    assert_eq!(server.call("POST", "/v1/predict", &many).0, 413);
    let huge = json!({"task": "sst2", "inputs": [{"text": "word ".repeat(5000)}]}).to_string();
    let (status, _) = http_request(&server.0.address, "POST", "/v1/predict", &huge).unwrap();
    assert_eq!(status, 413);

    // Still serving, and the errors were counted.
    assert_eq!(server.call("GET", "/healthz", "").0, 200);
    let body = json!({"task": "sst2", "inputs": requests[2].1}).to_string();
    let (status, answer) = server.call("POST", "/v1/predict", &body);
    assert_eq!(status, 200);
    assert_same(&answer["outputs"], &json!(alone[2]), "sst2 again");
    let (_, metrics) = server.call("GET", "/metrics", "");
    assert_eq!(metrics["errors"], json!(8), "{metrics}");

    let status = server.0.stop().unwrap();
    assert!(status.success(), "after SIGTERM: {status}");
}
