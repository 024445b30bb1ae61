//! `ptv2 settings`: the run settings as a markdown table (experiments/README.md holds it).

use anyhow::Result;

pub fn run() -> Result<()> {
    print!("{}", crate::records::settings::schema_markdown());
    Ok(())
}
