//! `ftpsh`: the interactive shell. Everything lives in `ftpsh::shell`.

#![forbid(unsafe_code)]

fn main() {
    let cli = ftpsh::shell::Cli::from_command_line();
    std::process::exit(ftpsh::shell::main(cli));
}
