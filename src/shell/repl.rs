//! The interactive prompt: rustyline with completion, persistent history, and
//! Ctrl-C that cancels the line (or the running command) but never the shell.

use std::cell::RefCell;
use std::io::Write as _;
use std::path::PathBuf;
use std::rc::Rc;

use ftpsh_commands::script::{Halt, Outcome, Runner};
use ftpsh_commands::session::{Remote, Ui};
use ftpsh_commands::Registry;
use ftpsh_core::display;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use super::complete::{ShellHelper, State};
use super::ui::TermUi;
use crate::client::Connection;

/// Where history is kept: `$FTPSH_HISTORY`, else the XDG data directory.
pub fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FTPSH_HISTORY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "ftpsh").map(|d| d.data_dir().join("history"))
}

pub fn run(registry: Registry, conn: Connection, mut ui: TermUi, keep_going: bool) -> Outcome {
    let color = colored::control::SHOULD_COLORIZE.should_colorize();
    let state = Rc::new(RefCell::new(State {
        registry,
        conn,
        cache: Default::default(),
    }));
    let config = Config::builder()
        .auto_add_history(true)
        .history_ignore_space(true)
        .history_ignore_dups(true)
        .unwrap_or_else(|_| Config::builder())
        .max_history_size(10_000)
        .unwrap_or_else(|_| Config::builder())
        .completion_type(CompletionType::List)
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "ftpsh: cannot start the line editor: {e}"
            );
            return Outcome {
                failed: true,
                quit: true,
                ..Outcome::default()
            };
        }
    };
    editor.set_helper(Some(ShellHelper::new(Rc::clone(&state), color)));
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "ftpsh: cannot read history {}: {e}",
                    path.display()
                );
            }
        }
    }
    if !ui.quiet() {
        let st = state.borrow();
        let _ = writeln!(
            ui.out(),
            "Connected to {}. Type 'help' for the verbs, Ctrl-D to leave.",
            st.conn.address()
        );
    }
    let mut outcome = Outcome::default();
    // Nobody sees the prompt or the results: leave as a script would.
    while !ui.output_closed() {
        ui.forget_interrupt();
        let prompt = {
            let st = state.borrow();
            let cwd = st.conn.cwd();
            format!("ftpsh {}:{}> ", st.conn.address(), display::escape(&cwd))
        };
        match editor.readline(&prompt) {
            Ok(line) => {
                let mut guard = state.borrow_mut();
                let st = &mut *guard;
                st.cache.clear();
                let mut runner = Runner {
                    verbs: &st.registry.verbs,
                    aliases: &mut st.registry.aliases,
                    remote: &mut st.conn,
                    ui: &mut ui,
                    keep_going,
                    depth: 0,
                };
                super::set_busy(true);
                let r = runner.run_line(&line, None);
                super::set_busy(false);
                st.cache.clear();
                outcome.failed |= r.failed;
                if let Some(path) = &history {
                    let _ = editor.save_history(path);
                }
                if r.quit || r.halt == Some(Halt::OutputClosed) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "ftpsh: cannot read the line: {e}");
                outcome.failed = true;
                break;
            }
        }
    }
    if let Some(path) = &history {
        if let Err(e) = editor.save_history(path) {
            let _ = writeln!(
                std::io::stderr(),
                "ftpsh: cannot save history to {}: {e}",
                path.display()
            );
        }
    }
    outcome
}
