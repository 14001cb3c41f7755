//! Reading one file of the config directory without ever waiting on it: only regular files are
//! read (a FIFO, a socket or a device behind a `*.yaml` name is refused), the open does not
//! block (a FIFO with no writer would otherwise hold the reader for good), and no more than a
//! set number of bytes is read (a symlink to `/dev/zero` is not a regular file; a growing or
//! huge file stops at the cap).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file ({0}); skipped")]
    NotRegular(&'static str),
    #[error(
        "is {size} bytes, more than the {limit} bytes a config file may have (--max-file-bytes); skipped"
    )]
    TooBig { size: u64, limit: u64 },
}

impl ReadError {
    /// The file is gone: nothing to report, only to forget.
    pub(super) fn is_not_found(&self) -> bool {
        matches!(self, Self::Io(error) if error.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The bytes of the regular file at `path` (symlinks followed), at most `limit` of them.
pub(super) fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    // O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; it changes
    // nothing for a regular file.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // The type of what was opened, not of what the path named a moment before.
    let metadata = file.metadata()?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(describe(&kind)));
    }
    if metadata.len() > limit {
        return Err(ReadError::TooBig {
            size: metadata.len(),
            limit,
        });
    }
    read_capped(file, limit)
}

/// Reads to the end, refusing to go past `limit` (the file may grow while it is read).
fn read_capped(file: File, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(ReadError::TooBig { size, limit });
    }
    Ok(bytes)
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_regular(&path, 10).unwrap(), b"0123456789");
        let error = read_regular(&path, 9).unwrap_err();
        assert_eq!(
            error.to_string(),
            "is 10 bytes, more than the 9 bytes a config file may have (--max-file-bytes); skipped"
        );
        assert!(
            read_regular(&dir.path().join("gone.yaml"), 10)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe.yaml");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let error = read_regular(&path, 1 << 20).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file (a FIFO); skipped");
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(
            read_regular(&zero, 1 << 20).unwrap_err().to_string(),
            "not a regular file (a character device); skipped"
        );
        // An unlimited read of a device would never end; the cap holds for any reader.
        let capped = read_capped(File::open("/dev/zero").unwrap(), 4096).unwrap_err();
        assert!(matches!(capped, ReadError::TooBig { size: 4097, .. }));
        assert_eq!(
            read_regular(dir.path(), 1 << 20).unwrap_err().to_string(),
            "not a regular file (a directory); skipped"
        );
    }
}
