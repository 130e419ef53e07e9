# Shared set-up for scripts: find or install what they need. Sourced, not run.
# Installs only from the Debian archive and crates.io.

apt_updated=0
apt_install() {
    # apt_install PKG... : install Debian packages that are missing.
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        return 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

as_root() {
    # as_root SCRIPT ARGS...: root runs on; anyone else re-runs SCRIPT under
    # sudo (keeping the knobs the scripts read), so the README's commands work
    # as written in a root shell without sudo (a fresh container has none) and
    # for a user with sudo. Call after cd-ing to the repository's root.
    [ "$(id -u)" = 0 ] && return 0
    if ! command -v sudo >/dev/null 2>&1; then
        echo "$1: needs root (network namespaces, XDP programs): run it as root" >&2
        exit 1
    fi
    local script=$1
    shift
    exec sudo env "PATH=$PATH" "CI=${CI:-}" "DEMO_FULL=${DEMO_FULL:-}" bash "$script" "$@"
}

ensure_rust() {
    # cargo, rustfmt and clippy: from rustup if present, else Debian's packages.
    [ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
    if ! command -v cargo >/dev/null 2>&1; then
        apt_install cargo rustc
    fi
    if ! cargo fmt --version >/dev/null 2>&1; then
        rustup component add rustfmt 2>/dev/null || apt_install rustfmt
    fi
    if ! cargo clippy --version >/dev/null 2>&1; then
        rustup component add clippy 2>/dev/null || apt_install rust-clippy
    fi
    # Some crates build C code.
    command -v cc >/dev/null 2>&1 || apt_install build-essential
}

ensure_datapath_deps() {
    # xsk-rs builds libxdp/libbpf from source; the testbed needs iproute2,
    # ethtool and ping; the TCP end-to-end tests need iperf3; xdpgen's plots
    # need a TTF font (DejaVu Sans); the capture test reads pcapng back with
    # tshark; the live pages' tests load them in headless Chromium.
    apt_install clang llvm libelf-dev libpcap-dev zlib1g-dev m4 pkg-config \
        iproute2 ethtool iputils-ping iperf3 fonts-dejavu-core tshark chromium
}

bench_env() {
    # bench_env: the lines every benchmark's env.txt starts with (date,
    # commit and the files that differ from it, CPU, kernel); print, then
    # add the benchmark's own lines.
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet || echo " (dirty: $(git diff --name-only | paste -sd' '))")"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "kernel: $(uname -r)"
}

results_dir() {
    # results_dir KIND : sets $commit (HEAD, short) and $out, the new
    # bench-results/KIND/<date>-<commit> directory a benchmark writes to.
    commit=$(git rev-parse --short HEAD)
    out="bench-results/$1/$(date -u +%Y-%m-%d)-$commit"
    mkdir -p "$out"
}
