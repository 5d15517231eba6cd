//! `vantage verify F-12`: re-scan one finding's exposure from every region
//! now, print each region's view and the conclusion, and record it on the
//! finding (remediated when every region saw the port closed).

use clap::Args;

use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{Format, table};
use crate::cli::{GlobalArgs, workflow_error};
use crate::workflow::reprobe::DEFAULT_HOST_RATE;
use crate::workflow::verify::{Verification, VerifyRequest, verify};
use crate::workflow::{self};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    vantage verify F-12                         # the owner says it is closed: check now\n  \
    vantage verify F-12 --format json\n  \
    vantage verify F-12 --coordinator https://coordinator.example:7420   # from every region's agents")]
pub struct VerifyArgs {
    /// The finding's id, as `vantage findings` prints it (F-12).
    pub finding: String,
    /// Who verifies, for the finding's history [default: $USER].
    #[arg(long)]
    pub by: Option<String>,
    /// Re-probes per second to the finding's host at most.
    #[arg(long, default_value_t = DEFAULT_HOST_RATE)]
    pub host_rate: u32,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(global: &GlobalArgs, args: VerifyArgs) -> anyhow::Result<()> {
    let by = args.by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".into());
    let request = VerifyRequest { host_rate: args.host_rate, ..VerifyRequest::new(vec![args.finding.clone()], by) };
    let mut conn = Connection::open(global, Needs::Agent).await?;
    let result = verify(&mut conn.control, &request, &workflow::stderr).await;
    conn.close().await;
    let done = result.map_err(workflow_error)?;
    for v in &done {
        print(v, args.format)?;
    }
    Ok(())
}

fn print(v: &Verification, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(v)?);
        return Ok(());
    }
    println!("{} {}", v.id, v.target);
    let rows: Vec<Vec<String>> =
        v.regions.iter().map(|s| vec![s.region.clone(), if s.open { "open" } else { "closed" }.to_string()]).collect();
    table(&mut std::io::stdout().lock(), &["REGION", "PORT"], &rows)?;
    let regions: Vec<&str> = v.regions.iter().map(|s| s.region.as_str()).collect();
    let open: Vec<&str> = v.regions.iter().filter(|s| s.open).map(|s| s.region.as_str()).collect();
    let conclusion = match v.conclusion {
        "gone" => format!("gone from every region that looked ({})", regions.join(", ")),
        "open" | "regions-disagree" => format!("still open from {}", open.join(", ")),
        _ => "no region could re-probe it (an answers-all host needs a review's scan)".to_string(),
    };
    println!("{conclusion}: {} is {}", v.id, v.status);
    Ok(())
}
