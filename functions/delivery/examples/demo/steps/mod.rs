//! The eight steps, one concept a file, in the order the story tells them.

mod first;
mod health;
mod held;
mod outage;
mod replay;
mod superseded;

pub(crate) use first::{GRACE, step_1, step_2, step_3};
pub(crate) use health::step_7;
pub(crate) use held::step_8;
pub(crate) use outage::step_4;
pub(crate) use replay::step_6;
pub(crate) use superseded::step_5;
