//! Hugging Face `datasets` Parquet exports as a file source any task can read from
//! (`--task parquet:TASK:TRAIN.parquet,DEV.parquet`), read through polars: each row becomes the
//! JSON object keyed by column name that the task's family turns into examples (HF's column
//! names are mostly the native formats' keys, so the templates and label rules are the same).

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{AnyValue, DataFrame, ParquetReader, SerReader};
use serde_json::{json, Map, Value};

fn to_json(value: AnyValue) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => json!(b),
        AnyValue::String(s) => json!(s),
        AnyValue::StringOwned(s) => json!(s.as_str()),
        AnyValue::Int8(v) => json!(v),
        AnyValue::Int16(v) => json!(v),
        AnyValue::Int32(v) => json!(v),
        AnyValue::Int64(v) => json!(v),
        AnyValue::UInt8(v) => json!(v),
        AnyValue::UInt16(v) => json!(v),
        AnyValue::UInt32(v) => json!(v),
        AnyValue::UInt64(v) => json!(v),
        AnyValue::Float32(v) => json!(v),
        AnyValue::Float64(v) => json!(v),
        AnyValue::List(series) => Value::Array(series.iter().map(to_json).collect()),
        AnyValue::Struct(..) => to_json(value.into_static()),
        AnyValue::StructOwned(payload) => {
            let (values, fields) = *payload;
            Value::Object(
                fields
                    .iter()
                    .map(|f| f.name().to_string())
                    .zip(values.into_iter().map(to_json))
                    .collect(),
            )
        }
        other => json!(other.to_string()),
    }
}

/// A row's string column, or an error naming the row and the column.
pub fn string_column(row: &Map<String, Value>, key: &str, at: &str) -> Result<String> {
    row.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("{at}: expected a string column \"{key}\""))
}

/// Read a Parquet file (ours, or a Hugging Face `datasets` export) into a DataFrame.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))
}

/// Every row of a Parquet file as a JSON object keyed by column name.
pub fn rows(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let df = read_parquet(path)?;
    let columns = df.columns();
    let mut rows = vec![Map::new(); df.height()];
    for column in columns {
        let name = column.name().to_string();
        let series = column.as_materialized_series();
        for (i, value) in series.iter().enumerate() {
            rows[i].insert(name.clone(), to_json(value));
        }
    }
    Ok(rows)
}

/// A Parquet file's examples: `convert` turns each row (with an id `FILE:ROW` and a place `PATH
/// row ROW` for errors) into the task's examples.
pub fn read_rows<T>(
    path: &Path,
    convert: impl Fn(Map<String, Value>, &str, &str) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let file = crate::records::data::file_name(path);
    let mut examples = vec![];
    for (i, row) in rows(path)?.into_iter().enumerate() {
        let at = format!("{} row {i}", path.display());
        examples.extend(convert(row, &format!("{file}:{i}"), &at)?);
    }
    Ok(examples)
}
