//! The server's identity: a key pair and a certificate, and the fingerprint
//! that clients pin.
//!
//! The fingerprint is `SHA256:` + base64 (standard alphabet, no padding) of
//! the SHA-256 of the certificate's SubjectPublicKeyInfo DER, so a renewed
//! certificate for the same key keeps it.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use rcgen::{CertificateParams, DnType, KeyPair, PublicKeyData as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use sha2::{Digest as _, Sha256};
use x509_cert::der::{Decode as _, Encode as _};

/// File names inside the identity directory.
pub const KEY_FILE: &str = "key.pem";
pub const CERT_FILE: &str = "cert.pem";

/// The name written into a self-signed certificate. Clients never check it
/// (a self-signed certificate is trusted by fingerprint alone).
const SELF_SIGNED_NAME: &str = "ftpsh-server";

/// A server identity: certificate chain, private key, fingerprint, and the
/// TLS configuration built from them.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    fingerprint: String,
    config: Arc<ServerConfig>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads the identity kept in `dir`, creating it on first use: the
    /// directory with mode 0700, `key.pem` (PKCS#8, ECDSA P-256) with mode
    /// 0600 from its creation on, and a self-signed `cert.pem` beside it.
    ///
    /// Two servers starting at once on one directory end up with the same
    /// key: the key file is put in place with a hard link, which never
    /// replaces a file another process linked first. A missing `cert.pem` is
    /// made again from the key (same fingerprint). A key file readable by
    /// group or others is refused, as ssh does.
    pub fn load_or_create(dir: &Path) -> io::Result<Identity> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        // A directory others may write could have its key or certificate
        // replaced under the server: refused, as ssh refuses such a home.
        let dir_mode = fs::metadata(dir)?.permissions().mode();
        if dir_mode & 0o022 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: the identity directory is writable by others (mode {:o}); \
                     chmod 700 {}",
                    dir.display(),
                    dir_mode & 0o777,
                    dir.display()
                ),
            ));
        }
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        if !key_path.exists() {
            let key = KeyPair::generate().map_err(rcgen_err)?;
            install_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        }
        let mode = fs::metadata(&key_path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: the private key is readable by others (mode {:o}); \
                     make it owner-only: chmod 600 {}",
                    key_path.display(),
                    mode & 0o777,
                    key_path.display()
                ),
            ));
        }
        let key_pem = fs::read_to_string(&key_path)?;
        let key_pair = KeyPair::from_pem(&key_pem)
            .map_err(|e| bad_data(&key_path, format!("not a usable private key: {e}")))?;
        let key_fp = fingerprint_of_spki(&key_pair.subject_public_key_info());
        if !cert_path.exists() {
            let mut params =
                CertificateParams::new(vec![SELF_SIGNED_NAME.to_string()]).map_err(rcgen_err)?;
            params
                .distinguished_name
                .push(DnType::CommonName, SELF_SIGNED_NAME);
            let cert = params.self_signed(&key_pair).map_err(rcgen_err)?;
            // Replacing is fine: any certificate for this key is as good.
            install_replace(&cert_path, cert.pem().as_bytes(), 0o644)?;
        }
        let cert_pem = fs::read(&cert_path)?;
        let cert_fp = CertificateDer::pem_slice_iter(&cert_pem)
            .next()
            .and_then(|c| c.ok())
            .and_then(|c| fingerprint_of_cert(&c).ok());
        if cert_fp.as_deref() != Some(key_fp.as_str()) {
            return Err(bad_data(
                &cert_path,
                format!(
                    "not a certificate for {} (the key's fingerprint is {key_fp}); \
                     remove it to have it made again",
                    key_path.display()
                ),
            ));
        }
        let id = Self::from_pem(&cert_path, &key_path, key_pem.as_bytes())?;
        Ok(id)
    }

    /// An identity from PEM files, e.g. a CA-issued certificate: `cert` holds
    /// the end-entity certificate first, then any intermediates; `key` holds
    /// its private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<Identity> {
        let mode = fs::metadata(key)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: the private key is readable by others (mode {:o}); chmod 600 {}",
                    key.display(),
                    mode & 0o777,
                    key.display()
                ),
            ));
        }
        let key_pem = fs::read(key)?;
        Self::from_pem(cert, key, &key_pem)
    }

    fn from_pem(cert_path: &Path, key_path: &Path, key_pem: &[u8]) -> io::Result<Identity> {
        let cert_pem = fs::read(cert_path)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_data(cert_path, format!("bad PEM: {e}")))?;
        let Some(end_entity) = chain.first() else {
            return Err(bad_data(cert_path, "no certificate in the file".into()));
        };
        let fingerprint =
            fingerprint_of_cert(end_entity).map_err(|e| bad_data(cert_path, e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| bad_data(key_path, format!("no usable private key: {e}")))?;
        let provider = super::provider();
        // Checks that the key is supported and belongs to the certificate.
        let certified = rustls::sign::CertifiedKey::from_der(chain.clone(), key, &provider)
            .map_err(|e| {
                bad_data(
                    key_path,
                    format!("does not fit {}: {e}", cert_path.display()),
                )
            })?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| io::Error::other(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCert(Arc::new(certified))));
        config.alpn_protocols = vec![super::ALPN.to_vec()];
        // Clients never resume (each connection is verified in full), so
        // tickets would be bytes for nothing.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Identity {
            chain,
            fingerprint,
            config: Arc::new(config),
        })
    }

    /// `SHA256:...` of the end-entity certificate's public key.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The end-entity certificate, DER.
    pub fn certificate_der(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The TLS 1.3-only server configuration (built once, shared).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }
}

