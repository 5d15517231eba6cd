//! `vantage config sample`: a commented file with every option, generated
//! from the options themselves (deploy/coordinator.toml and
//! deploy/agent.toml are its output; a test keeps them equal).

use clap::Args;

use super::Kind;

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Which binary's file.
    #[arg(long, value_enum, default_value_t = Kind::Coordinator)]
    pub kind: Kind,
}

pub fn run(args: SampleArgs) -> anyhow::Result<()> {
    print!(
        "{}",
        match args.kind {
            Kind::Coordinator => super::sample(),
            Kind::Agent => vantage_agent::cli::sample(),
        }
    );
    Ok(())
}
