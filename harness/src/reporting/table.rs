//! Results as polars tables: `results.parquet` + `results.csv` (one row per run × split × metric)
//! and `summary.parquet` + `summary.csv` (mean, std, n over seeds), each written atomically.

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{Column, CsvWriter, DataFrame, ParquetWriter, PlSmallStr, SerWriter};
#[cfg(test)]
use polars::prelude::{ParquetReader, SerReader};
use serde::Serialize;
use serde_json::Value;

/// Rows of any serializable record type as a DataFrame: one column per field, in field order,
/// typed by the values (whole numbers → u64, other numbers → f64, booleans, text; null where
/// absent). Adding a field to a row type adds its column; nothing else lists the columns.
pub fn frame<T: Serialize>(rows: &[T]) -> Result<DataFrame> {
    let objects: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|row| match serde_json::to_value(row) {
            Ok(Value::Object(fields)) => Ok(fields),
            other => anyhow::bail!("a table row must serialize to an object, got {other:?}"),
        })
        .collect::<Result<_>>()?;
    if objects.is_empty() {
        return Ok(DataFrame::empty());
    }
    // Every field any row has, in first-seen order (a setting at its default may be left out).
    let mut names: Vec<&String> = vec![];
    for name in objects.iter().flat_map(|o| o.keys()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let columns = names
        .into_iter()
        .map(|name| {
            let cells: Vec<&Value> = objects
                .iter()
                .map(|o| o.get(name).unwrap_or(&Value::Null))
                .collect();
            column(name, &cells)
        })
        .collect();
    Ok(DataFrame::new_infer_height(columns)?)
}

fn column(name: &str, cells: &[&Value]) -> Column {
    let name = PlSmallStr::from(name);
    let present: Vec<&&Value> = cells.iter().filter(|v| !v.is_null()).collect();
    let all = |test: fn(&Value) -> bool| !present.is_empty() && present.iter().all(|v| test(v));
    if all(Value::is_u64) {
        Column::new(name, cells.iter().map(|v| v.as_u64()).collect::<Vec<_>>())
    } else if all(Value::is_number) {
        Column::new(name, cells.iter().map(|v| v.as_f64()).collect::<Vec<_>>())
    } else if all(Value::is_boolean) {
        Column::new(name, cells.iter().map(|v| v.as_bool()).collect::<Vec<_>>())
    } else {
        let text = |v: &Value| match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        Column::new(name, cells.iter().map(|v| text(v)).collect::<Vec<_>>())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        run_id: String,
        max_train: Option<usize>,
        value: f64,
        main: bool,
        error: Option<String>,
    }

    fn read_parquet(path: &Path) -> DataFrame {
        ParquetReader::new(std::fs::File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    #[test]
    fn rows_round_trip_through_parquet_and_csv() {
        let row = |id: &str, max_train, error: Option<&str>| Row {
            run_id: id.into(),
            max_train,
            value: 0.5,
            main: true,
            error: error.map(str::to_string),
        };
        let rows = vec![
            row("a", Some(500), None),
            row("b", None, Some("a, \"quoted\" error")),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut df = frame(&rows).unwrap();
        let fields = serde_json::to_value(&rows[0]).unwrap();
        let names: Vec<&String> = fields.as_object().unwrap().keys().collect();
        assert_eq!(df.width(), names.len());
        write_frame(&mut df, &dir.path().join("results")).unwrap();
        let back = read_parquet(&dir.path().join("results.parquet"));
        assert_eq!(back.shape(), (2, names.len()));
        assert!(back.equals_missing(&df));
        let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        assert_eq!(header, names, "columns in field order");
        assert_eq!(header[0], "run_id");
        let max_train = back.column("max_train").unwrap();
        assert_eq!(max_train.dtype(), &polars::prelude::DataType::UInt64);
        assert_eq!(max_train.null_count(), 1);
    }
}
