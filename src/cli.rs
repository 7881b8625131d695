//! The command line: serve, api, worker, dev, openapi, check-config.
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, Profile};
use crate::startup::{self, Mode};

#[derive(Debug, Parser)]
#[command(
    name = "email-otp",
    version,
    about = "Proves that a person controls an email address with a one-time code"
)]
pub struct Cli {
    /// A TOML configuration file (below OTP_* environment variables, above the defaults).
    #[arg(long, global = true, env = "OTP_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the mail worker in one process.
    Serve,
    /// Run the HTTP API only.
    Api,
    /// Run the mail worker only.
    Worker,
    /// Serve with development defaults: outbox mail, ephemeral key, pretty logs, own redis-server if needed.
    Dev,
    /// Print the OpenAPI spec.
    Openapi {
        #[arg(long, value_enum, default_value_t = SpecFormat::Yaml)]
        format: SpecFormat,
    },
    /// Load and validate the configuration (and the mail templates), then print it with secrets redacted.
    CheckConfig,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SpecFormat {
    Yaml,
    Json,
}

/// Runs the command; the serving ones build their runtime from the configuration first.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let file = cli.config.as_deref();
    match cli.command {
        Command::Openapi { format } => {
            let spec = match format {
                SpecFormat::Yaml => crate::api::spec_yaml(),
                SpecFormat::Json => crate::api::spec_json(),
            };
            print!("{spec}");
            if !spec.ends_with('\n') {
                println!();
            }
            Ok(())
        }
        Command::CheckConfig => {
            // Exactly start-up's validation: the typed configuration, then the templates the
            // worker compiles.
            let config = Config::load(file, Profile::Production)?;
            crate::mail::Templates::load(&config.mail.template_dir, &config.mail.subject)
                .context("mail templates")?;
            print!("{}", config.settings.to_redacted_toml());
            Ok(())
        }
        Command::Serve => serve(file, Profile::Production, Mode::Serve),
        Command::Api => serve(file, Profile::Production, Mode::Api),
        Command::Worker => serve(file, Profile::Production, Mode::Worker),
        Command::Dev => serve(file, Profile::Dev, Mode::Serve),
    }
}

fn serve(file: Option<&std::path::Path>, profile: Profile, mode: Mode) -> anyhow::Result<()> {
    let config = Config::load(file, profile)?;
    let runtime = config
        .worker_threads
        .runtime()
        .context("starting the async runtime")?;
    runtime.block_on(run_service(config, profile, mode))
}

async fn run_service(mut config: Config, profile: Profile, mode: Mode) -> anyhow::Result<()> {
    let service = match mode {
        Mode::Serve => "serve",
        Mode::Api => "api",
        Mode::Worker => "worker",
    };
    let _telemetry = crate::telemetry::init(&config.settings, service)?;
    // Kept alive until the service stops; dropping it stops the child redis-server.
    let _redis = match profile {
        Profile::Dev => crate::dev::ensure_redis(&mut config).await?,
        Profile::Production => None,
    };
    if profile == Profile::Dev {
        crate::dev::banner(&config);
    }
    startup::run(config, mode, startup::shutdown_signal()).await
}
