//! `vantage import nmap-xml FILE --period 2026-09`: an existing nmap
//! report as a period's baseline, so that the first diff has history.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use vantage_proto::v1;
use vantage_shared::Period;

use crate::cli::connect::{Connection, Needs};
use crate::cli::{GlobalArgs, UsageError, status_error};
use crate::review::import;

/// Entries per message of the import stream.
const CHUNK: usize = 4096;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// An nmap XML report (`nmap -oX`, ideally with -sV): its open ports
    /// become the period's baseline (a new revision if it has one).
    NmapXml(NmapXmlArgs),
}

#[derive(Debug, Args)]
pub struct NmapXmlArgs {
    /// The report.
    pub file: PathBuf,
    /// The period it stands for (YYYY-MM).
    #[arg(long)]
    pub period: String,
    /// Recorded as the region of the imported ports.
    #[arg(long, default_value = "nmap-import")]
    pub source: String,
}

pub async fn run(global: &GlobalArgs, cmd: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::NmapXml(args) = cmd;
    let period: Period = args.period.parse().map_err(|e| UsageError(format!("--period: {e}")))?;
    let text = std::fs::read_to_string(&args.file).map_err(|e| UsageError(format!("{}: {e}", args.file.display())))?;
    let entries =
        import::nmap_xml(&text, &args.source).map_err(|e| UsageError(format!("{}: {e}", args.file.display())))?;
    let header = v1::ImportMessage {
        body: Some(v1::import_message::Body::Header(v1::ImportHeader {
            period: period.to_string(),
            source: args.source.clone(),
        })),
    };
    let chunks: Vec<v1::ImportMessage> = entries
        .chunks(CHUNK)
        .map(|c| v1::ImportMessage {
            body: Some(v1::import_message::Body::Entries(v1::ImportEntries {
                entries: c.iter().map(Into::into).collect(),
            })),
        })
        .collect();
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let stream = futures::stream::iter(std::iter::once(header).chain(chunks));
    let result = conn.control.import_baseline(stream).await.map_err(status_error);
    conn.close().await;
    let info = result?.into_inner();
    eprintln!(
        "imported {} open ports from {} as the {} baseline (revision {})",
        info.entries,
        args.file.display(),
        info.period,
        info.revision
    );
    Ok(())
}
