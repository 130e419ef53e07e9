//! The command line as users meet it outside a run: shell completions and
//! man pages generated from the clap definitions (no root needed).

use std::process::Command;

const XDPSCHED: &str = env!("CARGO_BIN_EXE_xdpsched");

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(XDPSCHED)
        .args(args)
        .output()
        .expect("run xdpsched");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completions_cover_every_subcommand_and_flag_in_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, out, err) = run(&["completions", shell]);
        assert!(ok, "{shell}: {err}");
        for word in [
            "show",
            "reload",
            "cleanup",
            "--iface",
            "--out",
            "--config",
            "--metrics",
        ] {
            // fish names long flags as `-l iface`.
            let word = match (shell, word.strip_prefix("--")) {
                ("fish", Some(w)) => format!("-l {w}"),
                _ => word.to_owned(),
            };
            assert!(out.contains(&word), "{shell}: no {word:?} in the script");
        }
    }
    // The bash script is valid bash and defines its completion function.
    let (_, script, _) = run(&["completions", "bash"]);
    let path = std::env::temp_dir().join("xdpsched-completion.bash");
    std::fs::write(&path, &script).expect("write");
    let check = Command::new("bash")
        .args([
            "-c",
            &format!("source {} && complete -p xdpsched", path.display()),
        ])
        .output()
        .expect("bash");
    assert!(
        check.status.success() && String::from_utf8_lossy(&check.stdout).contains("_xdpsched"),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let (ok, _, err) = run(&["completions", "tcsh"]);
    assert!(!ok && err.contains("tcsh"), "{err}");
}

#[test]
fn man_pages_are_written_for_every_subcommand_and_render() {
    let dir = std::env::temp_dir().join(format!("xdpsched-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (ok, out, err) = run(&["man", dir.to_str().expect("path")]);
    assert!(ok, "{err}");
    for page in [
        "xdpsched.1",
        "xdpsched-show.1",
        "xdpsched-reload.1",
        "xdpsched-cleanup.1",
    ] {
        let p = dir.join(page);
        assert!(out.contains(page), "{out}");
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
    }
    // Rendered by man(1) where it is installed: the options are there.
    if let Ok(m) = Command::new("man")
        .args(["-l", dir.join("xdpsched.1").to_str().expect("path")])
        .env("MANWIDTH", "100")
        .output()
    {
        let page = String::from_utf8_lossy(&m.stdout);
        assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
        assert!(
            page.contains("--pacing-tolerance") && page.contains("SUBCOMMANDS"),
            "{page}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