#[derive(Debug)]
struct SingleCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for SingleCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A certificate that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertParseError(pub String);

impl fmt::Display for CertParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unparsable X.509 certificate: {}", self.0)
    }
}

impl std::error::Error for CertParseError {}

/// The fingerprint of a DER certificate: parses it (x509-cert) and hashes
/// its SubjectPublicKeyInfo.
pub fn fingerprint_of_cert(der: &[u8]) -> Result<String, CertParseError> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| CertParseError(e.to_string()))?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| CertParseError(e.to_string()))?;
    Ok(fingerprint_of_spki(&spki))
}

/// `SHA256:` + base64 (no padding) of SHA-256 over a SubjectPublicKeyInfo DER.
pub fn fingerprint_of_spki(spki_der: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(spki_der))
    )
}

/// Checks a fingerprint as typed and returns its canonical form: the
/// `SHA256:` prefix (any case), 43 base64 characters; surrounding blanks and
/// trailing `=` padding are forgiven.
pub fn parse_fingerprint(s: &str) -> Result<String, String> {
    let t = s.trim();
    let body = t
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("SHA256:"))
        .map(|_| &t[7..])
        .ok_or_else(|| format!("{t:?}: a fingerprint starts with SHA256:"))?;
    let body = body.trim_end_matches('=');
    match STANDARD_NO_PAD.decode(body) {
        Ok(b) if b.len() == 32 => Ok(format!("SHA256:{}", STANDARD_NO_PAD.encode(b))),
        _ => Err(format!(
            "{t:?}: not a SHA256 fingerprint (SHA256: and 43 base64 characters)"
        )),
    }
}

fn rcgen_err(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("cannot make the TLS identity: {e}"))
}

fn bad_data(path: &Path, msg: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {msg}", path.display()),
    )
}

/// A unique temporary name beside `path`.
fn temp_beside(path: &Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("f");
    path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()))
}

/// Writes a complete file with `mode` from its creation on (never wider),
/// synced, at a temporary name.
fn write_temp(path: &Path, data: &[u8], mode: u32) -> io::Result<PathBuf> {
    let tmp = temp_beside(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    let res = f.write_all(data).and_then(|()| f.sync_all());
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Puts a complete file at `path` unless one is already there (then the
/// existing one wins and this is not an error).
fn install_new(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let tmp = write_temp(path, data, mode)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Puts a complete file at `path`, replacing any.
fn install_replace(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let tmp = write_temp(path, data, mode)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_canonically() {
        let fp = fingerprint_of_spki(b"x");
        assert_eq!(parse_fingerprint(&fp).unwrap(), fp);
        let lower = format!("sha256:{}=", &fp[7..]);
        assert_eq!(parse_fingerprint(&format!("  {lower} ")).unwrap(), fp);
        assert!(parse_fingerprint("SHA256:abc").is_err());
        assert!(parse_fingerprint(&fp[7..]).is_err());
        assert!(parse_fingerprint("").is_err());
        assert_eq!(fp.len(), 7 + 43);
    }

    #[test]
    fn cert_fingerprint_is_the_key_fingerprint() {
        let ck = rcgen::generate_simple_self_signed(vec!["a.example".into()]).unwrap();
        let from_key = fingerprint_of_spki(&ck.signing_key.subject_public_key_info());
        let from_cert = fingerprint_of_cert(ck.cert.der()).unwrap();
        assert_eq!(from_key, from_cert);
        // rustls (webpki) agrees on the SPKI bytes.
        let parsed = rustls::server::ParsedCertificate::try_from(ck.cert.der()).unwrap();
        assert_eq!(
            fingerprint_of_spki(parsed.subject_public_key_info().as_ref()),
            from_cert
        );
        assert!(fingerprint_of_cert(b"\x30\x03\x02\x01\x00").is_err());
        assert!(fingerprint_of_cert(&[]).is_err());
    }
}
