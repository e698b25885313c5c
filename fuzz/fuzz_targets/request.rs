//! The request parser over an arbitrary (kind, payload): it must never panic, and
//! whatever it accepts must encode back to something that decodes to the same
//! request.
#![no_main]

use ftpsh_core::protocol::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&kind, payload)) = input.split_first() else {
        return;
    };
    if let Ok(request) = Request::decode(kind, payload) {
        let (k, bytes) = request.encode();
        assert_eq!(k, kind);
        assert_eq!(
            Request::decode(k, &bytes).expect("re-encoded request decodes"),
            request
        );
    }
});
