//! The end-to-end tests, in one binary so the suite links once: the real
//! `ftpsh-server` on a loopback port and the real `ftpsh`, through pipes and
//! pseudo-terminals (`common` has the helpers).

#[allow(dead_code)]
mod common;
mod layers;

mod e2e {
    mod aliases;
    mod example;
    mod exec_limits;
    mod faults;
    mod interactive;
    mod limits;
    mod load;
    mod protocol_fuzz;
    mod shell;
    mod smoke;
    mod transfer;
    mod trees;
    mod verb_examples;
}
