//! MD5: ours in inline assembly on x86-64 ([`super::x86`], about 5 % faster
//! than OpenSSL's: it takes one instruction off the dependency chain of 16 of
//! the 64 steps), else OpenSSL's when the machine has it at run time, md-5's
//! portable Rust otherwise.
//!
//! OpenSSL's MD5 (assembly chosen for the CPU) is 15-20 % faster than the
//! `md-5` crate, and MD5 bounds a first download. Linking the `openssl` crate
//! needs libssl-dev and pkg-config at *build* time, so instead libcrypto is
//! opened with `dlopen` the first time an [`Md5`] is made, once per process:
//! `libcrypto.so.3`, then `libcrypto.so.1.1`, then `libcrypto.so` (the first
//! that passes every check below wins; the load costs 1-2 ms, once). Building
//! needs only the Rust toolchain.
//!
//! Only the EVP API is used (`EVP_MD_CTX_new`, `EVP_MD_CTX_free`,
//! `EVP_DigestInit_ex`, `EVP_DigestUpdate`, `EVP_DigestFinal_ex`, and the MD5
//! method from `EVP_MD_fetch` (OpenSSL 3) or `EVP_md5` (1.1)), so nothing
//! depends on the layout of OpenSSL's structs. A library is used only if every
//! symbol resolves and it hashes `"abc"` correctly; a FIPS-only configuration,
//! which refuses MD5, fails that check. Anything else means md-5.
//!
//! `FTPSH_MD5=rust` in the environment (read once, at the first [`Md5`])
//! forces md-5; `FTPSH_MD5=openssl` skips the x86-64 one (OpenSSL if usable,
//! else md-5: for comparing them in the benchmark). Any other value, or none,
//! means the fastest available; there is no way to *require* one: callers
//! that care (the benchmark) check [`Md5::implementation`].
//!
//! A loaded libcrypto is never unloaded: OpenSSL registers exit handlers
//! inside itself once any of its functions has run.

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::ptr::NonNull;
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use super::x86::Md5X86;
pub use crate::entry::Digest;

/// An MD5 computation.
pub struct Md5(Backend);

enum Backend {
    #[cfg(target_arch = "x86_64")]
    X86(Md5X86),
    OpenSsl(EvpCtx<'static>),
    Rust(::md5::Md5),
}

impl Md5 {
    pub fn new() -> Self {
        match chosen() {
            #[cfg(target_arch = "x86_64")]
            Choice::X86 => Md5(Backend::X86(Md5X86::new())),
            Choice::OpenSsl(evp) => match EvpCtx::new(evp) {
                Some(ctx) => Md5(Backend::OpenSsl(ctx)),
                None => Self::portable(),
            },
            Choice::Rust => Self::portable(),
        }
    }

    /// md-5, whatever the machine has.
    fn portable() -> Self {
        Md5(Backend::Rust(<::md5::Md5 as ::md5::Digest>::new()))
    }

    /// The MD5 of `data`.
    pub fn digest(data: &[u8]) -> Digest {
        let mut h = Self::new();
        h.update(data);
        h.finalize()
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            #[cfg(target_arch = "x86_64")]
            Backend::X86(h) => h.update(data),
            Backend::OpenSsl(ctx) => ctx.update(data),
            Backend::Rust(h) => ::md5::Digest::update(h, data),
        }
    }

    pub fn finalize(self) -> Digest {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Backend::X86(h) => h.finalize(),
            Backend::OpenSsl(ctx) => ctx.finish(),
            Backend::Rust(h) => ::md5::Digest::finalize(h).into(),
        }
    }

    /// Which implementation [`Md5::new`] picks in this process, for
    /// `--version` and the benchmark's report.
    pub fn implementation() -> &'static str {
        match chosen() {
            #[cfg(target_arch = "x86_64")]
            Choice::X86 => X86_NAME,
            Choice::OpenSsl(api) => api.name,
            Choice::Rust => "md-5 (portable Rust)",
        }
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------
// libcrypto, loaded at run time

/// Library names tried in order, with what [`Md5::implementation`] says.
const CANDIDATES: [(&str, &str); 3] = [
    (
        "libcrypto.so.3",
        "OpenSSL (libcrypto.so.3, loaded at run time)",
    ),
    (
        "libcrypto.so.1.1",
        "OpenSSL (libcrypto.so.1.1, loaded at run time)",
    ),
    ("libcrypto.so", "OpenSSL (libcrypto.so, loaded at run time)"),
];

/// `MD5("abc")`, RFC 1321 appendix A.5.
const ABC: Digest = [
    0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f, 0x72,
];

/// OpenSSL's `EVP_MAX_MD_SIZE`: what `EVP_DigestFinal_ex` may write.
const EVP_MAX_MD_SIZE: usize = 64;

