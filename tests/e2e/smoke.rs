use crate::common::*;

#[test]
fn echo_round_trips_through_a_real_server() {
    let root = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let server = Server::start(root.path());
    server
        .client(local.path())
        .write_stdin("echo hello   world\n")
        .assert()
        .success()
        .stdout("hello world\n");
}
