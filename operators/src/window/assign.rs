//! Windows and window assignment: which windows an event time belongs to.
//!
//! Pure functions over values. Time is `i64` milliseconds since the Unix epoch; windows are
//! half-open `[start, end)` and aligned to the epoch with Euclidean division, so negative
//! timestamps fall into the same grid as positive ones.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::WindowError;

/// The most windows one record may belong to (sliding windows assign `ceil(size / slide)`); a spec
/// that needs more is a configuration error, because every record would cost that many updates.
pub const WINDOWS_PER_RECORD_MAX: i64 = 1024;

/// A half-open interval of event time, `[start, end)`, in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// The first millisecond inside the window.
    pub start: i64,
    /// The first millisecond after the window.
    pub end: i64,
}

impl Window {
    /// The window `[start, end)`.
    pub fn new(start: i64, end: i64) -> Self {
        debug_assert!(start < end, "empty window [{start}, {end})");
        Window { start, end }
    }

    /// The last millisecond inside the window (`end - 1`): once the watermark reaches it, the
    /// window is complete.
    pub fn max_timestamp(&self) -> i64 {
        self.end - 1
    }

    /// Whether `ts` lies in `[start, end)`.
    pub fn contains(&self, ts: i64) -> bool {
        self.start <= ts && ts < self.end
    }

