//! Where the watch stream goes: stdout, or a file opened for appending
//! (`--output FILE`) that SIGHUP reopens, so logrotate can move it away.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, StdoutLock, Write},
    path::{Path, PathBuf},
};

pub enum Sink {
    Stdout(BufWriter<StdoutLock<'static>>),
    File { path: PathBuf, w: BufWriter<File> },
}

impl Sink {
    /// stdout without a path; else the file at `path`, created if missing.
    pub fn open(path: Option<&Path>) -> io::Result<Sink> {
        Ok(match path {
            None => Sink::Stdout(BufWriter::new(io::stdout().lock())),
            Some(p) => Sink::File {
                path: p.to_owned(),
                w: BufWriter::new(append(p)?),
            },
        })
    }

    /// Flushes and reopens the file by its path (after a rotation the path
    /// names a new file); nothing for stdout.
    pub fn reopen(&mut self) -> io::Result<()> {
        if let Sink::File { path, w } = self {
            w.flush()?;
            *w = BufWriter::new(append(path)?);
        }
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::File { w, .. } => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File { w, .. } => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_follows_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        std::fs::write(&path, "old\n").unwrap();
        let mut sink = Sink::open(Some(&path)).unwrap();
        writeln!(sink, "a").unwrap();
        sink.flush().unwrap();
        // logrotate moves the file away, then signals.
        std::fs::rename(&path, dir.path().join("events.ndjson.1")).unwrap();
        writeln!(sink, "b").unwrap();
        sink.reopen().unwrap();
        writeln!(sink, "c").unwrap();
        sink.flush().unwrap();
        let rotated = std::fs::read_to_string(dir.path().join("events.ndjson.1")).unwrap();
        assert_eq!(
            rotated, "old\na\nb\n",
            "appended, and flushed before reopening"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "c\n");
    }
}
