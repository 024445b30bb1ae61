//! Results as polars tables: `results.parquet` + `results.csv` (one row per run × split × metric)
//! and `summary.parquet` + `summary.csv` (mean, std, n over seeds), each written atomically.

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{
    Column, CsvWriter, DataFrame, ParquetReader, ParquetWriter, PlSmallStr, PolarsResult,
    SerReader, SerWriter,
};

use crate::results::{ResultRow, SummaryRow};

/// One column's values, read off each row.
fn values<T, V>(rows: &[T], f: impl Fn(&T) -> V) -> Vec<V> {
    rows.iter().map(f).collect()
}

fn opt_u64<T>(rows: &[T], f: impl Fn(&T) -> Option<usize>) -> Vec<Option<u64>> {
    rows.iter().map(|r| f(r).map(|v| v as u64)).collect()
}

/// The results rows as a DataFrame, columns in `results::COLUMNS` order.
pub fn results_frame(rows: &[ResultRow]) -> PolarsResult<DataFrame> {
    let c = |name: &str| PlSmallStr::from(name);
    DataFrame::new_infer_height(vec![
        Column::new(c("run_id"), values(rows, |r| r.run_id.clone())),
        Column::new(c("model"), values(rows, |r| r.model.clone())),
        Column::new(c("task"), values(rows, |r| r.task.clone())),
        Column::new(c("method"), values(rows, |r| r.method.clone())),
        Column::new(c("prompt_len"), values(rows, |r| r.prompt_len as u64)),
        Column::new(c("reparam_hidden"), opt_u64(rows, |r| r.reparam_hidden)),
        Column::new(
            c("prefix_layers"),
            values(rows, |r| r.prefix_layers.clone()),
        ),
        Column::new(c("lr"), values(rows, |r| r.lr)),
        Column::new(c("epochs"), values(rows, |r| r.epochs as u64)),
        Column::new(c("batch_size"), values(rows, |r| r.batch_size as u64)),
        Column::new(c("seed"), values(rows, |r| r.seed)),
        Column::new(c("max_train"), opt_u64(rows, |r| r.max_train)),
        Column::new(c("max_eval"), opt_u64(rows, |r| r.max_eval)),
        Column::new(c("max_len"), values(rows, |r| r.max_len as u64)),
        Column::new(c("status"), values(rows, |r| r.status.clone())),
        Column::new(c("split"), values(rows, |r| r.split.clone())),
        Column::new(c("metric"), values(rows, |r| r.metric.clone())),
        Column::new(c("value"), values(rows, |r| r.value)),
        Column::new(c("main"), values(rows, |r| r.main)),
        Column::new(c("best_epoch"), opt_u64(rows, |r| r.best_epoch)),
        Column::new(c("trainable_params"), opt_u64(rows, |r| r.trainable_params)),
        Column::new(c("total_params"), opt_u64(rows, |r| r.total_params)),
        Column::new(
            c("trainable_percent"),
            values(rows, |r| r.trainable_percent),
        ),
        Column::new(c("wall_seconds"), values(rows, |r| r.wall_seconds)),
        Column::new(c("steps_per_second"), values(rows, |r| r.steps_per_second)),
        Column::new(c("peak_rss_mb"), values(rows, |r| r.peak_rss_mb)),
        Column::new(c("error"), values(rows, |r| r.error.clone())),
    ])
}

pub fn summary_frame(rows: &[SummaryRow]) -> PolarsResult<DataFrame> {
    let c = |name: &str| PlSmallStr::from(name);
    DataFrame::new_infer_height(vec![
        Column::new(c("model"), values(rows, |r| r.model.clone())),
        Column::new(c("task"), values(rows, |r| r.task.clone())),
        Column::new(c("method"), values(rows, |r| r.method.clone())),
        Column::new(c("prompt_len"), values(rows, |r| r.prompt_len as u64)),
        Column::new(
            c("prefix_layers"),
            values(rows, |r| r.prefix_layers.clone()),
        ),
        Column::new(c("reparam_hidden"), opt_u64(rows, |r| r.reparam_hidden)),
        Column::new(c("lr"), values(rows, |r| r.lr)),
        Column::new(c("metric"), values(rows, |r| r.metric.clone())),
        Column::new(c("mean"), values(rows, |r| r.mean)),
        Column::new(c("std"), values(rows, |r| r.std)),
        Column::new(c("n"), values(rows, |r| r.n as u64)),
        Column::new(
            c("trainable_params"),
            values(rows, |r| r.trainable_params as u64),
        ),
        Column::new(
            c("trainable_percent"),
            values(rows, |r| r.trainable_percent),
        ),
        Column::new(c("total_params"), values(rows, |r| r.total_params as u64)),
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
