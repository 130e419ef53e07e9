//! xdpgen — placeholder until the generator lands (issue: gen).
#![forbid(unsafe_code)]
fn main() -> anyhow::Result<()> {
    anyhow::bail!("xdpgen: the traffic generator is not implemented yet; see README.md")
}
