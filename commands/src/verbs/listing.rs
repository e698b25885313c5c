//! How `ls` and `lls` print entries, so the two sides look alike.

use std::io::Write;

use crate::session::{Entry, EntryKind};
use ftpsh_core::display::for_out;

/// Short form: one name per line, directories marked with `/`, symlinks with `@`.
/// `terminal`: stdout is a terminal, so names are shown escaped.
pub fn short(out: &mut dyn Write, entries: &[Entry], terminal: bool) -> std::io::Result<()> {
    for e in entries {
        let mark = match e.kind {
            EntryKind::Dir => "/",
            EntryKind::Symlink => "@",
            _ => "",
        };
        writeln!(out, "{}{mark}", for_out(&e.name, terminal))?;
    }
    Ok(())
}

/// Long form: type and permissions, size, modification time (UTC), name.
pub fn long(out: &mut dyn Write, entries: &[Entry], terminal: bool) -> std::io::Result<()> {
    long_with(out, entries, terminal, false, &[])
}

/// [`long`], with sizes human (`1.5 MiB`) when `human`, and each link's
/// target (`targets[i]` for `entries[i]`, when known) shown as `-> target`.
pub fn long_with(
    out: &mut dyn Write,
    entries: &[Entry],
    terminal: bool,
    human: bool,
    targets: &[Option<String>],
) -> std::io::Result<()> {
    let size = |e: &Entry| {
        if human {
            crate::transfer::human_bytes(e.size)
        } else {
            e.size.to_string()
        }
    };
    let width = entries.iter().map(|e| size(e).len()).max().unwrap_or(1);
    for (i, e) in entries.iter().enumerate() {
        let target = match targets.get(i) {
            Some(Some(t)) => format!(" -> {}", for_out(t, terminal)),
            _ => String::new(),
        };
        writeln!(
            out,
            "{}{} {:>width$} {} {}{target}",
            kind_char(e.kind),
            permissions(e.mode),
            size(e),
            utc_timestamp(e.mtime),
            for_out(&e.name, terminal)
        )?;
    }
    Ok(())
}

/// The type letter of `ls -l`.
pub fn kind_char(kind: EntryKind) -> char {
    match kind {
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::File => '-',
        EntryKind::Other => '?',
    }
}

/// `rwxr-xr-x` for the permission bits of `mode`, with set-user-ID,
/// set-group-ID and sticky shown as ls(1) does (`s`/`S`, `s`/`S`, `t`/`T`).
pub fn permissions(mode: u32) -> String {
    let bits = ['r', 'w', 'x'];
    let mut out: Vec<char> = (0..9)
        .map(|i| {
            if mode & (1 << (8 - i)) != 0 {
                bits[i % 3]
            } else {
                '-'
            }
        })
        .collect();
    for (special, at, set, unset) in [
        (0o4000, 2, 's', 'S'),
        (0o2000, 5, 's', 'S'),
        (0o1000, 8, 't', 'T'),
    ] {
        if mode & special != 0 {
            out[at] = if out[at] == 'x' { set } else { unset };
        }
    }
    out.into_iter().collect()
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub fn utc_timestamp(secs: i64) -> String {
    let full = utc_timestamp_seconds(secs);
    full[..full.len() - 3].to_string()
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, without a date library (civil-from-days,
/// Howard Hinnant's algorithm).
pub fn utc_timestamp_seconds(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod permission_tests {
    use super::permissions;

    #[test]
    fn special_bits_show_as_ls_shows_them() {
        assert_eq!(permissions(0o755), "rwxr-xr-x");
        assert_eq!(permissions(0o4755), "rwsr-xr-x");
        assert_eq!(permissions(0o2644), "rw-r-Sr--");
        assert_eq!(permissions(0o1777), "rwxrwxrwt");
        assert_eq!(permissions(0o1776), "rwxrwxrwT");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_civil_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00");
        assert_eq!(utc_timestamp(1_795_000_000), "2026-11-18 11:06");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_timestamp_seconds(59), "1970-01-01 00:00:59");
    }

    #[test]
    fn long_lines_show_kind_mode_and_size() {
        let mut out = Vec::new();
        let e = Entry {
            name: "a b".into(),
            kind: EntryKind::Dir,
            size: 4096,
            mtime: 0,
            mode: 0o755,
            target: String::new(),
        };
        long(&mut out, &[e], false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "drwxr-xr-x 4096 1970-01-01 00:00 a b\n"
        );
    }
}
