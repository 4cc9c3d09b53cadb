//! The plain Prometheus text format (0.0.4), for scrapers that ask for it: the OpenMetrics
//! text prometheus-client writes, with counters' metadata under their `_total` names and no
//! `# EOF`.

/// Which exposition format a scraper gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    OpenMetrics,
    Prometheus,
}

impl Exposition {
    /// From the scrape's `Accept` header: OpenMetrics when asked for (or nothing specific is
    /// asked), the plain text format when `text/plain` is preferred.
    pub fn from_accept(accept: Option<&str>) -> Exposition {
        match accept {
            Some(accept) if !accept.contains("application/openmetrics-text") && accept.contains("text/plain") => {
                Exposition::Prometheus
            }
            _ => Exposition::OpenMetrics,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// OpenMetrics text as Prometheus text 0.0.4.
pub fn to_prometheus(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.strip_suffix(" counter"))
        {
            counters.insert(name.to_owned());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_total_names_and_the_eof_goes() {
        let open = "# HELP fluxd_sync_runs Finished runs.\n# TYPE fluxd_sync_runs counter\nfluxd_sync_runs_total{status=\"completed\"} 1\n# EOF\n";
        let plain = to_prometheus(open);
        assert_eq!(
            plain,
            "# HELP fluxd_sync_runs_total Finished runs.\n# TYPE fluxd_sync_runs_total counter\nfluxd_sync_runs_total{status=\"completed\"} 1\n"
        );
        assert_eq!(
            Exposition::from_accept(Some("text/plain;version=0.0.4")),
            Exposition::Prometheus
        );
        assert_eq!(
            Exposition::from_accept(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")),
            Exposition::OpenMetrics
        );
        assert_eq!(Exposition::from_accept(None), Exposition::OpenMetrics);
    }
}
