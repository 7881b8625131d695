use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = email_otp::cli::Cli::parse();
    match email_otp::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("email-otp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
