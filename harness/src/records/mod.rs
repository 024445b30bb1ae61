//! What a run is and leaves on disk: its settings, its run dir, the files it writes, its metrics.

pub mod data;
pub mod events;
pub mod io;
pub mod metrics;
pub mod references;
pub mod run_dir;
pub mod schedule;
pub mod search_record;
pub mod settings;
pub mod signals;
