//! The API's unix socket: created with mode 0600 (0660 for a granted
//! group) before anyone can connect, left alone when another watcher is
//! serving on it, replaced when it is a dead watcher's, and removed when
//! this watcher stops.

use std::{
    io,
    os::unix::{
        fs::{FileTypeExt, MetadataExt, PermissionsExt},
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
};

/// The socket file this watcher made; removed on drop while it is still
/// the same file.
pub struct SocketFile {
    path: PathBuf,
    ino: u64,
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub enum Bound {
    Listening(UnixListener, SocketFile),
    /// Another process answers on it.
    Taken,
}

/// Binds the API socket at `path`, readable and writable by the owner
/// only, and by `group` when given.
pub fn bind(path: &Path, group: Option<&str>) -> io::Result<Bound> {
    let gid = group
        .map(|g| match crate::sys::users::group_id(g) {
            Ok(Some(gid)) => Ok(nix::unistd::Gid::from_raw(gid)),
            Ok(None) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no group {g:?}"),
            )),
            Err(e) => Err(e),
        })
        .transpose()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Ok(Bound::Taken),
            // A watcher that died without removing it.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)?,
            Err(e) => return Err(e),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Made under another name, given its mode and group, then moved into
    // place: nobody connects before the permissions are right.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    let placed = (|| {
        let mode = if gid.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        if let Some(gid) = gid {
            nix::unistd::chown(&tmp, None, Some(gid))?;
        }
        std::fs::rename(&tmp, path)?;
        std::fs::symlink_metadata(path)
    })();
    match placed {
        Ok(m) => Ok(Bound::Listening(
            listener,
            SocketFile {
                path: path.to_path_buf(),
                ino: m.ino(),
            },
        )),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_only_then_left_to_a_live_one_then_replaced_when_dead() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/api.sock");
        let Bound::Listening(listener, file) = bind(&path, None).unwrap() else {
            panic!("nothing served there yet");
        };
        let m = std::fs::symlink_metadata(&path).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.mode() & 0o777, 0o600);
        // Someone answers there: left alone.
        assert!(matches!(bind(&path, None).unwrap(), Bound::Taken));
        // Its listener gone but the file left behind: replaced.
        drop(listener);
        std::mem::forget(file);
        let Bound::Listening(_l, file) = bind(&path, None).unwrap() else {
            panic!("a dead socket is replaced");
        };
        drop(file);
        assert!(!path.exists(), "removed when the watcher stops");
        // Not a socket: refused, not removed.
        std::fs::write(&path, "x").unwrap();
        let e = bind(&path, None).err().expect("a regular file is refused");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert!(path.exists());
    }
}
