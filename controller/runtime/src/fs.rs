//! File-system helpers every writer of files shares.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader (a watcher, a pull agent) sees the old file or the new one, never half of one.
/// Creates the directory when missing.
///
/// # Errors
/// Creating the directory or the temporary file, writing, or renaming failed.
pub fn write_atomic(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::Builder::new()
        .prefix(".meshfleet-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    file.write_all(bytes.as_ref())?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
