//! A topic's settings while the log runs: one [`LiveTopicConfig`] per topic, shared by the topic
//! and its partitions, replaced whole when the topic's config is altered
//! ([`crate::Log::alter_topic_config`]), so that every partition sees the change at once.
//!
//! Beside the settings it keeps a [`ConfigHistory`]: what earlier settings left in the files,
//! which later settings must not make the log forget (a topic compacted once may hold offset
//! gaps for good; a batch once allowed stays readable after the limit shrinks).

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::TopicConfig;

/// What a topic's earlier settings left in its segments, kept in its metadata. It only grows:
/// a setting altered back does not undo what was written under it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ConfigHistory {
    /// The topic was compacted at some time: its segments may have gaps between offsets, so
    /// recovery must not require them dense, even under `cleanup.policy=delete` now.
    pub(crate) compacted_once: bool,
    /// The largest `batch_bytes_max` the topic ever had: recovery accepts batches up to it,
    /// or shrinking the limit would make a crash cut off batches appended under the old one.
    pub(crate) batch_bytes_max_ever: usize,
}

impl ConfigHistory {
    /// This history once `config` has applied.
    pub(crate) fn with(self, config: &TopicConfig) -> ConfigHistory {
        ConfigHistory {
            compacted_once: self.compacted_once || config.compacted,
            batch_bytes_max_ever: self.batch_bytes_max_ever.max(config.batch_bytes_max),
        }
    }
}

struct State {
    config: Arc<TopicConfig>,
    history: ConfigHistory,
}

/// A topic's current settings and their history; see the module docs.
pub(crate) struct LiveTopicConfig {
    state: RwLock<State>,
}

impl std::fmt::Debug for LiveTopicConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTopicConfig")
            .field("config", &self.get())
            .field("history", &self.history())
            .finish()
    }
}

impl LiveTopicConfig {
    /// Settings `config` over `history` (what was read from the topic's metadata, or the
    /// default for a new topic).
    pub(crate) fn new(config: TopicConfig, history: ConfigHistory) -> LiveTopicConfig {
        LiveTopicConfig {
            state: RwLock::new(State {
                history: history.with(&config),
                config: Arc::new(config),
            }),
        }
    }

    /// The settings now.
    pub(crate) fn get(&self) -> Arc<TopicConfig> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    /// The history, the current settings included.
    pub(crate) fn history(&self) -> ConfigHistory {
        self.state.read().unwrap_or_else(|e| e.into_inner()).history
    }

    /// Puts `config` in place (once it is durable in the topic's metadata, with
    /// [`Self::history`]`.with(&config)`).
    pub(crate) fn replace(&self, config: TopicConfig) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.history = state.history.with(&config);
        state.config = Arc::new(config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_only_grows() {
        let compacted = TopicConfig {
            compacted: true,
            batch_bytes_max: 1 << 20,
            ..TopicConfig::default()
        };
        let live = LiveTopicConfig::new(compacted.clone(), ConfigHistory::default());
        assert_eq!(
            live.history(),
            ConfigHistory {
                compacted_once: true,
                batch_bytes_max_ever: 1 << 20
            }
        );
        live.replace(TopicConfig {
            compacted: false,
            batch_bytes_max: 4096,
            ..compacted
        });
        assert!(!live.get().compacted);
        assert_eq!(live.get().batch_bytes_max, 4096);
        assert_eq!(
            live.history(),
            ConfigHistory {
                compacted_once: true,
                batch_bytes_max_ever: 1 << 20
            }
        );
    }
}
