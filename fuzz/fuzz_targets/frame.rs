//! The frame decoder over arbitrary bytes, delivered in arbitrary pieces: it must
//! never panic, and its buffer must never grow past `MAX_PAYLOAD` whatever the
//! peer announces. Every frame it yields goes through both message decoders.
#![no_main]

use std::io::{self, Read};

use ftpsh_core::protocol::frame::{FrameReader, Header, ReadError};
use ftpsh_core::protocol::handshake;
use ftpsh_core::protocol::{Reply, Request, MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

/// Hands out the input in pieces whose sizes come from the input itself, with a
/// read timeout now and then, as a socket would.
struct Chopped<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    turn: usize,
}

impl Read for Chopped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = self
            .sizes
            .get(self.turn % self.sizes.len().max(1))
            .copied()
            .unwrap_or(0);
        self.turn += 1;
        if s == 0xff {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = (s as usize % 64 + 1).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    let _ = handshake::read_greeting(&mut &input[..]);
    // The first byte says how many of the next bytes steer the chopping.
    let (steer, data) = match input.split_first() {
        Some((&k, rest)) => rest.split_at((k as usize % 16).min(rest.len())),
        None => (&[][..], input),
    };
    let mut reader = Chopped {
        data,
        sizes: steer,
        turn: 0,
    };
    let mut frames = FrameReader::new();
    // Bounded: each round consumes input or hits a timeout, and timeouts are capped.
    for _ in 0..10_000 {
        match frames.read_header(&mut reader) {
            Ok(Header::Idle) => continue,
            Ok(Header::Frame { kind, len }) => {
                assert!(len <= MAX_PAYLOAD);
                match frames.read_payload(&mut reader, kind, len) {
                    Ok(frame) => {
                        assert_eq!(frame.payload.len(), len);
                        let _ = Request::decode(frame.kind, frame.payload);
                        let _ = Reply::decode(frame.kind, frame.payload);
                    }
                    Err(_) => break,
                }
            }
            Err(ReadError::Closed) | Err(_) => break,
        }
        assert!(
            frames.capacity() <= MAX_PAYLOAD,
            "buffer grew to {}",
            frames.capacity()
        );
    }
    assert!(frames.capacity() <= MAX_PAYLOAD);
});
