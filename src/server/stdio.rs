//! `ftpsh-server --stdio`: one session on this process's standard input and
//! output, for a client that reached the machine with `ssh` (`ftpsh
//! ssh://HOST`). ssh authenticated the user and encrypts the stream, so there
//! is no token, and `exec` is on: the user could run any command over that
//! ssh anyway, unless sshd forced this command on a restricted key.

use ftpsh_core::net::Stream;
use ftpsh_core::pipe::PipeStream;

use super::{session, Config, Handshake, Shared};

/// Serves one session on stdin and stdout, and returns when the client
/// leaves. Nothing else may write to stdout meanwhile. `exec` is on unless
/// `no_exec` (`--no-exec`) or sshd ran this as a forced command
/// (`command="ftpsh-server --stdio ..."` in `authorized_keys`, which sets
/// `SSH_ORIGINAL_COMMAND`): a key restricted to file transfer must not become
/// a shell through `exec`.
pub fn serve_stdio(mut config: Config, no_exec: bool) -> anyhow::Result<()> {
    config.token = None;
    config.allow_exec = !no_exec && std::env::var_os("SSH_ORIGINAL_COMMAND").is_none();
    config.max_connections = 1;
    let shared = Shared::new(config)?;
    let stream = Stream::Pipe(PipeStream::stdio()?);
    let id = shared
        .handshakes
        .enter(&stream)
        .map_err(anyhow::Error::msg)?;
    session::serve(
        &shared,
        stream,
        Handshake {
            shared: &shared,
            id,
        },
    );
    Ok(())
}
