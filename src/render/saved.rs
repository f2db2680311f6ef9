//! Reading a saved report back for `render`: the JSON a run printed, as people have it. A
//! `kubectl logs` of a Job holds the probe's log lines (text or JSON) around the report, so
//! the report is the first JSON object that reads as one; a report from a newer major schema
//! is read as far as it goes, with a warning. Pure: bytes in, a report or an error out.

use crate::report::{Report, SCHEMA_VERSION};

/// Longest input read: a 1,000-image report is a few MiB; the logs of a run around it less.
pub const MAX_SAVED_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("larger than {} MiB: not a saved report", MAX_SAVED_BYTES / (1024 * 1024))]
    TooLarge,
    #[error("not UTF-8 text: not a saved report")]
    NotText,
    #[error("is not an ecr-pull-probe JSON report")]
    NotReport {
        #[source]
        source: serde_json::Error,
    },
    #[error("holds no ecr-pull-probe JSON report (no line starts one with `{{`)")]
    NoReport,
}

/// A report read back, and what the reader should know about it.
#[derive(Debug)]
pub struct Saved {
    pub report: Report,
    /// Set when the report's major schema version is not this build's.
    pub warning: Option<String>,
}

/// The report in `bytes`: the whole input when it is one, else the first object starting
/// at the beginning of a line that reads as a report (log lines before and after skipped).
pub fn read(bytes: &[u8]) -> Result<Saved, SavedError> {
    if bytes.len() as u64 > MAX_SAVED_BYTES {
        return Err(SavedError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SavedError::NotText)?;
    let whole = serde_json::from_str::<Report>(text);
    let report = match whole {
        Ok(r) => r,
        Err(whole_err) => {
            let mut first_err = None;
            let mut found = None;
            for start in line_starts(text).filter(|&i| text[i..].starts_with('{')) {
                let mut it =
                    serde_json::Deserializer::from_str(&text[start..]).into_iter::<Report>();
                match it.next() {
                    Some(Ok(r)) => {
                        found = Some(r);
                        break;
                    }
                    // A pretty report's first line is `{` alone: its error is the one to show
                    // when nothing reads (a JSON log line's error says little).
                    Some(Err(e)) if text[start..].starts_with("{\n") => {
                        first_err.get_or_insert(e);
                    }
                    _ => {}
                }
            }
            match (found, first_err) {
                (Some(r), _) => r,
                (None, Some(e)) => return Err(SavedError::NotReport { source: e }),
                (None, None) if text.trim_start().starts_with('{') => {
                    return Err(SavedError::NotReport { source: whole_err });
                }
                (None, None) => return Err(SavedError::NoReport),
            }
        }
    };
    let warning = (major(&report.schema_version) != major(SCHEMA_VERSION)).then(|| {
        format!(
            "schema version {} is not {}.x, the one this build reads: the report was written by another major version of ecr-pull-probe, and fields this build does not know are left out",
            report.schema_version,
            major(SCHEMA_VERSION)
        )
    });
    Ok(Saved { report, warning })
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// Byte offsets where lines begin.
fn line_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::passing;

    fn pretty(schema: &str) -> String {
        let mut r = passing(&["a"], 1);
        r.schema_version = schema.into();
        crate::render::json(&r)
    }

    #[test]
    fn a_report_alone_reads_without_warning() {
        let s = read(pretty(SCHEMA_VERSION).as_bytes()).unwrap();
        assert_eq!(s.report.images.len(), 1);
        assert!(s.warning.is_none());
        // Older minors of the same major are this build's to read.
        assert!(read(pretty("1.0").as_bytes()).unwrap().warning.is_none());
    }

    #[test]
    fn kubectl_logs_around_the_report_are_skipped() {
        let logs = format!(
            "2026-12-02T05:00:00Z  WARN ecr_pull_probe: a warning with {{braces}}\n\
             {{\"timestamp\":\"2026-12-02T05:00:00Z\",\"level\":\"WARN\",\"fields\":{{\"message\":\"json log\"}}}}\n\
             {}\n2026-12-02T05:00:01Z  INFO after\n",
            pretty(SCHEMA_VERSION)
        );
        let s = read(logs.as_bytes()).unwrap();
        assert_eq!(s.report.images[0].image, "a");
    }

    #[test]
    fn another_major_version_is_read_with_a_warning() {
        let w = read(pretty("2.0").as_bytes()).unwrap().warning.unwrap();
        assert!(w.contains("2.0") && w.contains("1.x"), "{w}");
    }

    #[test]
    fn a_report_that_does_not_parse_tells_why_once() {
        let e = read(b"{\"schema_version\": 7}\n").unwrap_err();
        assert!(matches!(e, SavedError::NotReport { .. }), "{e:?}");
        let chain = crate::error_chain(&e);
        assert!(
            chain.starts_with("is not an ecr-pull-probe JSON report: "),
            "{chain}"
        );
        let why = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(chain.matches(&why).count(), 1, "{chain}");
    }

    #[test]
    fn what_is_no_report_is_said_so() {
        assert!(matches!(
            read(b"just a log line\n"),
            Err(SavedError::NoReport)
        ));
        assert!(matches!(
            read(b"{\n  \"schema_version\": 1\n}\n"),
            Err(SavedError::NotReport { .. })
        ));
        assert!(matches!(read(&[0xff, 0xfe]), Err(SavedError::NotText)));
    }
}
