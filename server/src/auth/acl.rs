//! Per-principal ACLs for topics, groups and transactional ids, from a file the operator keeps
//! (`weir serve --acls FILE`), with Kafka's rules: a matching `deny` wins over any `allow`;
//! `read`, `write`, `delete` and `alter` on a resource imply `describe` of it; a request that no
//! rule matches gets the default decision (`--acl-default`, deny unless said otherwise).
//!
//! One rule per line; `#` starts a comment:
//! ```text
//! # allow|deny  PRINCIPAL  OPERATIONS              RESOURCE
//! allow         alice      read,describe           topic:clicks
//! allow         alice      read                    group:ad-*
//! allow         bob        write,create            topic:*
//! allow         bob        write                   transactional-id:copier-*
//! deny          *          write                   topic:audit
//! allow         admin      all                     *
//! ```
//! PRINCIPAL is a user name (`User:alice` as Kafka writes it is accepted too), `*` for anyone,
//! or `ANONYMOUS` for connections without SASL. RESOURCE is `topic:`, `group:` or
//! `transactional-id:` and a name, a prefix ending in `*`, or `*`; a bare `*` is every resource.

use std::path::Path;

use super::{FileError, read_file};

/// What a request does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Fetch from a topic; join, commit to or read a group's offsets.
    Read,
    /// Produce to a topic; use a transactional id.
    Write,
    /// Create a topic (CreateTopics, auto-creation).
    Create,
    /// See a topic's metadata, offsets and configs; see a group or a transactional id.
    Describe,
    /// Delete a topic, its records, or a group.
    Delete,
    /// Change a topic's configs or partition count.
    Alter,
}

impl Operation {
    fn parse(word: &str) -> Option<Vec<Operation>> {
        use Operation::*;
        Some(match word {
            "read" => vec![Read],
            "write" => vec![Write],
            "create" => vec![Create],
            "describe" => vec![Describe],
            "delete" => vec![Delete],
            "alter" => vec![Alter],
            "all" => vec![Read, Write, Create, Describe, Delete, Alter],
            _ => return None,
        })
    }

    /// The operation's name in rules and errors.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Create => "create",
            Operation::Describe => "describe",
            Operation::Delete => "delete",
            Operation::Alter => "alter",
        }
    }
}

/// The kinds of resource a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// A producer's transactional id.
    TransactionalId,
}

impl ResourceType {
    /// The prefix of the type in rules.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "topic",
            ResourceType::Group => "group",
            ResourceType::TransactionalId => "transactional-id",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Prefix(String),
    Literal(String),
}

impl Pattern {
    fn parse(s: &str) -> Pattern {
        if s == "*" {
            Pattern::Any
        } else if let Some(prefix) = s.strip_suffix('*') {
            Pattern::Prefix(prefix.to_string())
        } else {
            Pattern::Literal(s.to_string())
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Prefix(p) => s.starts_with(p.as_str()),
            Pattern::Literal(l) => l == s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    principal: Pattern,
    operations: Vec<Operation>,
    /// None: every type.
    resource_type: Option<ResourceType>,
    name: Pattern,
}

/// The largest ACL file read, in bytes.
pub const ACL_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// The rules, and what applies where none matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acls {
    rules: Vec<Rule>,
    /// Whether a request no rule matches is allowed (false: deny by default).
    pub allow_if_no_rule: bool,
}

impl Acls {
    /// Reads an ACL file.
    pub fn load(path: &Path, allow_if_no_rule: bool) -> Result<Acls, FileError> {
        let text = read_file(path, ACL_FILE_BYTES_MAX)?;
        Acls::parse(path, &text, allow_if_no_rule)
    }

