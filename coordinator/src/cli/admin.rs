//! `vantage admin backup|verify|restore`: store care.
//!
//! A backup is taken by the coordinator that holds the store, so it works
//! while `vantage serve` runs (pass `--coordinator`); without one, the
//! embedded coordinator opens the data directory. The file is written next
//! to its final name and renamed once complete and verified, so a failed
//! backup never leaves a file that looks whole. Restoring is offline: into
//! a data directory that holds no store yet, with no coordinator running
//! on it (see [`crate::store::Store::restore`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use vantage_proto::v1;

use super::connect::{Connection, Needs};
use super::{GlobalArgs, UsageError, status_error};
use crate::store::{BackupError, BackupSummary, Store};

#[derive(Debug, Subcommand)]
#[command(after_help = "Examples:
    vantage --coordinator https://coordinator.example.com:7420 admin backup /var/backups/vantage-$(date +%F).backup
    vantage admin verify /var/backups/vantage-2026-11-30.backup
    systemctl stop vantage && mv /var/lib/vantage /var/lib/vantage.old
    vantage --data-dir /var/lib/vantage admin restore /var/backups/vantage-2026-11-30.backup
    cp -a /var/lib/vantage.old/pki /var/lib/vantage/ && chown -R vantage: /var/lib/vantage")]
pub enum AdminCommand {
    /// Write a backup of the whole store to FILE, while the coordinator
    /// keeps serving (scans, agents and reviews go on).
    Backup(BackupArgs),
    /// Check a backup file end to end (format, checksum, counts) without restoring it.
    Verify(FileArg),
    /// Restore a backup into --data-dir, which must hold no store yet.
    /// Stop the coordinator first; the PKI (data-dir/pki) is not in the
    /// backup: keep or copy it separately.
    Restore(FileArg),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup.
    pub file: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct FileArg {
    /// The backup file.
    pub file: PathBuf,
}

pub async fn run(global: &GlobalArgs, cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Backup(args) => backup(global, args).await,
        AdminCommand::Verify(args) => {
            let summary = verify(&args.file)?;
            print_summary("backup", &args.file, &summary);
            Ok(())
        }
        AdminCommand::Restore(args) => {
            let dir = global.data_dir();
            let file = args.file.clone();
            let target = dir.clone();
            let (store, summary) = tokio::task::spawn_blocking(move || Store::restore(&target, &file))
                .await?
                .map_err(|e| restore_error(e, &args.file))?;
            drop(store);
            print_summary("restored", &args.file, &summary);
            eprintln!("into {}; start the coordinator on it", dir.display());
            Ok(())
        }
    }
}

async fn backup(global: &GlobalArgs, args: BackupArgs) -> anyhow::Result<()> {
    if args.file.exists() && !args.force {
        return Err(UsageError(format!("{} exists (--force replaces it)", args.file.display())).into());
    }
    let partial = partial_name(&args.file);
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let fetched = fetch(&mut conn, &partial).await;
    conn.close().await;
    if let Err(e) = fetched {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let summary = match verify(&partial) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context("the backup did not verify; nothing was kept"));
        }
    };
    std::fs::rename(&partial, &args.file)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), args.file.display()))?;
    print_summary("backup", &args.file, &summary);
    Ok(())
}

/// Streams the coordinator's backup into `path`.
async fn fetch(conn: &mut Connection, path: &Path) -> anyhow::Result<()> {
    let mut file = std::fs::File::create(path).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let mut stream = conn.control.backup(v1::BackupRequest {}).await.map_err(status_error)?.into_inner();
    while let Some(chunk) = stream.message().await.map_err(status_error)? {
        file.write_all(&chunk.data).with_context(|| format!("writing {}", path.display()))?;
    }
    file.sync_all().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn verify(path: &Path) -> anyhow::Result<BackupSummary> {
    let file = std::fs::File::open(path).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    crate::store::verify_backup(std::io::BufReader::new(file)).map_err(|e| restore_error(e, path))
}

/// A backup that is not one, or is damaged, newer or aimed at a used
/// directory, is the operator's to fix (exit status 2).
fn restore_error(e: BackupError, file: &Path) -> anyhow::Error {
    match e {
        BackupError::Store(e) => anyhow::Error::new(e),
        BackupError::Io(e) => anyhow::anyhow!("{}: {e}", file.display()),
        e => UsageError(format!("{}: {e}", file.display())).into(),
    }
}

/// `FILE` becomes `.FILE.partial` in the same directory (same file system, so the rename is atomic).
fn partial_name(file: &Path) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
    file.with_file_name(format!(".{name}.partial"))
}

fn print_summary(what: &str, file: &Path, s: &BackupSummary) {
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "{what} {}: {} entries in {} trees, {bytes} bytes; store schema {}, written by Vantage {} at {}",
        file.display(),
        s.entries(),
        s.trees.len(),
        s.header.schema,
        s.header.written_by,
        humantime::format_rfc3339_seconds(s.header.created_at)
    );
}
