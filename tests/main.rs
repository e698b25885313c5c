//! The end-to-end tests, in one binary so the suite links once: the real
//! `ftpsh-server` on a loopback port and the real `ftpsh`, through pipes and
//! pseudo-terminals (`common` has the helpers).

#[allow(dead_code)]
mod common;
mod layers;

mod e2e {
    mod aliases;
    mod audit_client;
    mod audit_server;
    mod batched_uploads;
    mod digest_cache;
    mod everyday;
    mod example;
    mod exec_limits;
    mod faithful;
    mod faults;
    mod handoff;
    mod hostile;
    mod interactive;
    mod jail_race;
    mod limits;
    mod load;
    mod many;
    mod nothing_lost;
    mod polish;
    mod protocol_fuzz;
    mod server_hardening;
    mod shared_root;
    mod shell;
    mod smoke;
    mod ssh;
    mod streaming;
    mod tls;
    mod transfer;
    mod trees;
    mod verb_examples;
    mod work_limits;
}
