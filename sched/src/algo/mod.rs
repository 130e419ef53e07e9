//! The algorithms, one file each. Each implements [`crate::Algorithm`] and is
//! used through [`crate::Engine`] (see the type aliases in the crate root).

pub mod drr;
pub mod fifo;
pub mod prio;
pub mod qfq;
pub mod vtheap;
pub mod wf2q;
