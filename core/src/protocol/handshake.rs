//! The bytes that open a connection: magic and version both ways, then the token.

use std::io::{self, Read, Write};

use super::ProtocolError;

/// The first bytes each side sends.
pub const MAGIC: &[u8; 5] = b"FTPSH";
/// The protocol version this build speaks. Version 2 added what faithful
/// copies need: each entry's link target, the mode and time of a download's
/// `FileStart` and of an upload's `Put`, `Walk { follow }`, `Link` and `Attrs`.
/// Version 3 added `Put { more }`: a batch of uploads installed together.
pub const VERSION: u16 = 3;

/// What a client says when the server speaks an older protocol.
pub fn server_too_old(theirs: u16) -> String {
    format!(
        "the server speaks protocol {theirs}; upgrade ftpsh-server to protocol {VERSION} (ftpsh {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// What a server answers a client that speaks another protocol (an old
/// client shows this `Error` as the reason it could not log in).
pub fn client_mismatch(theirs: u16) -> String {
    if theirs < VERSION {
        format!(
            "this client speaks protocol {theirs}; ftpsh-server speaks protocol {VERSION}: upgrade ftpsh to {}",
            env!("CARGO_PKG_VERSION")
        )
    } else {
        format!(
            "this client speaks protocol {theirs}; ftpsh-server speaks protocol {VERSION}: upgrade ftpsh-server"
        )
    }
}
/// Length of the greeting: magic and big-endian u16 version.
pub const GREETING_LEN: usize = 7;

pub fn greeting() -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[..5].copy_from_slice(MAGIC);
    g[5..].copy_from_slice(&VERSION.to_be_bytes());
    g
}

pub fn send_greeting<W: Write + ?Sized>(w: &mut W) -> io::Result<()> {
    w.write_all(&greeting())?;
    w.flush()
}

/// Reads the peer's greeting and returns its version. Bad magic is an error;
/// a different version is returned for the caller to judge.
pub fn read_greeting<R: Read + ?Sized>(r: &mut R) -> Result<u16, HandshakeError> {
    let mut g = [0u8; MAGIC.len()];
    r.read_exact(&mut g)?;
    if &g != MAGIC {
        return Err(ProtocolError::BadMagic.into());
    }
    read_version(r)
}

/// The rest of a greeting whose magic was already read.
pub fn read_version<R: Read + ?Sized>(r: &mut R) -> Result<u16, HandshakeError> {
    let mut v = [0u8; 2];
    r.read_exact(&mut v)?;
    Ok(u16::from_be_bytes(v))
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Compares two tokens in time that depends only on their lengths, so that a
/// wrong guess does not reveal how many leading bytes were right.
pub fn tokens_match(expected: &[u8], given: &[u8]) -> bool {
    let mut diff = (expected.len() ^ given.len()) as u8 | u8::from(expected.len() != given.len());
    for (i, e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= e ^ g;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_round_trips_and_bad_magic_is_refused() {
        assert_eq!(read_greeting(&mut &greeting()[..]).unwrap(), VERSION);
        assert!(matches!(
            read_greeting(&mut &b"GET / HTTP/1.1"[..]),
            Err(HandshakeError::Protocol(ProtocolError::BadMagic))
        ));
        assert!(matches!(
            read_greeting(&mut &b"FTP"[..]),
            Err(HandshakeError::Io(_))
        ));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(tokens_match(b"abc", b"abc"));
        assert!(!tokens_match(b"abc", b"abd"));
        assert!(!tokens_match(b"abc", b"ab"));
        assert!(!tokens_match(b"abc", b"abcd"));
        assert!(!tokens_match(b"", b"x"));
        assert!(tokens_match(b"", b""));
    }
}
