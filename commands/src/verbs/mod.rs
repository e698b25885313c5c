//! Every built-in verb, one file each. The table of `help` is built from these
//! structs, so a verb's documentation lives beside its code.

mod alias;
mod bang;
mod cat;
mod cd;
mod chmod;
mod df;
mod echo;
mod exec;
mod get;
mod help;
mod lcd;
mod listing;
mod lls;
mod lmkdir;
mod ln;
mod lpwd;
mod lrename;
mod lrm;
mod ls;
mod md5;
mod mget;
mod mirror;
mod mkdir;
mod mput;
mod put;
mod pwd;
mod quit;
mod rename;
mod rm;
mod rmdir;
mod source;
mod stat;
mod type_;
mod unalias;

use crate::Command;

pub use source::read_lines as read_script;

/// The built-in verbs, as registered by [`crate::Registry::with_builtins`].
pub fn builtins() -> Vec<Box<dyn Command>> {
    vec![
        Box::new(help::Help),
        Box::new(echo::Echo),
        Box::new(exec::Exec),
        Box::new(get::Get),
        Box::new(put::Put),
        Box::new(mget::Mget),
        Box::new(mput::Mput),
        Box::new(ls::Ls),
        Box::new(cd::Cd),
        Box::new(pwd::Pwd),
        Box::new(mkdir::Mkdir),
        Box::new(rm::Rm),
        Box::new(md5::Md5),
        Box::new(lcd::Lcd),
        Box::new(lpwd::Lpwd),
        Box::new(lls::Lls),
        Box::new(alias::Alias),
        Box::new(unalias::Unalias),
        Box::new(type_::Type),
        Box::new(source::Source),
        Box::new(quit::Quit("quit")),
        Box::new(quit::Quit("exit")),
        Box::new(quit::Quit("bye")),
        Box::new(rename::Rename("rename")),
        Box::new(rename::Rename("mv")),
        Box::new(chmod::Chmod),
        Box::new(rmdir::Rmdir),
        Box::new(ln::Ln),
        Box::new(stat::Stat),
        Box::new(df::Df),
        Box::new(cat::Cat),
        Box::new(bang::Bang),
        Box::new(lmkdir::Lmkdir),
        Box::new(lrm::Lrm),
        Box::new(lrename::Lrename),
        Box::new(mirror::Mirror),
    ]
}

#[cfg(test)]
mod tests {
    use crate::line::split_line;
    use crate::{args, Registry};

    /// Each example is one command of its own verb that its signature accepts,
    /// split as the shell splits it. (`tests/e2e/verb_examples.rs` runs them.)
    #[test]
    fn every_example_parses_with_its_signature() {
        let registry = Registry::with_builtins();
        for verb in registry.verbs.sorted() {
            let example = verb.example();
            let commands = split_line(example).unwrap();
            assert_eq!(commands.len(), 1, "{example}");
            let words = &commands[0].words;
            assert_eq!(words[0], verb.name(), "{example}");
            if let Err(e) = args::matches(verb, &words[1..]) {
                panic!("{}: example {example:?} does not parse: {e}", verb.name());
            }
        }
    }
}
