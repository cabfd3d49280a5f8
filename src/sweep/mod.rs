//! Capacity sweeps: one engine run that steps a numeric knob through a range, lets each step
//! settle (left out of its statistics), measures it, and sums the steps up: where latency bends
//! (the knee) and, with a p99 target, the highest value that meets it beside the model's answer.
//!
//! A client of the engine like the headless runner: commands in (`Set`, `ResetStats`), the
//! latest snapshot out. The knobs it steps are the table's ramping ones (`workers`, `queue`,
//! `rate`, `clients`, `think`, `service`, …), through the same parser as flags and profiles.
//!
//! **The knee** (one rule, stated in the output): scanning from the step with the lowest p99
//! towards the other end, the first step whose p99 is more than [`KNEE_FACTOR`] times that
//! lowest p99. **The target**: a step passes when its p99 is within the target and it did not
//! saturate; the highest passing value is the passing step farthest from the lowest-load end,
//! and the first failing one the step after it.
//!
//! [`plan`] says what is stepped, [`stepper`] steps it on the engine, [`result`] sums it up.

pub mod plan;
pub mod result;
pub mod stepper;

pub use plan::{Plan, Scale, SweepError, sweepable};
pub use result::{KNEE_FACTOR, Knee, Slo, Step, StepModel, SweepReport};
pub use stepper::{Sweeper, run};
