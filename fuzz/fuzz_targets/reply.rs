//! The reply parser (what a client reads from a server) over an arbitrary
//! (kind, payload): never a panic; what it accepts round-trips.
#![no_main]

use ftpsh_core::protocol::Reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&kind, payload)) = input.split_first() else {
        return;
    };
    if let Ok(reply) = Reply::decode(kind, payload) {
        let (k, bytes) = reply.encode();
        assert_eq!(k, kind);
        assert_eq!(
            Reply::decode(k, &bytes).expect("re-encoded reply decodes"),
            reply
        );
    }
});
