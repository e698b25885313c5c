//! `ftpsh`: the interactive shell. Everything lives in `ftpsh::shell`.

#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let cli = ftpsh::shell::Cli::parse();
    std::process::exit(ftpsh::shell::main(cli));
}
