//! `weir groups list | describe`.

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use weir::log::{Error as LogError, GroupErrorKind, PartitionLag};
use weir_client::{Admin, ClientConfig};

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

/// What `groups describe` prints, from the embedded log or from a cluster.
struct Description {
    name: String,
    /// Membership lives in the writer process: (its pid, ms since the epoch) of what it last
    /// published, when that is what is shown.
    published: Option<(u32, i64)>,
    /// `None`: no membership known (none published).
    membership: Option<Membership>,
    offsets: Vec<PartitionLag>,
}

struct Membership {
    state: String,
    /// A cluster's DescribeGroups does not report it.
    generation: Option<i32>,
    members: Vec<Member>,
}

struct Member {
    member_id: String,
    client_id: String,
    /// (topic, partition).
    assignment: Vec<(String, i32)>,
}

pub fn run(dir: &DataDir, cmd: GroupsCommand) -> Result<()> {
    let mut out = Stdout::lock();
    let log = dir.open_read_only(None)?;
    match cmd {
        GroupsCommand::List => print_list(&mut out, log.list_groups()?)?,
        GroupsCommand::Describe { group } => {
            let info = match log.describe_group(&group) {
                Ok(info) => info,
                Err(LogError::Group {
                    reason: GroupErrorKind::UnknownGroup,
                    ..
                }) => anyhow::bail!("unknown group '{group}'"),
                Err(e) => return Err(e.into()),
            };
            let description = Description {
                name: info.name,
                published: info.membership_published,
                membership: info.membership.map(|m| Membership {
                    state: m.state.to_string(),
                    generation: Some(m.generation),
                    members: m
                        .members
                        .into_iter()
                        .map(|m| Member {
                            member_id: m.member_id,
                            client_id: m.client_id,
                            assignment: m.assignment,
                        })
                        .collect(),
                }),
                offsets: info.offsets,
            };
            print_description(&mut out, &description)?;
        }
    }
    Ok(())
}

/// `groups list | describe` as a client of `cluster`.
pub fn run_cluster(cluster: &ClientConfig, cmd: GroupsCommand) -> Result<()> {
    let mut out = Stdout::lock();
    let admin = Admin::connect(cluster)?;
    match cmd {
        GroupsCommand::List => print_list(&mut out, admin.list_groups()?)?,
        GroupsCommand::Describe { group } => {
            let d = admin.describe_group(&group)?;
            let description = Description {
                name: d.name,
                published: None,
                membership: Some(Membership {
                    state: d.state,
                    generation: None,
                    members: d
                        .members
                        .into_iter()
                        .map(|m| Member {
                            member_id: m.member_id,
                            client_id: m.client_id,
                            assignment: m.assignment,
                        })
                        .collect(),
                }),
                offsets: d
                    .offsets
                    .into_iter()
                    .map(|o| PartitionLag {
                        topic: o.topic,
                        partition: o.partition,
                        committed: o.committed,
                        high_watermark: o.high_watermark,
                        lag: o.lag,
                    })
                    .collect(),
            };
            print_description(&mut out, &description)?;
        }
    }
    Ok(())
}

fn print_list(out: &mut impl Write, groups: Vec<String>) -> Result<()> {
    for g in groups {
        writeln!(out, "{g}")?;
    }
    Ok(())
}

fn print_description(out: &mut impl Write, d: &Description) -> Result<()> {
    writeln!(out, "group: {}", d.name)?;
    if let Some((pid, ms)) = d.published {
        writeln!(
            out,
            "members as published by pid {pid} at {ms} ms since the epoch:"
        )?;
    }
    match &d.membership {
        None => writeln!(out, "members: (none published)")?,
        Some(m) => {
            writeln!(out, "state: {}", m.state)?;
            if let Some(generation) = m.generation {
                writeln!(out, "generation: {generation}")?;
            }
            writeln!(out, "members: {}", m.members.len())?;
            for Member {
                member_id,
                client_id,
                assignment,
            } in &m.members
            {
                let parts: Vec<String> =
                    assignment.iter().map(|(t, p)| format!("{t}-{p}")).collect();
                writeln!(
                    out,
                    "  {member_id} (client {client_id}): {}",
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
    let width = d
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
    for o in &d.offsets {
        writeln!(
            out,
            "{:<width$}  {:>9}  {:>12}  {:>14}  {:>10}",
            o.topic, o.partition, o.committed, o.high_watermark, o.lag
        )?;
    }
    Ok(())
}
