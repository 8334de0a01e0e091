//! The watermark valve: one task's watermark from those of its inputs (the partitions of a source
//! task, or the upstream tasks of an exchange).
//!
//! The task's watermark is the minimum over its live inputs. An idle input (no data for a while)
//! does not hold it back; when every input is idle the highest of their watermarks stands for the
//! task (as Flink's valve does), so the last input to go quiet does not decide alone, and the task
//! itself goes idle. An ended input counts for nothing. The watermark never goes back.

use crate::event::WATERMARK_MIN;

#[derive(Debug, Clone, Copy)]
struct Input {
    watermark: i64,
    idle: bool,
    ended: bool,
}

/// What the owner of a valve passes downstream after [`WatermarkValve::update`]: first the new
/// watermark, if it rose, then idleness, if the task just went idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ValveChange {
    pub(crate) watermark: Option<i64>,
    pub(crate) went_idle: bool,
}

/// The watermark of a task with `inputs` inputs. Inputs are told apart by index.
#[derive(Debug, Clone)]
pub(crate) struct WatermarkValve {
    inputs: Vec<Input>,
    watermark: i64,
    idle: bool,
}

impl WatermarkValve {
    /// A valve whose inputs are all live, with no watermark yet.
    pub(crate) fn new(inputs: usize) -> WatermarkValve {
        WatermarkValve {
            inputs: vec![
                Input {
                    watermark: WATERMARK_MIN,
                    idle: false,
                    ended: false,
                };
                inputs
            ],
            watermark: WATERMARK_MIN,
            idle: false,
        }
    }

    /// Whether every input that has not ended is idle (and downstream was told so).
    pub(crate) fn is_idle(&self) -> bool {
        self.idle
    }

    /// Whether input `input` has ended.
    pub(crate) fn is_ended(&self, input: usize) -> bool {
        self.inputs[input].ended
    }

    /// Input `input` reached watermark `wm` (a lower value than it had is ignored).
    pub(crate) fn raise(&mut self, input: usize, wm: i64) {
        let s = &mut self.inputs[input];
        s.watermark = s.watermark.max(wm);
    }

    /// Input `input` went idle, or came back. Takes effect at the next [`WatermarkValve::update`].
    pub(crate) fn set_idle(&mut self, input: usize, idle: bool) {
        self.inputs[input].idle = idle;
    }

    /// Input `input` will send nothing more.
    pub(crate) fn end(&mut self, input: usize) {
        self.inputs[input].ended = true;
    }

    /// Recomputes the task's watermark from its inputs; says what to pass downstream.
    pub(crate) fn update(&mut self) -> ValveChange {
        let mut change = ValveChange::default();
        let live_min = self
            .inputs
            .iter()
            .filter(|s| !s.ended && !s.idle)
            .map(|s| s.watermark)
            .min();
        match live_min {
            Some(wm) => {
                self.idle = false;
                change.watermark = self.rise_to(wm);
            }
            None if !self.idle => {
                let idle_max = self
                    .inputs
                    .iter()
                    .filter(|s| !s.ended)
                    .map(|s| s.watermark)
                    .max();
                // Every input ended (or there are none): nothing to stand for, nothing to say.
                if let Some(wm) = idle_max {
                    change.watermark = self.rise_to(wm);
                    self.idle = true;
                    change.went_idle = true;
                }
            }
            None => {}
        }
        change
    }

    fn rise_to(&mut self, wm: i64) -> Option<i64> {
        (wm > self.watermark).then(|| {
            self.watermark = wm;
            wm
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rose(wm: i64) -> ValveChange {
        ValveChange {
            watermark: Some(wm),
            went_idle: false,
        }
    }

    #[test]
    fn the_watermark_is_the_minimum_over_live_inputs() {
        let mut v = WatermarkValve::new(3);
        v.raise(0, 10);
        v.raise(1, 20);
        assert_eq!(
            v.update(),
            ValveChange::default(),
            "input 2 has no watermark yet"
        );
        v.raise(2, 5);
        assert_eq!(v.update(), rose(5));
        v.raise(2, 30);
        assert_eq!(v.update(), rose(10));
        assert_eq!(
            v.update(),
            ValveChange::default(),
            "no rise, nothing to say"
        );
    }

    #[test]
    fn an_idle_input_does_not_hold_the_watermark_back() {
        let mut v = WatermarkValve::new(2);
        v.raise(0, 100);
        v.raise(1, 3);
        assert_eq!(v.update(), rose(3));
        v.set_idle(1, true);
        assert_eq!(v.update(), rose(100));
        assert!(!v.is_idle());
        // Back from idleness with an old watermark: held, never lowered.
        v.set_idle(1, false);
        assert_eq!(v.update(), ValveChange::default(), "held at 100");
        v.raise(1, 99);
        assert_eq!(v.update(), ValveChange::default(), "held at 100");
        v.raise(1, 150);
        v.raise(0, 200);
        assert_eq!(v.update(), rose(150));
    }

    #[test]
    fn all_idle_advances_to_the_highest_and_says_idle_once() {
        let mut v = WatermarkValve::new(2);
        v.raise(0, 7);
        v.raise(1, 9);
        assert_eq!(v.update(), rose(7));
        v.set_idle(0, true);
        v.set_idle(1, true);
        assert_eq!(
            v.update(),
            ValveChange {
                watermark: Some(9),
                went_idle: true
            }
        );
        assert!(v.is_idle());
        assert_eq!(v.update(), ValveChange::default(), "idleness is said once");
        v.set_idle(0, false);
        v.raise(0, 12);
        assert_eq!(v.update(), rose(12));
        assert!(!v.is_idle());
    }

    #[test]
    fn ended_inputs_count_for_nothing() {
        let mut v = WatermarkValve::new(2);
        v.raise(0, 4);
        v.raise(1, 50);
        assert_eq!(v.update(), rose(4));
        v.end(0);
        assert!(v.is_ended(0));
        assert_eq!(v.update(), rose(50));
        // Idle among ended inputs: the max over the ones not ended.
        v.set_idle(1, true);
        assert_eq!(
            v.update(),
            ValveChange {
                watermark: None,
                went_idle: true
            }
        );
        let mut all_ended = WatermarkValve::new(1);
        all_ended.end(0);
        assert_eq!(all_ended.update(), ValveChange::default());
        assert!(!all_ended.is_idle());
    }

    #[test]
    fn the_watermark_never_goes_back() {
        // Random steps: every rise is above the one before, and equals the minimum over live
        // inputs (or, all idle, their maximum), computed naively.
        let mut v = WatermarkValve::new(3);
        let mut wms = [WATERMARK_MIN; 3];
        let mut idle = [false; 3];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut last = WATERMARK_MIN;
        for _ in 0..2_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let input = (seed % 3) as usize;
            match (seed >> 8) % 4 {
                0 | 1 => {
                    let wm = ((seed >> 16) % 1_000) as i64;
                    v.raise(input, wm);
                    wms[input] = wms[input].max(wm);
                }
                k => {
                    v.set_idle(input, k == 2);
                    idle[input] = k == 2;
                }
            }
            let live_min = (0..3).filter(|i| !idle[*i]).map(|i| wms[i]).min();
            let expected = live_min.unwrap_or_else(|| *wms.iter().max().expect("3 inputs"));
            let change = v.update();
            if let Some(wm) = change.watermark {
                assert!(wm > last, "{wm} after {last}");
                assert_eq!(wm, expected);
                last = wm;
            }
            if live_min.is_some() {
                assert!(last >= expected, "held back at {last} below {expected}");
                assert!(!v.is_idle());
            }
        }
    }
}
