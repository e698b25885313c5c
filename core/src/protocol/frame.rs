//! Length-prefixed frames: `u8 kind, u32 length, payload`.
//!
//! [`FrameReader`] owns one buffer that is reused for every frame and never grows
//! past [`MAX_PAYLOAD`]: the announced length is checked before anything is
//! allocated, so memory per connection is bounded whatever the peer sends. The
//! buffer grows only as a payload's bytes arrive, so a header that announces a
//! megabyte costs a megabyte only once the peer has sent one.

use std::io::{self, Read, Write};

use super::ProtocolError;

/// Bytes of file or command output carried by one `Data`/`Stdout`/`Stderr` frame.
/// Large enough that per-frame costs vanish next to hashing, small enough that
/// progress and cancellation stay responsive.
pub const DATA_CHUNK: usize = 256 * 1024;

/// The largest payload a frame may announce. Anything larger is a protocol error
/// and closes the connection before a byte of it is buffered.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// Size of the frame header: kind byte and big-endian u32 length.
pub const HEADER_LEN: usize = 5;

/// What a payload's buffer first grows to before any of its bytes arrived: a
/// peer that sends headers and then nothing costs this much, not the length it
/// announced.
const FIRST_GROWTH: usize = 16 * 1024;

/// Writes one frame. The header and payload go out in one vectored write when the
/// kernel takes them, so small messages cost one system call.
pub fn write_frame<W: Write + ?Sized>(w: &mut W, kind: u8, payload: &[u8]) -> io::Result<()> {
    if payload.len() > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "message of {} bytes is over the protocol limit of {MAX_PAYLOAD}",
                payload.len()
            ),
        ));
    }
    let mut header = [0u8; HEADER_LEN];
    header[0] = kind;
    header[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    let mut bufs = [io::IoSlice::new(&header), io::IoSlice::new(payload)];
    let mut slices: &mut [io::IoSlice] = &mut bufs;
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Most frames [`write_frames`] writes in one call.
const FRAMES_AT_ONCE: usize = 8;

/// Writes `payload` as consecutive frames of `kind` of at most `chunk` bytes
/// each (at most [`MAX_PAYLOAD`]), with one vectored write for up to eight of
/// them: the server reads a file in buffers of several data chunks and sends
/// each buffer with one system call instead of one per chunk. The bytes on
/// the wire are those of [`write_frame`] called for each chunk in turn.
pub fn write_frames<W: Write + ?Sized>(
    w: &mut W,
    kind: u8,
    payload: &[u8],
    chunk: usize,
) -> io::Result<()> {
    assert!(
        chunk > 0 && chunk <= MAX_PAYLOAD,
        "frame payload over the limit"
    );
    let mut rest = payload;
    while !rest.is_empty() {
        let mut headers = [[0u8; HEADER_LEN]; FRAMES_AT_ONCE];
        let mut parts = Vec::with_capacity(2 * FRAMES_AT_ONCE);
        let mut batch = rest;
        for header in headers.iter_mut() {
            if batch.is_empty() {
                break;
            }
            let (this, next) = batch.split_at(chunk.min(batch.len()));
            header[0] = kind;
            header[1..].copy_from_slice(&(this.len() as u32).to_be_bytes());
            parts.push((&header[..], this));
            batch = next;
        }
        let mut bufs: Vec<io::IoSlice> = parts
            .iter()
            .flat_map(|&(h, p)| [io::IoSlice::new(h), io::IoSlice::new(p)])
            .collect();
        let mut slices: &mut [io::IoSlice] = &mut bufs;
        while !slices.is_empty() {
            match w.write_vectored(slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        rest = batch;
    }
    Ok(())
}

/// Writes only the header of a frame whose `len` payload bytes the caller sends
/// next by other means (the server's `sendfile` path).
pub fn write_header<W: Write + ?Sized>(w: &mut W, kind: u8, len: usize) -> io::Result<()> {
    assert!(len <= MAX_PAYLOAD, "frame payload over the limit");
    let mut header = [0u8; HEADER_LEN];
    header[0] = kind;
    header[1..].copy_from_slice(&(len as u32).to_be_bytes());
    w.write_all(&header)
}

/// What went wrong while reading a frame.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed the connection cleanly between two frames.
    #[error("connection closed")]
    Closed,
    /// The peer sent something that is not a valid frame.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The socket failed, timed out, or closed in the middle of a frame.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// True for the error kinds a socket read timeout produces.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One decoded frame, borrowing the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: u8,
    pub payload: &'a [u8],
}

/// Reads frames into a reused, bounded buffer.
pub struct FrameReader {
    buf: Vec<u8>,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

/// Outcome of waiting for a frame's header.
pub enum Header {
    Frame {
        kind: u8,
        len: usize,
    },
    /// A read timeout struck before the first byte: the peer is idle, not stalled.
    Idle,
}

impl FrameReader {
    pub fn new() -> Self {
        Self { buf: Vec::new() }
    }

    /// Bytes currently allocated for frame payloads; never more than [`MAX_PAYLOAD`].
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Reads one frame. A read timeout before the first header byte is reported as
    /// an `Io` error of kind `WouldBlock`/`TimedOut` (see [`is_timeout`]); use
    /// [`FrameReader::read_header`] to tell idleness from a stall.
    pub fn read<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<Frame<'_>, ReadError> {
        match self.read_header(r)? {
            Header::Frame { kind, len } => self.read_payload(r, kind, len),
            Header::Idle => Err(ReadError::Io(io::ErrorKind::TimedOut.into())),
        }
    }

    /// Waits for the next header. Once its first byte has arrived, the rest must
    /// follow: a timeout after that point is a stall and an error.
    pub fn read_header<R: Read + ?Sized>(&mut self, r: &mut R) -> Result<Header, ReadError> {
        let mut header = [0u8; HEADER_LEN];
        loop {
            match r.read(&mut header[..1]) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Ok(Header::Idle),
                Err(e) => return Err(e.into()),
            }
        }
        read_exact(r, &mut header[1..])?;
        let len = u32::from_be_bytes(header[1..].try_into().unwrap()) as u64;
        if len > MAX_PAYLOAD as u64 {
            return Err(ProtocolError::Oversize(len).into());
        }
        Ok(Header::Frame {
            kind: header[0],
            len: len as usize,
        })
    }

    /// Reads the payload announced by a header (`len` already checked).
    pub fn read_payload<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        kind: u8,
        len: usize,
    ) -> Result<Frame<'_>, ReadError> {
        debug_assert!(len <= MAX_PAYLOAD);
        let mut filled = 0;
        while filled < len {
            if filled == self.buf.len() {
                // Doubling what has arrived keeps the copying linear; exact
                // growth because `resize` alone may double the capacity, past
                // the limit.
                let want = len.min((filled * 2).max(FIRST_GROWTH));
                self.buf.reserve_exact(want - self.buf.len());
                self.buf.resize(want, 0);
            }
            let end = len.min(self.buf.len());
            match r.read(&mut self.buf[filled..end]) {
                Ok(0) => return Err(closed_inside_a_frame()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        Ok(Frame {
            kind,
            payload: &self.buf[..len],
        })
    }
}

/// Reads the payload announced by a header (`len` already checked) into `buf`,
/// a buffer of the caller's that is reused from frame to frame: for upload
/// data, which then travels on owned, without a copy out of the reader's
/// buffer. Only the part beyond `buf`'s current length is zeroed first, so a
/// recycled buffer of a chunk's size costs nothing but the read.
pub fn read_payload_into<R: Read + ?Sized>(
    r: &mut R,
    len: usize,
    buf: &mut Vec<u8>,
) -> Result<(), ReadError> {
    debug_assert!(len <= MAX_PAYLOAD);
    if buf.len() < len {
        buf.resize(len, 0);
    } else {
        buf.truncate(len);
    }
    read_exact(r, buf)
}

/// What one read fetches ahead of the frame being decoded, by default
/// ([`ReadAhead::new`]): small requests and replies (tens of bytes) arrive
/// whole in one read.
pub const READ_AHEAD: usize = 8 * 1024;

/// Bytes read from a stream ahead of what the frame decoder asked for, kept
/// from one frame to the next. Without it a small frame costs three system
/// calls (the header's first byte, the rest of the header, the payload); with
/// it, one. A read of at least the buffer's size with nothing buffered goes
/// straight to the stream, so file data is not copied twice.
///
/// Whoever reads a connection must read it through the same `ReadAhead` from
/// then on: bytes it holds were taken off the socket and are the next ones.
pub struct ReadAhead {
    /// Empty until the first read that goes through it.
    buf: Vec<u8>,
    capacity: usize,
    pos: usize,
    end: usize,
}

impl Default for ReadAhead {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadAhead {
    /// [`READ_AHEAD`] bytes.
    pub fn new() -> Self {
        Self::with_capacity(READ_AHEAD)
    }

    /// `capacity` bytes (at least one), allocated by the first read.
    pub fn with_capacity(capacity: usize) -> Self {
        ReadAhead {
            buf: Vec::new(),
            capacity: capacity.max(1),
            pos: 0,
            end: 0,
        }
    }

    /// Bytes taken off the stream and not yet read through [`ReadAhead::on`].
    pub fn buffered(&self) -> usize {
        self.end - self.pos
    }

    /// Forgets what is buffered (the connection it came from is gone).
    pub fn clear(&mut self) {
        self.pos = 0;
        self.end = 0;
    }

    /// `inner` read through this buffer.
    pub fn on<'a, R: Read + ?Sized>(&'a mut self, inner: &'a mut R) -> Ahead<'a, R> {
        Ahead { ahead: self, inner }
    }
}

/// A stream read through a [`ReadAhead`].
pub struct Ahead<'a, R: ?Sized> {
    ahead: &'a mut ReadAhead,
    inner: &'a mut R,
}

impl<R: Read + ?Sized> Read for Ahead<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let a = &mut *self.ahead;
        if a.pos == a.end {
            if out.len() >= a.capacity {
                return self.inner.read(out);
            }
            if a.buf.is_empty() {
                a.buf = vec![0; a.capacity];
            }
            let n = self.inner.read(&mut a.buf)?;
            a.pos = 0;
            a.end = n;
        }
        let n = (a.end - a.pos).min(out.len());
        out[..n].copy_from_slice(&a.buf[a.pos..a.pos + n]);
        a.pos += n;
        Ok(n)
    }
}

