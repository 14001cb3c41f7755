//! Listing the YAML files below a directory of the config directory: symlinks are followed, but
//! each real directory is read once (`ln -s . self` or `ln -s .. up` would otherwise make the
//! walk endless), hidden names are skipped, and what cannot be listed or named is said.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use meshfleet_model::problem::{Problem, Source};

/// Nobody nests configuration deeper than this.
const MAX_DEPTH: usize = 32;

/// What one walk found.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Every visible YAML file: (name relative to the config directory, path), in name order.
    pub(super) files: Vec<(String, PathBuf)>,
    /// Directories below the start that could not be listed (relative names): the files known
    /// below them are kept as they were.
    pub(super) unlisted: Vec<String>,
    /// What was skipped and why.
    pub(super) problems: Vec<Problem>,
}

/// Lists the YAML files below the config directory `root`.
///
/// # Errors
/// `root` itself cannot be listed (it is gone, it is not a directory, it may not be read).
pub(super) fn list(root: &Path) -> std::io::Result<Listing> {
    let entries = std::fs::read_dir(root)?;
    let mut walk = Walk::default();
    if let Ok(metadata) = std::fs::metadata(root) {
        walk.seen.insert(identity(&metadata));
    }
    walk.entries(entries, "", 0);
    walk.listing.files.sort();
    Ok(walk.listing)
}

#[derive(Default)]
struct Walk {
    listing: Listing,
    /// Directories read so far, by (device, inode), and the name they were read under.
    seen: BTreeSet<(u64, u64)>,
}

impl Walk {
    fn entries(&mut self, entries: std::fs::ReadDir, rel: &str, depth: usize) {
        let child_name = |name: &str| {
            if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    self.unlisted(rel, &error);
                    continue;
                }
            };
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                let lossy = child_name(&entry.file_name().to_string_lossy());
                self.listing.problems.push(Problem::new(
                    Source::file(lossy),
                    "the name is not UTF-8; skipped (rename it)",
                ));
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let child = child_name(&name);
            // Follows symlinks: a link to a directory is walked, a dangling one is a file
            // that will not be found.
            match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_dir() => self.directory(&path, child, &metadata, depth),
                _ if is_yaml(&path) => self.listing.files.push((child, path)),
                _ => {}
            }
        }
    }

    fn directory(&mut self, path: &Path, rel: String, metadata: &std::fs::Metadata, depth: usize) {
        if !self.seen.insert(identity(metadata)) {
            self.listing.problems.push(Problem::new(
                Source::file(format!("{rel}/")),
                "leads to a directory that is already read (a symlink loop or a second link); skipped",
            ));
            return;
        }
        if depth + 1 >= MAX_DEPTH {
            self.listing.problems.push(Problem::new(
                Source::file(format!("{rel}/")),
                format!("nested more than {MAX_DEPTH} directories deep; skipped"),
            ));
            return;
        }
        match std::fs::read_dir(path) {
            Ok(entries) => self.entries(entries, &rel, depth + 1),
            Err(error) => self.unlisted(&rel, &error),
        }
    }

    fn unlisted(&mut self, rel: &str, error: &std::io::Error) {
        if error.kind() == std::io::ErrorKind::NotFound {
            // Removed while it was walked: its files are gone, not unknown.
            return;
        }
        self.listing.problems.push(Problem::new(
            Source::file(format!("{rel}/")),
            format!("cannot list: {error}; the files known below it stay as they were"),
        ));
        self.listing.unlisted.push(rel.to_owned());
    }
}

fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

pub(super) fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn names(listing: &Listing) -> Vec<&str> {
        listing.files.iter().map(|(rel, _)| rel.as_str()).collect()
    }

    #[test]
    fn symlink_loops_are_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.yaml"), "").unwrap();
        std::fs::write(root.join("sub/b.yaml"), "").unwrap();
        symlink(".", root.join("self")).unwrap();
        symlink("..", root.join("sub/up")).unwrap();
        let listing = list(root).unwrap();
        assert_eq!(names(&listing), ["a.yaml", "sub/b.yaml"]);
        let mut skipped: Vec<String> = listing
            .problems
            .iter()
            .map(|p| p.source.to_string())
            .collect();
        skipped.sort();
        assert_eq!(skipped, ["self/", "sub/up/"]);
        assert!(listing.unlisted.is_empty());
    }

    #[test]
    fn names_that_are_not_utf8_are_reported() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.yaml");
        std::fs::write(dir.path().join(name), "").unwrap();
        let listing = list(dir.path()).unwrap();
        assert!(listing.files.is_empty());
        assert_eq!(
            listing.problems[0].to_string(),
            "caf\u{fffd}.yaml: the name is not UTF-8; skipped (rename it)"
        );
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(list(Path::new("/nonexistent/meshfleet")).is_err());
    }
}
