//! xdpsched — placeholder until the AF_XDP datapath lands (issue: datapath).
fn main() -> anyhow::Result<()> {
    anyhow::bail!("xdpsched: the AF_XDP datapath is not implemented yet; see README.md")
}
