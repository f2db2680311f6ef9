//! The flags of the commands that run the probe as a Job from outside the cluster
//! (`diagnose`, `gate`), raw as clap took them, and their validation (pure, as in `config`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::config::{ConfigError, OutputFormat, Outputs, parse_duration};

/// Where the cluster is and what to run in it.
#[derive(Debug, Clone, Args)]
pub struct RunnerArgs {
    /// The probe's image, as the cluster's nodes can pull it (e.g. your registry's copy of
    /// ghcr.io/…/ecr-pull-probe:TAG). Required: there is no default to guess.
    #[arg(long, env = "ECR_PULL_PROBE_IMAGE", value_name = "IMAGE")]
    pub probe_image: Option<String>,

    /// The namespace; default: the kubeconfig context's.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// The kubeconfig context to use (the kubeconfig as kubectl finds it: $KUBECONFIG, else
    /// ~/.kube/config).
    #[arg(long)]
    pub context: Option<String>,

    /// Deadline for the whole run, the Job's included (e.g. 300s, 5m).
    #[arg(long, default_value = "300s")]
    pub timeout: String,
}

/// The report's formats: one on stdout, any others to files.
#[derive(Debug, Clone, Args)]
pub struct JobOutputArgs {
    /// Report format on stdout [default: text for diagnose, json for gate].
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,

    /// Also write the JSON report to FILE.
    #[arg(long = "json", value_name = "FILE")]
    pub json_file: Option<PathBuf>,

    /// Also write the text report to FILE.
    #[arg(long = "text", value_name = "FILE")]
    pub text_file: Option<PathBuf>,

    /// Also write the Markdown report to FILE.
    #[arg(long = "markdown", value_name = "FILE")]
    pub markdown_file: Option<PathBuf>,

    /// Also write JUnit XML to FILE.
    #[arg(long = "junit", value_name = "FILE")]
    pub junit_file: Option<PathBuf>,
}

impl JobOutputArgs {
    pub fn outputs(&self, default: OutputFormat) -> Outputs {
        let files = [
            (OutputFormat::Json, &self.json_file),
            (OutputFormat::Text, &self.text_file),
            (OutputFormat::Markdown, &self.markdown_file),
            (OutputFormat::Junit, &self.junit_file),
        ]
        .into_iter()
        .filter_map(|(f, p)| {
            p.clone()
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| (f, p))
        })
        .collect();
        Outputs {
            stdout: self.output.unwrap_or(default),
            files,
        }
    }
}

/// The validated runner settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub probe_image: String,
    pub namespace: Option<String>,
    pub context: Option<String>,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(
        "no probe image: pass --probe-image IMAGE or set ECR_PULL_PROBE_IMAGE to the ecr-pull-probe image the cluster's nodes can pull"
    )]
    NoProbeImage,
    #[error("the probe image {image:?} is not an image reference")]
    BadProbeImage { image: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("--timeout {timeout:?} leaves no time for the Job: use at least 10s")]
    TooShort { timeout: String },
}

impl Runner {
    pub fn from_args(a: &RunnerArgs) -> Result<Runner, RunnerError> {
        let image = a
            .probe_image
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or(RunnerError::NoProbeImage)?;
        if image.parse::<crate::reference::ImageRef>().is_err() {
            return Err(RunnerError::BadProbeImage { image });
        }
        let timeout = parse_duration("--timeout", &a.timeout)?;
        if timeout < Duration::from_secs(10) {
            return Err(RunnerError::TooShort {
                timeout: a.timeout.clone(),
            });
        }
        Ok(Runner {
            probe_image: image,
            namespace: a.namespace.clone().filter(|s| !s.is_empty()),
            context: a.context.clone().filter(|s| !s.is_empty()),
            timeout,
        })
    }

    /// The probe's own deadline inside the Job: what is left once the pod is scheduled and
    /// started, so its report is printed before the Job's deadline ends it.
    pub fn probe_timeout(&self) -> Duration {
        (self.timeout * 3 / 4).max(Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(image: Option<&str>, timeout: &str) -> RunnerArgs {
        RunnerArgs {
            probe_image: image.map(str::to_string),
            namespace: None,
            context: None,
            timeout: timeout.into(),
        }
    }

    #[test]
    fn the_probe_image_is_required_and_never_guessed() {
        let e = Runner::from_args(&args(None, "300s")).unwrap_err();
        assert!(e.to_string().contains("--probe-image"), "{e}");
        assert!(Runner::from_args(&args(Some(" "), "300s")).is_err());
        assert!(matches!(
            Runner::from_args(&args(Some("Not An Image"), "300s")),
            Err(RunnerError::BadProbeImage { .. })
        ));
        let r =
            Runner::from_args(&args(Some("registry.example/ecr-pull-probe:0.1.0"), "2m")).unwrap();
        assert_eq!(r.timeout, Duration::from_secs(120));
        assert_eq!(r.probe_timeout(), Duration::from_secs(90));
    }

    #[test]
    fn timeouts_are_checked() {
        for bad in ["0s", "5s", "soon"] {
            assert!(
                Runner::from_args(&args(Some("a.example/p:1"), bad)).is_err(),
                "{bad}"
            );
        }
    }
}