/// Opaque OpenSSL types, only ever behind pointers.
#[repr(C)]
struct EvpMdCtx {
    _opaque: [u8; 0],
}
#[repr(C)]
struct EvpMd {
    _opaque: [u8; 0],
}

type CtxNewFn = unsafe extern "C" fn() -> *mut EvpMdCtx;
type CtxFreeFn = unsafe extern "C" fn(*mut EvpMdCtx);
type Md5Fn = unsafe extern "C" fn() -> *const EvpMd;
type FetchFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> *mut EvpMd;
type InitFn = unsafe extern "C" fn(*mut EvpMdCtx, *const EvpMd, *mut c_void) -> c_int;
type UpdateFn = unsafe extern "C" fn(*mut EvpMdCtx, *const c_void, usize) -> c_int;
type FinalFn = unsafe extern "C" fn(*mut EvpMdCtx, *mut u8, *mut c_uint) -> c_int;
type ClearFn = unsafe extern "C" fn();

/// The resolved EVP entry points of a libcrypto that passed the checks.
struct Evp {
    name: &'static str,
    md: *const EvpMd,
    ctx_new: CtxNewFn,
    ctx_free: CtxFreeFn,
    init: InitFn,
    update: UpdateFn,
    finish: FinalFn,
}

// SAFETY: the function pointers point into a library that is never unloaded,
// and `md` is an immutable MD5 method object that lives as long as the process
// (EVP_md5's static, or an EVP_MD_fetch result that is never freed); OpenSSL
// documents both as safe to use from any thread at once.
unsafe impl Send for Evp {}
// SAFETY: as above; `Evp` has no interior mutability.
unsafe impl Sync for Evp {}

/// What [`Md5::implementation`] says of the x86-64 one.
#[cfg(target_arch = "x86_64")]
const X86_NAME: &str = "ftpsh's x86-64 assembly";

/// The implementation this process uses.
#[derive(Clone, Copy)]
enum Choice {
    #[cfg(target_arch = "x86_64")]
    X86,
    OpenSsl(&'static Evp),
    Rust,
}

/// The implementation to use in this process, after `FTPSH_MD5`.
fn chosen() -> Choice {
    static CHOSEN: OnceLock<Choice> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let var = std::env::var_os("FTPSH_MD5");
        if forces_rust(var.as_deref()) {
            return Choice::Rust;
        }
        #[cfg(target_arch = "x86_64")]
        if !forces_openssl(var.as_deref()) {
            return Choice::X86;
        }
        libcrypto().map_or(Choice::Rust, Choice::OpenSsl)
    })
}

fn forces_rust(var: Option<&std::ffi::OsStr>) -> bool {
    var.is_some_and(|v| v.eq_ignore_ascii_case("rust"))
}

/// Only x86-64 has a default `FTPSH_MD5=openssl` skips.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn forces_openssl(var: Option<&std::ffi::OsStr>) -> bool {
    var.is_some_and(|v| v.eq_ignore_ascii_case("openssl"))
}

/// The first usable libcrypto, loaded once per process whatever `FTPSH_MD5`.
fn libcrypto() -> Option<&'static Evp> {
    static LIBCRYPTO: OnceLock<Option<Evp>> = OnceLock::new();
    LIBCRYPTO
        .get_or_init(|| CANDIDATES.iter().find_map(|&(file, name)| load(file, name)))
        .as_ref()
}