    /// Whether two windows overlap or touch (`[0, 10)` and `[10, 20)` do), the rule by which
    /// session windows merge (as Flink's `TimeWindow.intersects`).
    pub fn intersects(&self, other: &Window) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// The smallest window covering both.
    pub fn cover(&self, other: &Window) -> Window {
        Window {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// How event time is cut into windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowSpec {
    /// Fixed, non-overlapping windows `[k * size, (k + 1) * size)`.
    Tumbling {
        /// Window length, > 0.
        size_ms: i64,
    },
    /// Fixed windows `[k * slide, k * slide + size)`, overlapping when `slide < size` (a record
    /// then belongs to about `size / slide` of them) and leaving gaps when `slide > size`.
    Sliding {
        /// Window length, > 0.
        size_ms: i64,
        /// Distance between window starts, > 0.
        slide_ms: i64,
    },
    /// Per-key windows of activity: each record opens `[ts, ts + gap)`, and windows of one key
    /// that overlap or touch merge into their cover.
    Session {
        /// Inactivity gap, > 0.
        gap_ms: i64,
    },
}

/// Whole milliseconds in `d`, saturating at `i64::MAX`.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Saturates an `i128` into the `i64` range.
fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl WindowSpec {
    /// Tumbling windows of `size` (whole milliseconds).
    pub fn tumbling(size: Duration) -> Self {
        WindowSpec::Tumbling {
            size_ms: millis(size),
        }
    }

    /// Sliding windows of `size`, starting every `slide` (whole milliseconds).
    pub fn sliding(size: Duration, slide: Duration) -> Self {
        WindowSpec::Sliding {
            size_ms: millis(size),
            slide_ms: millis(slide),
        }
    }

    /// Session windows closing after `gap` (whole milliseconds) without records.
    pub fn session(gap: Duration) -> Self {
        WindowSpec::Session {
            gap_ms: millis(gap),
        }
    }

    /// Checks the lengths are positive and a record belongs to at most
    /// [`WINDOWS_PER_RECORD_MAX`] windows; the error names the bad field.
    pub fn validate(&self) -> Result<(), WindowError> {
        let positive = |field: &'static str, v: i64| {
            if v > 0 {
                Ok(())
            } else {
                Err(WindowError::Config {
                    field,
                    reason: format!("must be > 0, is {v}"),
                })
            }
        };
        match *self {
            WindowSpec::Tumbling { size_ms } => positive("spec.size_ms", size_ms),
            WindowSpec::Session { gap_ms } => positive("spec.gap_ms", gap_ms),
            WindowSpec::Sliding { size_ms, slide_ms } => {
                positive("spec.size_ms", size_ms)?;
                positive("spec.slide_ms", slide_ms)?;
                let per_record = (size_ms - 1) / slide_ms + 1; // ceil; both are > 0
                if per_record > WINDOWS_PER_RECORD_MAX {
                    return Err(WindowError::Config {
                        field: "spec.slide_ms",
                        reason: format!(
                            "size_ms {size_ms} / slide_ms {slide_ms} puts each record in up to \
                             {per_record} windows; windows_per_record_max is \
                             {WINDOWS_PER_RECORD_MAX}"
                        ),
                    });
                }
                Ok(())
            }
        }
    }

    /// Replaces `out`'s contents with the windows that contain `ts`, in increasing start (and
    /// end) order: one for tumbling, zero or more for sliding, and `[ts, ts + gap)` for session
    /// windows (before any merging). The spec must be valid. Window bounds saturate at the ends
    /// of the `i64` range.
    pub fn assign(&self, ts: i64, out: &mut Vec<Window>) {
        out.clear();
        match *self {
            WindowSpec::Tumbling { size_ms } => out.push(tumbling_window(ts, size_ms)),
            WindowSpec::Session { gap_ms } => out.push(session_window(ts, gap_ms)),
            WindowSpec::Sliding { size_ms, slide_ms } => {
                debug_assert!(size_ms > 0 && slide_ms > 0, "invalid spec {self:?}");
                // Window k is [k * slide, k * slide + size); it holds ts iff
                // (ts - size) / slide < k <= ts / slide. i128 keeps the products exact.
                let (ts, size, slide) = (i128::from(ts), i128::from(size_ms), i128::from(slide_ms));
                let k_last = ts.div_euclid(slide);
                let k_first = (ts - size).div_euclid(slide) + 1;
                for k in k_first..=k_last {
                    let start = k * slide;
                    out.push(Window {
                        start: clamp(start),
                        end: clamp(start + size),
                    });
                }
            }
        }
    }
}

/// The tumbling window of `size_ms` holding `ts`.
#[inline]
pub(crate) fn tumbling_window(ts: i64, size_ms: i64) -> Window {
    debug_assert!(size_ms > 0);
    let start = ts.div_euclid(size_ms) * size_ms;
    Window {
        start,
        end: start.saturating_add(size_ms),
    }
}

/// The session window a record at `ts` opens.
#[inline]
pub(crate) fn session_window(ts: i64, gap_ms: i64) -> Window {
    debug_assert!(gap_ms > 0);
    Window {
        start: ts,
        end: ts.saturating_add(gap_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigned(spec: WindowSpec, ts: i64) -> Vec<(i64, i64)> {
        let mut out = vec![Window::new(0, 1)];
        spec.assign(ts, &mut out);
        out.iter().map(|w| (w.start, w.end)).collect()
    }

    #[test]
    fn tumbling_aligns_to_the_epoch_for_negative_times() {
        let spec = WindowSpec::tumbling(Duration::from_secs(60));
        assert_eq!(assigned(spec, 0), [(0, 60_000)]);
        assert_eq!(assigned(spec, 59_999), [(0, 60_000)]);
        assert_eq!(assigned(spec, -1), [(-60_000, 0)]);
        assert_eq!(assigned(spec, -60_000), [(-60_000, 0)]);
    }

    #[test]
    fn sliding_assigns_every_window_holding_the_time() {
        let spec = WindowSpec::Sliding {
            size_ms: 10,
            slide_ms: 4,
        };
        assert_eq!(assigned(spec, 9), [(0, 10), (4, 14), (8, 18)]);
        assert_eq!(assigned(spec, -1), [(-8, 2), (-4, 6)]);
        // A slide longer than the size leaves gaps.
        let gaps = WindowSpec::Sliding {
            size_ms: 3,
            slide_ms: 5,
        };
        assert_eq!(assigned(gaps, 2), [(0, 3)]);
        assert_eq!(assigned(gaps, 4), []);
    }

    #[test]
    fn session_opens_one_gap_long_window() {
        assert_eq!(assigned(WindowSpec::Session { gap_ms: 5 }, -3), [(-3, 2)]);
    }

    #[test]
    fn validate_names_the_bad_field() {
        let field = |spec: WindowSpec| match spec.validate() {
            Err(WindowError::Config { field, .. }) => field,
            other => panic!("{spec:?}: {other:?}"),
        };
        assert_eq!(field(WindowSpec::Tumbling { size_ms: 0 }), "spec.size_ms");
        assert_eq!(field(WindowSpec::Session { gap_ms: -1 }), "spec.gap_ms");
        assert_eq!(
            field(WindowSpec::Sliding {
                size_ms: 10,
                slide_ms: 0
            }),
            "spec.slide_ms"
        );
        assert_eq!(
            field(WindowSpec::Sliding {
                size_ms: 1025,
                slide_ms: 1
            }),
            "spec.slide_ms"
        );
        assert!(
            WindowSpec::Sliding {
                size_ms: 1024,
                slide_ms: 1
            }
            .validate()
            .is_ok()
        );
        assert!(
            WindowSpec::sliding(Duration::from_secs(7), Duration::from_secs(2))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn extreme_times_saturate_instead_of_overflowing() {
        let spec = WindowSpec::Sliding {
            size_ms: 10,
            slide_ms: 3,
        };
        let mut out = Vec::new();
        spec.assign(i64::MIN, &mut out);
        assert!(!out.is_empty());
        spec.assign(i64::MAX, &mut out);
        assert!(out.iter().all(|w| w.start <= w.end));
        assert_eq!(tumbling_window(i64::MAX, 10).end, i64::MAX);
    }
}