    /// Parses rules from text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str, allow_if_no_rule: bool) -> Result<Acls, FileError> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let err = |reason: String| FileError::parse(path, i + 1, reason);
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let [decision, principal, operations, resource] = words[..] else {
                return Err(err(
                    "expected: allow|deny PRINCIPAL OPERATIONS RESOURCE".into()
                ));
            };
            let allow = match decision {
                "allow" => true,
                "deny" => false,
                other => return Err(err(format!("'{other}' is neither allow nor deny"))),
            };
            let principal = principal.strip_prefix("User:").unwrap_or(principal);
            let mut ops = Vec::new();
            for word in operations.split(',') {
                ops.extend(Operation::parse(word).ok_or_else(|| {
                    err(format!(
                        "unknown operation '{word}' \
                         (read, write, create, describe, delete, alter or all)"
                    ))
                })?);
            }
            let (resource_type, name) = if resource == "*" {
                (None, Pattern::Any)
            } else {
                let (kind, name) = resource.split_once(':').ok_or_else(|| {
                    err(format!(
                        "resource '{resource}' is not TYPE:NAME (topic:, group:, transactional-id:) or *"
                    ))
                })?;
                let kind = match kind {
                    "topic" => ResourceType::Topic,
                    "group" => ResourceType::Group,
                    "transactional-id" => ResourceType::TransactionalId,
                    other => {
                        return Err(err(format!(
                            "unknown resource type '{other}' (topic, group or transactional-id)"
                        )));
                    }
                };
                if name.is_empty() {
                    return Err(err(format!("resource '{resource}' has no name")));
                }
                (Some(kind), Pattern::parse(name))
            };
            rules.push(Rule {
                allow,
                principal: Pattern::parse(principal),
                operations: ops,
                resource_type,
                name,
            });
        }
        Ok(Acls {
            rules,
            allow_if_no_rule,
        })
    }

    /// Whether `principal` may do `operation` on the resource `kind`:`name`.
    pub fn allows(
        &self,
        principal: &str,
        operation: Operation,
        kind: ResourceType,
        name: &str,
    ) -> bool {
        let mut matched = false;
        let mut allowed = false;
        for rule in &self.rules {
            if !rule.principal.matches(principal)
                || rule.resource_type.is_some_and(|t| t != kind)
                || !rule.name.matches(name)
            {
                continue;
            }
            let covers = rule.operations.contains(&operation)
                || (operation == Operation::Describe
                    && rule.allow
                    && rule.operations.iter().any(|o| {
                        matches!(
                            o,
                            Operation::Read
                                | Operation::Write
                                | Operation::Delete
                                | Operation::Alter
                        )
                    }));
            if !covers {
                continue;
            }
            if !rule.allow {
                return false;
            }
            matched = true;
            allowed = true;
        }
        if matched {
            allowed
        } else {
            self.allow_if_no_rule
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Operation::*;
    use super::ResourceType::*;
    use super::*;

    fn acls(text: &str, allow_if_no_rule: bool) -> Acls {
        Acls::parse(Path::new("acls"), text, allow_if_no_rule).unwrap()
    }

    #[test]
    fn deny_wins_prefixes_match_and_unmatched_requests_get_the_default() {
        let a = acls(
            "allow alice read,describe topic:clicks   # the input\n\
             allow User:alice read group:ad-*\n\
             allow bob write,create topic:*\n\
             deny * write topic:audit\n\
             allow admin all *\n",
            false,
        );
        assert!(a.allows("alice", Read, Topic, "clicks"));
        assert!(!a.allows("alice", Write, Topic, "clicks"));
        assert!(!a.allows("alice", Read, Topic, "clicks2"));
        assert!(a.allows("alice", Read, Group, "ad-1"));
        assert!(!a.allows("alice", Read, Group, "other"));
        assert!(!a.allows("alice", Read, TransactionalId, "ad-1"));
        assert!(a.allows("bob", Write, Topic, "anything"));
        assert!(
            a.allows("bob", Describe, Topic, "anything"),
            "write implies describe"
        );
        assert!(!a.allows("bob", Create, Group, "g"));
        assert!(!a.allows("bob", Write, Topic, "audit"), "deny wins");
        assert!(
            !a.allows("admin", Write, Topic, "audit"),
            "deny wins over all"
        );
        assert!(a.allows("admin", Delete, Group, "g"));
        assert!(!a.allows("ANONYMOUS", Describe, Topic, "clicks"));
        let open = acls("deny * write topic:audit\n", true);
        assert!(open.allows("ANONYMOUS", Write, Topic, "clicks"));
        assert!(!open.allows("ANONYMOUS", Write, Topic, "audit"));
    }

    #[test]
    fn a_bad_rule_is_an_error_naming_its_line() {
        for (text, needle) in [
            ("allow alice read\n", "expected"),
            ("permit alice read topic:x\n", "neither allow nor deny"),
            ("allow alice fly topic:x\n", "unknown operation 'fly'"),
            (
                "\nallow alice read table:x\n",
                "acls:2: unknown resource type 'table'",
            ),
            ("allow alice read topic:\n", "no name"),
            ("allow alice read clicks\n", "not TYPE:NAME"),
        ] {
            let e = Acls::parse(Path::new("acls"), text, false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
