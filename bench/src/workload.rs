//! The labs the benchmark scans: many hosts with few ports, or few hosts
//! with every port.

use clap::ValueEnum;
use vantage_tests::lab::{LabSpec, PortRange};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// 256 live hosts x ports 1-1000 (8 open, 6 filtered each), 16 dark hosts.
    #[value(name = "256x1000")]
    Wide,
    /// 16 live hosts x ports 1-65535 (8 open, 6 filtered each).
    #[value(name = "16x65535")]
    Deep,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Wide => "256x1000",
            Workload::Deep => "16x65535",
        }
    }

    /// The lab of this workload; `prefix` names it (`<prefix>-256x1000`).
    pub fn spec(self, prefix: &str, seed: u64) -> LabSpec {
        let (hosts, ports, dark) = match self {
            Workload::Wide => (256, PortRange::new(1, 1000), 16),
            Workload::Deep => (16, PortRange::new(1, 65535), 0),
        };
        LabSpec {
            name: format!("{prefix}-{}", self.name()),
            hosts,
            open: 8,
            filtered: 6,
            ports,
            dark,
            drop_all: false,
            tarpit: false,
            seed,
            ..LabSpec::new("")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_valid() {
        for w in Workload::value_variants() {
            w.spec("bench", 1).validate().unwrap();
        }
        assert_eq!(Workload::Wide.spec("bench", 1).target_count(), 272);
    }

    #[test]
    fn names_match_the_command_line() {
        for w in Workload::value_variants() {
            assert_eq!(Workload::from_str(w.name(), false).ok(), Some(*w));
        }
    }
}
