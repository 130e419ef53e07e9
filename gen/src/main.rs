//! xdpgen — placeholder until the generator lands (issue: gen).
fn main() -> anyhow::Result<()> {
    anyhow::bail!("xdpgen: the traffic generator is not implemented yet; see README.md")
}
