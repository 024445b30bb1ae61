//! Results as polars tables: `results.parquet` + `results.csv` (one row per run × split × metric)
//! and `summary.parquet` + `summary.csv` (mean, std, n over seeds), each written atomically.

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{
    Column, CsvWriter, DataFrame, ParquetReader, ParquetWriter, PlSmallStr, PolarsResult,
    SerReader, SerWriter,
};

use crate::results::{ResultRow, SummaryRow};

fn strings<T>(rows: &[T], f: impl Fn(&T) -> String) -> Vec<String> {
    rows.iter().map(f).collect()
}

fn opt_u64<T>(rows: &[T], f: impl Fn(&T) -> Option<usize>) -> Vec<Option<u64>> {
    rows.iter().map(|r| f(r).map(|v| v as u64)).collect()
}

/// The results rows as a DataFrame, columns in `results::COLUMNS` order.
pub fn results_frame(rows: &[ResultRow]) -> PolarsResult<DataFrame> {
    let c = |name: &str| PlSmallStr::from(name);
    DataFrame::new_infer_height(vec![
        Column::new(c("run_id"), strings(rows, |r| r.run_id.clone())),
        Column::new(c("model"), strings(rows, |r| r.model.clone())),
        Column::new(c("task"), strings(rows, |r| r.task.clone())),
        Column::new(c("method"), strings(rows, |r| r.method.clone())),
        Column::new(
            c("prompt_len"),
            rows.iter().map(|r| r.prompt_len as u64).collect::<Vec<_>>(),
        ),
        Column::new(c("reparam_hidden"), opt_u64(rows, |r| r.reparam_hidden)),
        Column::new(
            c("prefix_layers"),
            strings(rows, |r| r.prefix_layers.clone()),
        ),
        Column::new(c("lr"), rows.iter().map(|r| r.lr).collect::<Vec<_>>()),
        Column::new(
            c("epochs"),
            rows.iter().map(|r| r.epochs as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            c("batch_size"),
            rows.iter().map(|r| r.batch_size as u64).collect::<Vec<_>>(),
        ),
        Column::new(c("seed"), rows.iter().map(|r| r.seed).collect::<Vec<_>>()),
        Column::new(c("max_train"), opt_u64(rows, |r| r.max_train)),
        Column::new(c("max_eval"), opt_u64(rows, |r| r.max_eval)),
        Column::new(
            c("max_len"),
            rows.iter().map(|r| r.max_len as u64).collect::<Vec<_>>(),
        ),
        Column::new(c("status"), strings(rows, |r| r.status.clone())),
        Column::new(c("split"), strings(rows, |r| r.split.clone())),
        Column::new(c("metric"), strings(rows, |r| r.metric.clone())),
        Column::new(c("value"), rows.iter().map(|r| r.value).collect::<Vec<_>>()),
        Column::new(c("main"), rows.iter().map(|r| r.main).collect::<Vec<_>>()),
        Column::new(c("best_epoch"), opt_u64(rows, |r| r.best_epoch)),
        Column::new(c("trainable_params"), opt_u64(rows, |r| r.trainable_params)),
        Column::new(c("total_params"), opt_u64(rows, |r| r.total_params)),
        Column::new(
            c("trainable_percent"),
            rows.iter().map(|r| r.trainable_percent).collect::<Vec<_>>(),
        ),
        Column::new(
            c("wall_seconds"),
            rows.iter().map(|r| r.wall_seconds).collect::<Vec<_>>(),
        ),
        Column::new(
            c("steps_per_second"),
            rows.iter().map(|r| r.steps_per_second).collect::<Vec<_>>(),
        ),
        Column::new(
            c("peak_rss_mb"),
            rows.iter().map(|r| r.peak_rss_mb).collect::<Vec<_>>(),
        ),
        Column::new(
            c("error"),
            rows.iter().map(|r| r.error.clone()).collect::<Vec<_>>(),
        ),
    ])
}

pub fn summary_frame(rows: &[SummaryRow]) -> PolarsResult<DataFrame> {
    let c = |name: &str| PlSmallStr::from(name);
    DataFrame::new_infer_height(vec![
        Column::new(c("model"), strings(rows, |r| r.model.clone())),
        Column::new(c("task"), strings(rows, |r| r.task.clone())),
        Column::new(c("method"), strings(rows, |r| r.method.clone())),
        Column::new(
            c("prompt_len"),
            rows.iter().map(|r| r.prompt_len as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            c("prefix_layers"),
            strings(rows, |r| r.prefix_layers.clone()),
        ),
        Column::new(c("reparam_hidden"), opt_u64(rows, |r| r.reparam_hidden)),
        Column::new(c("lr"), rows.iter().map(|r| r.lr).collect::<Vec<_>>()),
        Column::new(c("metric"), strings(rows, |r| r.metric.clone())),
        Column::new(c("mean"), rows.iter().map(|r| r.mean).collect::<Vec<_>>()),
        Column::new(c("std"), rows.iter().map(|r| r.std).collect::<Vec<_>>()),
        Column::new(c("n"), rows.iter().map(|r| r.n as u64).collect::<Vec<_>>()),
        Column::new(
            c("trainable_params"),
            rows.iter()
                .map(|r| r.trainable_params as u64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            c("trainable_percent"),
            rows.iter().map(|r| r.trainable_percent).collect::<Vec<_>>(),
        ),
        Column::new(
            c("total_params"),
            rows.iter()
                .map(|r| r.total_params as u64)
                .collect::<Vec<_>>(),
        ),
    ])
}

/// Write `stem.parquet` and `stem.csv`, each to a temporary file renamed into place.
pub fn write_frame(df: &mut DataFrame, stem: &Path) -> Result<()> {
    for ext in ["parquet", "csv"] {
        let path = stem.with_extension(ext);
        let tmp = path.with_extension(format!("{ext}.tmp-{}", std::process::id()));
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        if ext == "parquet" {
            ParquetWriter::new(file)
                .finish(df)
                .with_context(|| format!("writing {}", path.display()))?;
        } else {
            CsvWriter::new(file)
                .finish(df)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot move {} into place", path.display()))?;
    }
    Ok(())
}

/// Read a Parquet file (ours, or a Hugging Face `datasets` export) into a DataFrame.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{summarize, tests_support::row};

    #[test]
    fn results_round_trip_through_parquet_and_csv() {
        let mut rows = vec![row("rte", "pt2", 16, 1, 0.55), row("rte", "ft", 0, 1, 0.60)];
        rows[1].error = Some("a, \"quoted\" error".into());
        let dir = tempfile::tempdir().unwrap();
        let mut df = results_frame(&rows).unwrap();
        assert_eq!(df.width(), crate::results::COLUMNS.len());
        write_frame(&mut df, &dir.path().join("results")).unwrap();
        let back = read_parquet(&dir.path().join("results.parquet")).unwrap();
        assert_eq!(back.shape(), (2, crate::results::COLUMNS.len()));
        assert!(back.equals_missing(&df));
        let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        assert_eq!(
            csv.lines().next().unwrap(),
            crate::results::COLUMNS.join(",")
        );
        let mut summary = summary_frame(&summarize(&rows)).unwrap();
        write_frame(&mut summary, &dir.path().join("summary")).unwrap();
        assert_eq!(
            read_parquet(&dir.path().join("summary.parquet"))
                .unwrap()
                .height(),
            2
        );
    }
}