fn load(file: &str, name: &'static str) -> Option<Evp> {
    // SAFETY: libcrypto's initialisers are safe to run at any time, from any
    // thread (OpenSSL initialises itself lazily and thread-safely).
    let lib = unsafe { libloading::Library::new(file) }.ok()?;
    // SAFETY: each type is the C prototype of that symbol in OpenSSL 1.1 and 3
    // (openssl/evp.h, openssl/err.h). The pointers are copied out of the
    // `Symbol`s; if one is missing `lib` is unloaded (`?`) with no copy kept,
    // else it is leaked just below and the copies stay valid for good.
    let (ctx_new, ctx_free, md5, fetch, init, update, finish, clear) = unsafe {
        (
            *lib.get::<CtxNewFn>(b"EVP_MD_CTX_new\0").ok()?,
            *lib.get::<CtxFreeFn>(b"EVP_MD_CTX_free\0").ok()?,
            *lib.get::<Md5Fn>(b"EVP_md5\0").ok()?,
            lib.get::<FetchFn>(b"EVP_MD_fetch\0").ok().map(|f| *f), // OpenSSL 3 only
            *lib.get::<InitFn>(b"EVP_DigestInit_ex\0").ok()?,
            *lib.get::<UpdateFn>(b"EVP_DigestUpdate\0").ok()?,
            *lib.get::<FinalFn>(b"EVP_DigestFinal_ex\0").ok()?,
            lib.get::<ClearFn>(b"ERR_clear_error\0").ok().map(|f| *f),
        )
    };
    // From here on OpenSSL code runs: never unload it.
    std::mem::forget(lib);

    // OpenSSL 3: fetch MD5 once, so that each EVP_DigestInit_ex does not look
    // it up again (the "implicit fetch" EVP_md5 implies). The result is kept
    // for the life of the process. NULL (no provider offers MD5) or 1.1: use
    // EVP_md5 and let the known-answer check below decide.
    let fetched = match fetch {
        // SAFETY: a NULL library context and NULL properties mean the
        // defaults; the algorithm name is a NUL-terminated string.
        Some(fetch) => unsafe { fetch(std::ptr::null_mut(), c"MD5".as_ptr(), std::ptr::null()) },
        None => std::ptr::null_mut(),
    };
    let md = if fetched.is_null() {
        // SAFETY: takes no arguments; returns a static method (or NULL).
        unsafe { md5() }
    } else {
        fetched.cast_const()
    };
    let evp = Evp {
        name,
        md,
        ctx_new,
        ctx_free,
        init,
        update,
        finish,
    };

    // Known answer: catches a refused MD5 (FIPS-only configuration: the init
    // fails) and any library that is not what its name says.
    let ok = !md.is_null()
        && EvpCtx::new(&evp)
            .is_some_and(|mut c| c.try_update(b"abc") && c.try_finish() == Some(ABC));
    match clear {
        // SAFETY: no arguments. Leaves no stale error on this thread's OpenSSL
        // error queue for other users of libcrypto in the process.
        Some(clear) if !ok => unsafe { clear() },
        _ => {}
    }
    ok.then_some(evp)
}

/// An initialised `EVP_MD_CTX` for MD5, freed on drop.
struct EvpCtx<'a> {
    api: &'a Evp,
    ctx: NonNull<EvpMdCtx>,
}

// SAFETY: an EVP_MD_CTX is plain heap state with no tie to the thread that
// made it; it is only ever used through `&mut self` or by value, so never from
// two threads at once.
unsafe impl Send for EvpCtx<'_> {}

impl<'a> EvpCtx<'a> {
    /// `None` if allocation fails or OpenSSL refuses MD5.
    fn new(api: &'a Evp) -> Option<Self> {
        // SAFETY: no arguments; returns a fresh context or NULL.
        let ctx = NonNull::new(unsafe { (api.ctx_new)() })?;
        // From here `Drop` frees `ctx`, on every path.
        let this = EvpCtx { api, ctx };
        // SAFETY: `ctx` is a live context and `md` a valid method; NULL engine.
        let ok = unsafe { (api.init)(ctx.as_ptr(), api.md, std::ptr::null_mut()) };
        (ok == 1).then_some(this)
    }

    fn update(&mut self, data: &[u8]) {
        // EVP_DigestUpdate fails only for a context without a digest method,
        // which `new` rules out. Hashing on would give a wrong digest.
        assert!(
            self.try_update(data),
            "EVP_DigestUpdate failed on an initialised MD5 context"
        );
    }

    fn finish(self) -> Digest {
        // Likewise: `new` initialised the context and MD5's final cannot fail.
        self.try_finish()
            .expect("EVP_DigestFinal_ex failed on an initialised MD5 context")
    }

    fn try_update(&mut self, data: &[u8]) -> bool {
        if data.is_empty() {
            return true;
        }
        // SAFETY: `ctx` is live and initialised (see `new`); `data` is valid
        // for `data.len()` bytes and OpenSSL only reads it during the call.
        unsafe { (self.api.update)(self.ctx.as_ptr(), data.as_ptr().cast(), data.len()) == 1 }
    }

    fn try_finish(self) -> Option<Digest> {
        let mut out = [0u8; EVP_MAX_MD_SIZE];
        let mut len: c_uint = 0;
        // SAFETY: `ctx` is live and initialised; `out` has the EVP_MAX_MD_SIZE
        // bytes OpenSSL may write and `len` receives the count. `self` is
        // dropped (the context freed) on return.
        let ok = unsafe { (self.api.finish)(self.ctx.as_ptr(), out.as_mut_ptr(), &mut len) };
        if ok != 1 || len != 16 {
            return None;
        }
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&out[..16]);
        Some(digest)
    }
}

