//! Findings to render and plan with.

use std::time::{Duration, SystemTime};

use vantage_shared::{Period, Proto};

use crate::review::findings::{Detail, Finding, FindingKey, Kind, Status};

/// A finding on 127.0.0.1:5432/tcp, critical, open.
pub fn finding(id: &str, kind: Kind) -> Finding {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    Finding {
        id: id.to_string(),
        key: FindingKey { addr: "127.0.0.1".parse().unwrap(), proto: Proto::Tcp, port: 5432, kind },
        severity: crate::review::findings::Severity::Critical,
        status: Status::Open,
        owner: Some("db-team".into()),
        contact: Some("db-team@example.invalid".into()),
        first_seen: at,
        opened_at: at,
        last_seen: at,
        last_period: "2026-11".parse::<Period>().unwrap(),
        deadline: at + Duration::from_secs(86_400),
        repeats: 0,
        sentence: "PostgreSQL on 127.0.0.1:5432 is open to the internet.".into(),
        detail: Detail {
            service: Some("postgresql".into()),
            product: Some("PostgreSQL".into()),
            version: Some("16.1".into()),
            regions: vec!["eu-west".into()],
            regions_scanned: 1,
            ..Default::default()
        },
        history: Vec::new(),
    }
}
