//! `weir groups list | describe`.

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use weir::log::{Error as LogError, GroupErrorKind};

use super::DataDir;
use super::stdout::Stdout;

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List consumer groups, one per line
    List,
    /// Show a group's members, and per partition its committed offset, high watermark and lag
    Describe {
        /// Group name
        group: String,
    },
}

pub fn run(dir: &DataDir, cmd: GroupsCommand) -> Result<()> {
    let mut out = Stdout::lock();
    let log = dir.open_read_only(None)?;
    match cmd {
        GroupsCommand::List => {
            for g in log.list_groups()? {
                writeln!(out, "{g}")?;
            }
        }
        GroupsCommand::Describe { group } => {
            let info = match log.describe_group(&group) {
                Ok(info) => info,
                Err(LogError::Group {
                    reason: GroupErrorKind::UnknownGroup,
                    ..
                }) => anyhow::bail!("unknown group '{group}'"),
                Err(e) => return Err(e.into()),
            };
            writeln!(out, "group: {}", info.name)?;
            if let Some((pid, ms)) = info.membership_published {
                // Membership lives in the writer process; this is what it last published.
                writeln!(
                    out,
                    "members as published by pid {pid} at {ms} ms since the epoch:"
                )?;
            }
            match &info.membership {
                None => writeln!(out, "members: (none published)")?,
                Some(m) => {
                    writeln!(out, "state: {}", m.state)?;
                    writeln!(out, "generation: {}", m.generation)?;
                    writeln!(out, "members: {}", m.members.len())?;
                    for member in &m.members {
                        let parts: Vec<String> = member
                            .assignment
                            .iter()
                            .map(|(t, p)| format!("{t}-{p}"))
                            .collect();
                        writeln!(
                            out,
                            "  {} (client {}): {}",
                            member.member_id,
                            member.client_id,
                            if parts.is_empty() {
                                "(no partitions)".to_string()
                            } else {
                                parts.join(", ")
                            }
                        )?;
                    }
                }
            }
            writeln!(out)?;
            let width = info
                .offsets
                .iter()
                .map(|o| o.topic.len())
                .max()
                .unwrap_or(0)
                .max(5);
            writeln!(
                out,
                "{:<width$}  {:>9}  {:>12}  {:>14}  {:>10}",
                "topic", "partition", "committed", "high_watermark", "lag"
            )?;
            for o in &info.offsets {
                writeln!(
                    out,
                    "{:<width$}  {:>9}  {:>12}  {:>14}  {:>10}",
                    o.topic, o.partition, o.committed, o.high_watermark, o.lag
                )?;
            }
        }
    }
    Ok(())
}
