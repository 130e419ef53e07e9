//! xdpgen's command line outside a run: completions and man pages from the
//! clap definitions (no root needed).

use std::process::Command;

const XDPGEN: &str = env!("CARGO_BIN_EXE_xdpgen");

#[test]
fn completions_and_man_pages_come_from_the_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(XDPGEN)
            .args(["completions", shell])
            .output()
            .expect("xdpgen");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}");
        for word in ["capacity", "flow", "duration", "plot"] {
            assert!(text.contains(word), "{shell}: no {word:?}");
        }
    }
    let dir = std::env::temp_dir().join(format!("xdpgen-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = Command::new(XDPGEN)
        .args(["man", dir.to_str().expect("path")])
        .output()
        .expect("xdpgen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in ["xdpgen.1", "xdpgen-capacity.1"] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
