//! Container image references, parsed as Karmada's image overrider parses them
//! (`pkg/util/imageparser`, on top of `distribution/reference.Parse`):
//!
//! ```text
//!  reference := name [ ":" tag ] [ "@" digest ]
//!  name      := [ domain "/" ] path-component ( "/" path-component )*     (≤ 255 characters)
//!  domain    := host [ ":" port ]      host: DNS labels joined by ".", or "[" IPv6 "]"
//!  path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//!  tag       := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//!  digest    := algorithm ":" hex      (sha256 / sha384 / sha512, exact length, lowercase)
//! ```
//!
//! The registry ("hostname") is the part before the first `/` only when it looks like one: it
//! contains `.` or `:`, or is `localhost` (so `test-repo/myapp` has no registry). Karmada keeps
//! the tag, or else the digest: a reference with both loses its digest when rewritten.

/// The parts of an image reference an image overrider changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

const NAME_MAX: usize = 255;

impl ImageRef {
    /// # Errors
    /// The reference does not follow the grammar above; the message is distribution's.
    pub(super) fn parse(image: &str) -> Result<Self, &'static str> {
        let Some((name, tag, digest)) = split(image) else {
            return Err(if image.is_empty() {
                "repository name must have at least one component"
            } else if split(&image.to_ascii_lowercase()).is_some() {
                "repository name must be lowercase"
            } else {
                "invalid reference format"
            });
        };
        if name.len() > NAME_MAX {
            return Err("repository name must not be more than 255 characters");
        }
        if let Some(digest) = digest {
            validate_digest(digest)?;
        }
        let (registry, repository) = split_registry(name);
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.unwrap_or_default().to_owned(),
            digest: if tag.is_some() {
                String::new()
            } else {
                digest.unwrap_or_default().to_owned()
            },
        })
    }

    pub(super) fn tag_or_digest(&self) -> &str {
        if self.tag.is_empty() {
            &self.digest
        } else {
            &self.tag
        }
    }

    /// Sets the tag or the digest, whichever `input` is; anything else changes nothing.
    pub(super) fn set_tag_or_digest(&mut self, input: &str) {
        if is_tag(input) {
            self.tag = input.to_owned();
            self.digest.clear();
        } else if is_digest(input) {
            self.digest = input.to_owned();
            self.tag.clear();
        }
    }

    pub(super) fn remove_tag_or_digest(&mut self) {
        if self.tag.is_empty() {
            self.digest.clear();
        } else {
            self.tag.clear();
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.registry.is_empty() {
            write!(f, "{}/", self.registry)?;
        }
        f.write_str(&self.repository)?;
        if !self.tag.is_empty() {
            write!(f, ":{}", self.tag)
        } else if !self.digest.is_empty() {
            write!(f, "@{}", self.digest)
        } else {
            Ok(())
        }
    }
}

/// `name`, `tag` and `digest` of a reference that follows the grammar.
fn split(image: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if digest.is_some_and(|d| !is_digest(d)) {
        return None;
    }
    // A tag cannot hold `/` or `:`, and a `:` in the name belongs to the domain, which a `/`
    // always follows: so a `:` after the last `/` starts the tag.
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) || !is_name(name) {
        return None;
    }
    Some((name, tag, digest))
}

fn is_name(name: &str) -> bool {
    is_path(name)
        || name
            .split_once('/')
            .is_some_and(|(domain, path)| is_domain(domain) && is_path(path))
}

fn is_path(path: &str) -> bool {
    path.split('/').all(is_path_component)
}

fn is_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Between alphanumeric runs: ".", "_", "__" or one or more "-".
    bytes
        .split(|&b| alnum(b))
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&b| b == b'-'))
        && bytes
            .iter()
            .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
}

fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.strip_prefix('[') {
        Some(rest) => {
            // An IPv6 host: `[` hex and colons `]`, then an optional `:port`.
            let Some((v6, after)) = rest.split_once(']') else {
                return false;
            };
            return is_ipv6(v6)
                && (after.is_empty() || after.strip_prefix(':').is_some_and(is_port));
        }
        None => match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        },
    };
    host.split('.').all(is_domain_label) && port.is_none_or(is_port)
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
}

fn is_ipv6(inner: &str) -> bool {
    !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
}

fn is_domain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    bytes.first().is_some_and(|&b| is_word(b))
        && bytes.len() <= 128
        && bytes.iter().all(|&b| is_word(b) || b == b'.' || b == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        part.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What `go-digest` checks on top of the grammar: a known algorithm, the exact length, lowercase.
fn validate_digest(digest: &str) -> Result<(), &'static str> {
    let (algorithm, hex) = digest.split_once(':').unwrap_or((digest, ""));
    let size = match algorithm {
        "sha256" => 32,
        "sha384" => 48,
        "sha512" => 64,
        _ => return Err("unsupported digest algorithm"),
    };
    if hex.len() != size * 2 {
        return Err("invalid checksum digest length");
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("invalid checksum digest format");
    }
    Ok(())
}

/// Karmada's `SplitHostname`: the part before the first `/` is the registry when it contains
/// `.` or `:` or is `localhost`.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("", name),
    }
}