impl Drop for EvpCtx<'_> {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from EVP_MD_CTX_new and is freed exactly once,
        // here; nothing uses it afterwards.
        unsafe { (self.api.ctx_free)(self.ctx.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8]) -> Digest {
        <::md5::Md5 as ::md5::Digest>::digest(data).into()
    }

    /// Deterministic pseudo-random bytes (xorshift64*).
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    type Maker = fn() -> Md5;

    /// Both backends where this machine has libcrypto, else md-5 alone.
    fn backends() -> Vec<(&'static str, Maker)> {
        let mut v: Vec<(&'static str, Maker)> = vec![("md-5", Md5::portable)];
        #[cfg(target_arch = "x86_64")]
        v.push(("x86-64", || Md5(Backend::X86(Md5X86::new()))));
        match libcrypto() {
            Some(_) => v.push(("openssl", || {
                Md5(Backend::OpenSsl(EvpCtx::new(libcrypto().unwrap()).unwrap()))
            })),
            None => eprintln!("no usable libcrypto here: only md-5 is tested"),
        }
        v
    }

    #[test]
    fn known_answers() {
        // RFC 1321 appendix A.5.
        let cases: [(&[u8], &str); 4] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (name, make) in backends() {
            for (input, hex) in cases {
                let mut h = make();
                h.update(input);
                let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(got, hex, "{name}");
            }
        }
    }

    #[test]
    fn agrees_with_md5_crate_on_lengths_0_to_300() {
        let data = noise(300, 1);
        for (name, make) in backends() {
            for len in 0..=300 {
                let mut h = make();
                h.update(&data[..len]);
                assert_eq!(
                    h.finalize(),
                    reference(&data[..len]),
                    "{name}, length {len}"
                );
                // Byte by byte too: exercises the partial-block buffering.
                let mut h = make();
                data[..len]
                    .iter()
                    .for_each(|b| h.update(std::slice::from_ref(b)));
                assert_eq!(
                    h.finalize(),
                    reference(&data[..len]),
                    "{name}, length {len}, bytewise"
                );
            }
        }
    }

    #[test]
    fn agrees_with_md5_crate_on_mebibytes_in_odd_chunks() {
        let data = noise((5 << 20) + 12_345, 2);
        let want = reference(&data);
        let sizes = [1usize, 3, 63, 64, 65, 127, 4093, 65_537, 262_147, 1_000_003];
        for (name, make) in backends() {
            let mut h = make();
            let (mut pos, mut i) = (0, 0);
            while pos < data.len() {
                let end = (pos + sizes[i % sizes.len()]).min(data.len());
                h.update(&data[pos..end]);
                h.update(&[]); // empty updates are no-ops
                pos = end;
                i += 1;
            }
            assert_eq!(h.finalize(), want, "{name}");
        }
    }

    #[test]
    fn public_api_uses_the_chosen_backend() {
        let data = noise(1 << 20, 3);
        assert_eq!(Md5::digest(&data), reference(&data));
        let mut h = Md5::default();
        h.update(&data[..1000]);
        h.update(&data[1000..]);
        assert_eq!(h.finalize(), reference(&data));
        let imp = Md5::implementation();
        assert!(
            imp.starts_with("OpenSSL (libcrypto.so")
                || imp == "md-5 (portable Rust)"
                || imp == "ftpsh's x86-64 assembly",
            "{imp}"
        );
        if std::env::var_os("FTPSH_MD5").is_none() {
            assert_eq!(
                cfg!(target_arch = "x86_64"),
                imp == "ftpsh's x86-64 assembly"
            );
            if !cfg!(target_arch = "x86_64") {
                assert_eq!(libcrypto().is_some(), imp.starts_with("OpenSSL"));
            }
        }
    }

    #[test]
    fn contexts_are_freed_and_movable_across_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<Md5>();
        for (name, make) in backends() {
            // Dropped without finalize, and finalized: many times each.
            for _ in 0..100_000 {
                let mut h = make();
                h.update(b"x");
                drop(h);
                let _ = make().finalize();
            }
            // Made on one thread, fed and finished on another.
            let mut h = make();
            h.update(b"ab");
            let d = std::thread::spawn(move || {
                h.update(b"c");
                h.finalize()
            })
            .join()
            .unwrap();
            assert_eq!(d, ABC, "{name}");
        }
    }

    #[test]
    fn ftpsh_md5_rust_forces_md5_crate() {
        use std::ffi::OsStr;
        assert!(forces_rust(Some(OsStr::new("rust"))));
        assert!(forces_rust(Some(OsStr::new("RUST"))));
        assert!(!forces_rust(None));
        assert!(!forces_rust(Some(OsStr::new("openssl"))));
        assert!(!forces_rust(Some(OsStr::new(""))));
        assert!(forces_openssl(Some(OsStr::new("OpenSSL"))));
        assert!(!forces_openssl(Some(OsStr::new("rust"))));
        assert!(!forces_openssl(None));
    }
}