/// Reads a payload announced by a header into `buf`, exactly `buf.len()`
/// bytes (the announced length, already checked): for download data, read
/// straight into the receiver's own buffer instead of through the reader's.
pub fn read_payload_to<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<(), ReadError> {
    debug_assert!(buf.len() <= MAX_PAYLOAD);
    read_exact(r, buf)
}

/// `read_exact` that reports a close in the middle of a frame as such.
fn read_exact<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<(), ReadError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            closed_inside_a_frame()
        } else {
            ReadError::Io(e)
        }
    })
}

fn closed_inside_a_frame() -> ReadError {
    ReadError::Protocol(ProtocolError::Truncated("connection closed inside a frame"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, kind, payload).unwrap();
        out
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut wire = frame_bytes(1, b"hello");
        wire.extend(frame_bytes(2, b""));
        wire.extend(frame_bytes(3, &vec![9u8; MAX_PAYLOAD]));
        let mut r = &wire[..];
        let mut fr = FrameReader::new();
        assert_eq!(
            fr.read(&mut r).unwrap(),
            Frame {
                kind: 1,
                payload: b"hello"
            }
        );
        assert_eq!(
            fr.read(&mut r).unwrap(),
            Frame {
                kind: 2,
                payload: b""
            }
        );
        let f = fr.read(&mut r).unwrap();
        assert_eq!((f.kind, f.payload.len()), (3, MAX_PAYLOAD));
        assert!(matches!(fr.read(&mut r), Err(ReadError::Closed)));
    }

    /// A reader that hands out at most `step` bytes per read and counts reads.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        reads: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_ahead_takes_small_frames_in_one_read_and_keeps_the_rest() {
        let mut wire = frame_bytes(1, b"hello");
        wire.extend(frame_bytes(2, b"world!"));
        let big: Vec<u8> = (0..3 * READ_AHEAD).map(|i| i as u8).collect();
        wire.extend(frame_bytes(3, &big));
        let mut inner = Trickle {
            data: &wire,
            step: usize::MAX,
            reads: 0,
        };
        let mut ahead = ReadAhead::new();
        let mut fr = FrameReader::new();
        let f = fr.read(&mut ahead.on(&mut inner)).unwrap();
        assert_eq!((f.kind, f.payload), (1, &b"hello"[..]));
        assert_eq!(inner.reads, 1, "one read for a small frame");
        assert!(ahead.buffered() > 0, "the next frame is buffered");
        let f = fr.read(&mut ahead.on(&mut inner)).unwrap();
        assert_eq!((f.kind, f.payload), (2, &b"world!"[..]));
        assert_eq!(inner.reads, 1, "the second frame came from the buffer");
        let f = fr.read(&mut ahead.on(&mut inner)).unwrap();
        assert_eq!((f.kind, f.payload), (3, &big[..]));
        assert!(matches!(
            fr.read(&mut ahead.on(&mut inner)),
            Err(ReadError::Closed)
        ));
        assert_eq!(ahead.buffered(), 0);
    }

    #[test]
    fn read_ahead_keeps_frames_whole_however_the_bytes_trickle() {
        let mut wire = Vec::new();
        for i in 0..50u8 {
            wire.extend(frame_bytes(i, &vec![i; i as usize * 97]));
        }
        for (step, capacity) in [1, 2, 3, 7, 64, 5000]
            .into_iter()
            .zip([1, 4, 5, 100, 8192, 6])
        {
            let mut inner = Trickle {
                data: &wire,
                step,
                reads: 0,
            };
            let mut ahead = ReadAhead::with_capacity(capacity);
            let mut fr = FrameReader::new();
            for i in 0..50u8 {
                let f = fr.read(&mut ahead.on(&mut inner)).unwrap();
                assert_eq!(f.kind, i, "step {step}");
                assert_eq!(f.payload, &vec![i; i as usize * 97][..], "step {step}");
            }
            assert!(matches!(
                fr.read(&mut ahead.on(&mut inner)),
                Err(ReadError::Closed)
            ));
        }
    }

    /// Frames written in batches are those written one by one, for payloads
    /// of no chunks, part of one, exactly some, and past eight.
    #[test]
    fn batched_frames_are_the_single_frames() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        for len in [0, 1, 999, 1000, 1001, 8000, 8001, 9500, 100_000] {
            let mut one_by_one = Vec::new();
            for chunk in data[..len].chunks(1000) {
                write_frame(&mut one_by_one, 7, chunk).unwrap();
            }
            let mut batched = Vec::new();
            write_frames(&mut batched, 7, &data[..len], 1000).unwrap();
            assert!(batched == one_by_one, "length {len}");
        }
    }

    #[test]
    fn oversize_length_is_refused_before_allocating() {
        let mut wire = vec![1u8];
        wire.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut fr = FrameReader::new();
        let err = fr.read(&mut &wire[..]).unwrap_err();
        assert!(
            matches!(err, ReadError::Protocol(ProtocolError::Oversize(n)) if n == u32::MAX as u64)
        );
        assert_eq!(
            fr.buf.capacity(),
            0,
            "nothing may be allocated for a refused frame"
        );
    }

    #[test]
    fn a_payload_buffer_grows_only_with_the_bytes_that_arrived() {
        let mut wire = vec![1u8];
        wire.extend_from_slice(&(MAX_PAYLOAD as u32).to_be_bytes());
        wire.extend_from_slice(b"abc");
        let mut fr = FrameReader::new();
        let err = fr.read(&mut &wire[..]).unwrap_err();
        assert!(matches!(
            err,
            ReadError::Protocol(ProtocolError::Truncated(_))
        ));
        assert!(fr.capacity() <= FIRST_GROWTH, "{}", fr.capacity());

        // Arriving in full, the same frame is read whole into an exact buffer.
        let payload: Vec<u8> = (0..MAX_PAYLOAD).map(|i| i as u8).collect();
        let wire = frame_bytes(1, &payload);
        let f = fr.read(&mut &wire[..]).unwrap();
        assert_eq!(f.payload, &payload[..]);
        assert!(fr.capacity() <= MAX_PAYLOAD);
    }

    #[test]
    fn one_past_the_limit_is_refused() {
        let mut wire = vec![1u8];
        wire.extend_from_slice(&(MAX_PAYLOAD as u32 + 1).to_be_bytes());
        let err = FrameReader::new().read(&mut &wire[..]).unwrap_err();
        assert!(matches!(
            err,
            ReadError::Protocol(ProtocolError::Oversize(_))
        ));
    }

    #[test]
    fn truncated_header_and_payload_are_errors() {
        let wire = frame_bytes(1, b"hello");
        for cut in 1..wire.len() {
            let err = FrameReader::new().read(&mut &wire[..cut]).unwrap_err();
            assert!(
                matches!(err, ReadError::Protocol(ProtocolError::Truncated(_))),
                "cut at {cut}: {err:?}"
            );
        }
        assert!(matches!(
            FrameReader::new().read(&mut &wire[..0]),
            Err(ReadError::Closed)
        ));
    }
}
