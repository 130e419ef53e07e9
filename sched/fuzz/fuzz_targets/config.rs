//! Fuzz target: the TOML configuration. Any text must give a configuration
//! or an error, never a panic; a valid configuration must build an emulator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sched::config::QueueSpec;
use sched::emu::Emulator;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = sched::config::from_toml(text) {
        // Building allocates every queue up front: skip the (valid) configurations
        // whose pools would exceed the fuzzer's memory limit.
        let big_pipe = cfg.pipes.iter().any(|p| match p.queue {
            QueueSpec::Packets(n) => n > 100_000,
            QueueSpec::Bytes(b) => b > 64 << 20,
        });
        let big_flowset = cfg.flowsets.iter().any(|f| f.max_flows > 100_000);
        if !big_pipe && !big_flowset {
            // Building may refuse (e.g. pipe masks), but must not panic.
            let _ = Emulator::<u32>::from_config(&cfg, 1);
        }
    }
});
