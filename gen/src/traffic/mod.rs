//! What to send and when: the flows ([`spec`]: the `--flow` syntax and
//! scenario files) and their departure times ([`pace`]). Pure and
//! clock-free.

pub mod pace;
pub mod spec;
