//! `ptv2 commands`: every command with its arguments, as markdown, made from the command line's
//! own definition (docs/commands.md holds it, and a test keeps it current).

use anyhow::Result;

/// `cli` is the whole command line (`Cli::command()`, passed in so that this file stays below it).
pub fn run(cli: &clap::Command) -> Result<()> {
    print!("{}", commands_markdown(cli));
    Ok(())
}

/// A table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// One argument's row: how it is written, its default (or its values), what it is.
fn argument_row(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.to_string());
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    let written = match arg.get_long() {
        Some(long) if takes_value => format!("`--{long} <{value}>`"),
        Some(long) => format!("`--{long}`"),
        None => format!("`<{value}>`"),
    };
    // A hidden default stands for "not given" (`--lr`'s NaN), not a value.
    let shown = if arg.is_hide_default_value_set() {
        &[][..]
    } else {
        arg.get_default_values()
    };
    let defaults: Vec<String> = shown
        .iter()
        .map(|v| v.to_string_lossy().to_string())
        .collect();
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    let mut default = defaults.join(",");
    if let Some(env) = arg.get_env() {
        default = format!("{default} (env {})", env.to_string_lossy());
    }
    let mut help = cell(&arg.get_help().map(|h| h.to_string()).unwrap_or_default());
    if !choices.is_empty() && takes_value {
        help = format!("{help} (one of: {})", choices.join(", "));
    }
    format!("| {written} | {} | {help} |\n", cell(default.trim()))
}

/// Every subcommand: its one line, its usage, a table of its arguments.
pub fn commands_markdown(cli: &clap::Command) -> String {
    let mut cli = cli.clone();
    cli.build(); // fills in what clap derives (how many values each argument takes)
    let mut out = String::new();
    for sub in cli.get_subcommands() {
        let name = sub.get_name();
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        let usage = sub
            .clone()
            .bin_name(format!("ptv2 {name}"))
            .render_usage()
            .to_string();
        let usage = usage.trim_start_matches("Usage: ");
        out.push_str(&format!(
            "### `ptv2 {name}`\n\n{about}\n\n```\n{usage}\n```\n\n"
        ));
        let args: Vec<&clap::Arg> = sub
            .get_arguments()
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version") && !a.is_hide_set())
            .collect();
        if args.is_empty() {
            continue;
        }
        out.push_str("| argument | default | what it is |\n|---|---|---|\n");
        for arg in args {
            out.push_str(&argument_row(arg));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    fn reference() -> String {
        super::commands_markdown(&crate::cli::Cli::command())
    }

    #[test]
    fn docs_commands_holds_the_generated_reference() {
        crate::cli::assert_doc_holds("docs/commands.md", &reference(), "commands");
    }

    #[test]
    fn every_command_and_method_is_in_the_reference() {
        let reference = reference();
        for command in ["train", "export-peft", "bench", "tasks", "methods"] {
            assert!(
                reference.contains(&format!("### `ptv2 {command}`")),
                "{command}"
            );
        }
        // The method flag lists every registered method (it once drifted from the registry).
        for kind in ptv2_models::MethodKind::ALL {
            assert!(reference.contains(kind.facts().name), "{kind}");
        }
    }
}
