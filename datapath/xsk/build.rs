//! Compiles the XDP program (bpf/xdpsched.bpf.c) with clang for the BPF
//! target; the object is embedded in the binary.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let src = "bpf/xdpsched.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    // libbpf-sys (links = "bpf") exports its headers' location.
    let libbpf_inc = std::env::var("DEP_BPF_INCLUDE").unwrap_or_default();
    let arch_inc = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let status = Command::new("clang")
        .args([
            "-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c", src, "-o",
        ])
        .arg(out.join("xdpsched.bpf.o"))
        .arg(format!("-I{libbpf_inc}"))
        .arg(format!("-I{arch_inc}"))
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "clang failed to compile {src} ({s}); scripts/test.sh installs clang and the headers"
        ),
        Err(e) => {
            panic!("clang is needed to compile {src}: {e} (apt install clang llvm libelf-dev)")
        }
    }
}
