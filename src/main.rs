use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = email_otp::cli::Cli::parse();
    match email_otp::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("email-otp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
