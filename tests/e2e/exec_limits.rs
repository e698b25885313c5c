//! `exec`'s limits, end to end with the real server: the command is over when
//! `sh` exits even if a detached process keeps its output open, and a client that
//! stops reading during a command is dropped and the command killed.
//!
//! No timing assertions: each test waits for the event (a client that exits, a
//! process gone, a closed socket) with a generous deadline.

use std::time::Duration;

use crate::common::*;

/// A generous deadline for events that should take about a second.
const EVENT: Duration = Duration::from_secs(20);

/// Threads of process `pid`.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Kills, when the test ends however it ends, the processes a remote command
/// left outside the server's reach.
struct Reap(Vec<u32>);

impl Drop for Reap {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if process_alive(pid) {
                // SAFETY: kill(2) on a process this test started; no memory involved.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
    }
}

#[test]
fn exec_ends_when_sh_exits_though_a_detached_process_holds_its_output() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    // No --exec-timeout: only the end of `sh` may end the command.
    let mut server = ServerBuilder::new(root.path()).allow_exec().start();
    let idle_threads = threads(server.child.id());
    // A process in a session of its own keeps stdout and stderr open for a
    // minute; `sh` waits until it is detached, then prints more than a pipe
    // holds, so the end of the output is still in the pipes when `sh` exits.
    std::fs::write(
        root.path().join("detach.sh"),
        "setsid sh -c 'echo $$ > daemon.pid; exec sleep 60' &\n\
         while [ ! -s daemon.pid ]; do sleep 0.05; done\n\
         seq 1 100000\n\
         echo done >&2\n",
    )
    .unwrap();
    let out_path = local.path().join("out.txt");
    let err_path = local.path().join("err.txt");
    let mut client = client_process(&server, local.path())
        .args(["-c", "exec 'sh detach.sh'; echo after"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let daemon = Reap(vec![wait_for_pid(&root.path().join("daemon.pid"))]);
    let mut status = None;
    let finished = wait_until(EVENT, || {
        status = client.try_wait().unwrap();
        status.is_some()
    });
    if !finished {
        let _ = client.kill();
        let _ = client.wait();
    }
    let out = std::fs::read_to_string(&out_path).unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        finished,
        "exec waited for the detached process; stderr so far: {err}"
    );
    assert_eq!(status.unwrap().code(), Some(0), "{err}");
    let expected: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    assert!(
        out == format!("{expected}after\n"),
        "the output is not all there ({} bytes)",
        out.len()
    );
    assert_eq!(err, "done\n");
    // The client has left: its session ends, no thread of it stays behind.
    assert!(
        wait_until(EVENT, || threads(server.child.id()) == idle_threads),
        "{} server threads, {idle_threads} when idle",
        threads(server.child.id())
    );
    assert!(server.alive());
    drop(daemon);
}

#[test]
fn a_client_that_stops_reading_during_exec_is_dropped_and_its_command_killed() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path())
        .allow_exec()
        .arg("--stall-timeout")
        .arg("500ms")
        .start();
    let mut sock = raw_connection(&server, true);
    // Far more output than the socket buffers hold (a few MiB on loopback while
    // nobody reads), then a command that goes on without writing: only the
    // server giving up on the client ends it.
    ftpsh_core::protocol::Request::Exec {
        command: "echo $$ > sh.pid; head -c 100000000 /dev/zero; exec sleep 60".into(),
    }
    .write_to(&mut sock)
    .unwrap();
    let pid = wait_for_pid(&root.path().join("sh.pid"));
    let _leftover = Reap(vec![pid]);
    // Not a byte read until the command is gone.
    assert!(
        wait_until(EVENT, || !process_alive(pid)),
        "remote process {pid} outlived a client that read nothing; log: {}",
        server.log_text()
    );
    assert!(
        wait_until(EVENT, || server
            .log_text()
            .contains("exec: client read nothing for 0.5 s, command killed")),
        "log: {}",
        server.log_text()
    );
    assert!(wait_closed(&mut sock), "the connection is still open");
    let out = server
        .client(local.path())
        .args(["-c", "echo still serving"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "still serving\n", "{}", stderr_of(&out));
}

#[test]
fn a_background_job_still_running_when_sh_exits_is_killed() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(root.path()).allow_exec().start();
    // The job shares the command's process group and would outlive the deadline.
    let out = server
        .client(local.path())
        .args(["-c", "exec 'sleep 60 & echo $! > bg.pid; echo left'"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "left\n");
    let pid = wait_for_pid(&root.path().join("bg.pid"));
    let _leftover = Reap(vec![pid]);
    assert!(
        wait_until(EVENT, || !process_alive(pid)),
        "background job {pid} outlived its command"
    );
}
