//! The instruments that measure the schedulers (feature `testkit`, which the
//! tests and xdpgen enable): [`metrics`], an exact event-driven fluid GPS
//! server, lag tracking, Jain's index and share error; [`sim`], a
//! deterministic link simulator that feeds a scheduler and the GPS reference
//! the same arrivals in simulated time; [`mod@reference`], the frozen previous
//! frame parser, the oracle the parser is diffed against.

pub mod metrics;
pub mod reference;
pub mod sim;
