//! Randomized tests of the wire decoders, in the normal suite (the coverage-guided
//! fuzz targets live under `fuzz/`). Arbitrary and mutated bytes go through the
//! frame reader, the greeting and the message decoders: nothing may panic, and the
//! frame reader's buffer may never grow past `MAX_PAYLOAD`, whatever the peer
//! announces and however the bytes are cut into reads.
//!
//! A fixed-seed xorshift generator keeps every run identical, so a failure
//! reproduces; set `FTPSH_FUZZ_SEED` to explore other seeds.

use std::io::{self, Read};

use ftpsh_core::protocol::frame::{write_frame, FrameReader, Header, ReadError};
use ftpsh_core::protocol::handshake;
use ftpsh_core::protocol::{Entry, EntryKind, Reply, Request, MAX_PAYLOAD};

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
    fn string(&mut self, max: usize) -> String {
        let len = self.below(max as u64 + 1) as usize;
        (0..len)
            .map(|_| match self.below(4) {
                0 => 'é',
                1 => '/',
                _ => (b'a' + self.below(26) as u8) as char,
            })
            .collect()
    }
}

fn base_seed() -> u64 {
    std::env::var("FTPSH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f7b5)
}

/// A well-formed request of a random variant.
fn random_request(r: &mut Rng) -> Request {
    let p = r.string(40);
    match r.below(18) {
        0 => Request::Auth { token: p },
        1 => Request::Echo { text: p },
        2 => Request::Exec { command: p },
        3 => Request::List { path: p },
        4 => Request::Stat { path: p },
        5 => Request::Cd { path: p },
        6 => Request::Pwd,
        7 => Request::Mkdir {
            path: p,
            parents: r.chance(2),
        },
        8 => Request::Remove {
            path: p,
            recursive: r.chance(2),
        },
        9 => Request::Md5 { path: p },
        10 => Request::Glob { pattern: p },
        11 => Request::Walk {
            path: p,
            follow: r.chance(2),
        },
        12 => Request::Get {
            path: p,
            offset: r.next(),
        },
        13 => Request::Put {
            path: p,
            size: r.next(),
            resume: r.chance(2),
            wait: r.chance(2),
            mode: r.next() as u32,
            mtime: r.next() as i64,
            keep: r.chance(2),
            more: r.chance(2),
        },
        14 => {
            let n = r.below(300) as usize;
            Request::Data(r.bytes(n))
        }
        15 => Request::PutEnd {
            md5: r.bytes(16).try_into().unwrap(),
        },
        _ => Request::Cancel,
    }
}

/// A well-formed reply of a random variant, encoded.
fn random_reply(r: &mut Rng) -> (u8, Vec<u8>) {
    let text = r.string(40);
    let data = {
        let n = r.below(300) as usize;
        r.bytes(n)
    };
    let entries = (0..r.below(5))
        .map(|_| Entry {
            name: r.string(20),
            kind: [
                EntryKind::File,
                EntryKind::Dir,
                EntryKind::Symlink,
                EntryKind::Other,
            ][r.below(4) as usize],
            size: r.next(),
            mtime: r.next() as i64,
            target: r.string(8),
            mode: r.next() as u32,
        })
        .collect();
    let reply = match r.below(14) {
        0 => Reply::Ok,
        1 => Reply::Error { message: &text },
        2 => Reply::Text { text: &text },
        3 => Reply::Entries(entries),
        4 => Reply::Stdout(&data),
        5 => Reply::Stderr(&data),
        6 => Reply::Exit {
            code: r.next() as i32,
            signal: r.chance(2),
        },
        7 => Reply::FileStart {
            size: r.next(),
            offset: r.next(),
            mode: r.next() as u32,
            mtime: r.next() as i64,
        },
        8 => Reply::Data(&data),
        9 => Reply::FileEnd { md5: [7; 16] },
        10 => Reply::Ready { offset: r.next() },
        _ => Reply::Cancelled,
    };
    reply.encode()
}

/// Flips, drops, inserts or overwrites a few bytes.
fn mutate(r: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..=r.below(4) {
        let at = r.below(bytes.len() as u64 + 1) as usize;
        match r.below(5) {
            0 if at < bytes.len() => bytes[at] ^= 1 << r.below(8),
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, r.next() as u8),
            3 if at + 4 <= bytes.len() => {
                // A length field gone wild: all ones, huge, or just past the end.
                let v: u32 = match r.below(3) {
                    0 => u32::MAX,
                    1 => 1 << r.below(32),
                    _ => (bytes.len() - at) as u32 + r.below(3) as u32,
                };
                bytes[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            _ => bytes.truncate(at),
        }
    }
}

/// Checks one (kind, payload) against both decoders: no panic, and whatever is
/// accepted round-trips.
fn check_decoders(kind: u8, payload: &[u8]) {
    if let Ok(req) = Request::decode(kind, payload) {
        let (k, bytes) = req.encode();
        assert_eq!(k, kind);
        assert_eq!(Request::decode(k, &bytes).unwrap(), req, "{payload:02x?}");
    }
    if let Ok(rep) = Reply::decode(kind, payload) {
        let (k, bytes) = rep.encode();
        assert_eq!(k, kind);
        assert_eq!(Reply::decode(k, &bytes).unwrap(), rep, "{payload:02x?}");
    }
}

#[test]
fn message_decoders_never_panic_on_arbitrary_payloads() {
    let mut r = Rng::new(base_seed());
    for _ in 0..20_000 {
        let kind = r.next() as u8;
        let len = match r.below(4) {
            0 => r.below(8),
            1 => r.below(64),
            _ => r.below(600),
        } as usize;
        let payload = r.bytes(len);
        check_decoders(kind, &payload);
    }
}

#[test]
fn mutated_requests_and_replies_never_panic() {
    let mut r = Rng::new(base_seed() ^ 1);
    for i in 0..20_000 {
        let (kind, mut payload) = if i % 2 == 0 {
            random_request(&mut r).encode()
        } else {
            random_reply(&mut r)
        };
        // Unmutated, they must decode to themselves.
        check_decoders(kind, &payload);
        mutate(&mut r, &mut payload);
        let kind = if r.chance(10) { r.next() as u8 } else { kind };
        check_decoders(kind, &payload);
    }
}

#[test]
fn every_valid_request_round_trips() {
    let mut r = Rng::new(base_seed() ^ 2);
    for _ in 0..5_000 {
        let req = random_request(&mut r);
        let (k, bytes) = req.encode();
        assert_eq!(Request::decode(k, &bytes).unwrap(), req);
    }
}

/// Serves a byte stream in reads of random sizes, with a read timeout now and
/// then, as a socket does.
struct Choppy<'a> {
    data: &'a [u8],
    rng: Rng,
    timeouts: bool,
}

impl Read for Choppy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.timeouts && self.rng.chance(8) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let max = match self.rng.below(3) {
            0 => 1,
            1 => 1 + self.rng.below(16) as usize,
            _ => 1 + self.rng.below(1 << 16) as usize,
        };
        let n = max.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads frames until the stream ends or breaks, checking the reader's bound
/// after every step. Returns the number of frames read.
fn drain(frames: &mut FrameReader, reader: &mut dyn Read) -> usize {
    let mut count = 0;
    for _ in 0..100_000 {
        let step = match frames.read_header(reader) {
            Ok(Header::Idle) => Ok(()),
            Ok(Header::Frame { kind, len }) => {
                assert!(len <= MAX_PAYLOAD, "header let {len} bytes through");
                frames.read_payload(reader, kind, len).map(|f| {
                    assert_eq!(f.payload.len(), len);
                    check_decoders(f.kind, f.payload);
                    count += 1;
                })
            }
            Err(e) => Err(e),
        };
        assert!(
            frames.capacity() <= MAX_PAYLOAD,
            "frame buffer grew to {} bytes",
            frames.capacity()
        );
        match step {
            Ok(()) => {}
            Err(ReadError::Closed | ReadError::Protocol(_) | ReadError::Io(_)) => return count,
        }
    }
    panic!("the reader did not finish a finite stream");
}

#[test]
fn frame_reader_survives_arbitrary_bytes() {
    let mut r = Rng::new(base_seed() ^ 3);
    for _ in 0..3_000 {
        let len = r.below(2_000) as usize;
        let data = r.bytes(len);
        let mut frames = FrameReader::new();
        let timeouts = r.chance(2);
        drain(
            &mut frames,
            &mut Choppy {
                data: &data,
                rng: Rng::new(r.next()),
                timeouts,
            },
        );
        let _ = handshake::read_greeting(&mut &data[..]);
    }
}

#[test]
fn frame_reader_survives_mutated_frame_streams() {
    let mut r = Rng::new(base_seed() ^ 4);
    for _ in 0..2_000 {
        let mut wire = Vec::new();
        let n_frames = r.below(12) as usize;
        for _ in 0..n_frames {
            let (kind, payload) = if r.chance(2) {
                random_request(&mut r).encode()
            } else {
                random_reply(&mut r)
            };
            write_frame(&mut wire, kind, &payload).unwrap();
        }
        let whole = drain(
            &mut FrameReader::new(),
            &mut Choppy {
                data: &wire,
                rng: Rng::new(r.next()),
                timeouts: false,
            },
        );
        assert_eq!(whole, n_frames, "a clean stream must yield every frame");
        mutate(&mut r, &mut wire);
        drain(
            &mut FrameReader::new(),
            &mut Choppy {
                data: &wire,
                rng: Rng::new(r.next()),
                timeouts: r.chance(3),
            },
        );
    }
}

/// Announced lengths around and far beyond the limit, with payloads of growing
/// sizes through one reader: the buffer stays within `MAX_PAYLOAD` (a growing
/// `Vec` doubles its capacity unless told otherwise).
#[test]
fn frame_buffer_never_exceeds_the_limit() {
    let mut r = Rng::new(base_seed() ^ 5);
    let sizes = [
        0,
        1,
        1000,
        MAX_PAYLOAD / 2 + 1,
        MAX_PAYLOAD * 3 / 4,
        MAX_PAYLOAD - 1,
        MAX_PAYLOAD,
    ];
    let mut wire = Vec::new();
    for &n in &sizes {
        write_frame(&mut wire, 0x0f, &vec![0xab; n]).unwrap();
    }
    let mut frames = FrameReader::new();
    let read = drain(
        &mut frames,
        &mut Choppy {
            data: &wire,
            rng: Rng::new(r.next()),
            timeouts: false,
        },
    );
    assert_eq!(read, sizes.len());
    assert!(frames.capacity() <= MAX_PAYLOAD);

    // Then headers that announce too much: refused, nothing more allocated.
    for announced in [
        MAX_PAYLOAD as u32 + 1,
        u32::MAX,
        1 << 31,
        (MAX_PAYLOAD as u32) * 2,
    ] {
        let mut bad = vec![r.next() as u8];
        bad.extend_from_slice(&announced.to_be_bytes());
        bad.extend(r.bytes(100));
        let mut fresh = FrameReader::new();
        let err = fresh.read(&mut &bad[..]).unwrap_err();
        assert!(matches!(err, ReadError::Protocol(_)), "{err:?}");
        assert_eq!(fresh.capacity(), 0, "allocated for a refused frame");
        let before = frames.capacity();
        assert!(frames.read(&mut &bad[..]).is_err());
        assert_eq!(frames.capacity(), before);
    }
}
