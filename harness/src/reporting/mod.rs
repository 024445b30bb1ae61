//! A sweep's results: tables, statistics, charts, report.md and the regression check; reads records only.

pub mod charts;
pub mod check;
pub mod report;
pub mod results;
pub mod stats;
pub mod table;
