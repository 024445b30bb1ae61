//! A sweep's results: tables, statistics, charts, report.md and report.html, and the regression
//! check; reads records only.

pub mod charts;
pub mod check;
pub mod html;
pub mod report;
pub mod results;
pub mod search;
pub mod stats;
pub mod table;
