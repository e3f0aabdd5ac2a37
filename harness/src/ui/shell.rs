//! The terminal side of `rmapcheck shell`: line editing and history (rustyline) when
//! stdin is a terminal, plain lines from stdin otherwise, so scripts and tests drive it.

use crate::run::shell::{Said, Shell};
use crate::vm::guest::Fault;
use std::io::{BufRead, IsTerminal};

const PROMPT: &str = "rmapcheck> ";

/// How a session's input went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    pub read: usize,
    /// Lines that could not be used (a bad step, an unknown mapping, a failed save).
    pub refused: usize,
}

/// Show what one line did; `false` at `quit`.
fn show(said: Said, n: usize, interactive: bool, lines: &mut Lines) -> bool {
    match said {
        Said::Text(t) if t.is_empty() => {}
        Said::Text(t) => println!("{t}"),
        Said::Error(e) => {
            lines.refused += 1;
            // On a terminal the line is on screen; in a script, say which one.
            let at = if interactive { String::new() } else { format!("line {n}: ") };
            for l in e.lines() {
                eprintln!("rmapcheck: {at}{l}");
            }
        }
        Said::Quit => return false,
    }
    true
}

/// Read lines until `quit` or the end of input, and hand each to `shell`. `history` is
/// the file that keeps the terminal's history between sessions.
pub fn run(shell: &mut Shell, history: Option<&std::path::Path>) -> Result<Lines, Fault> {
    let mut lines = Lines::default();
    if !std::io::stdin().is_terminal() {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            lines.read += 1;
            if !show(shell.line(&line)?, lines.read, false, &mut lines) {
                break;
            }
        }
        return Ok(lines);
    }
    let Ok(mut editor) = rustyline::DefaultEditor::new() else {
        eprintln!("rmapcheck: no line editor on this terminal");
        return Ok(lines);
    };
    if let Some(h) = history {
        let _ = editor.load_history(h);
    }
    eprintln!("rmapcheck shell: one step per line; `help` lists the views and commands, `quit` ends.");
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                lines.read += 1;
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if !show(shell.line(&line)?, lines.read, true, &mut lines) {
                    break;
                }
            }
            // Ctrl-C drops the line, as a shell does; Ctrl-D ends.
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    if let Some(h) = history {
        let _ = editor.save_history(h);
    }
    Ok(lines)
}
