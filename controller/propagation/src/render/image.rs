//! Karmada's image overrider (`pkg/util/overridemanager/imageoverride.go`): changes the
//! registry, repository or tag (or digest) of container images.
//!
//! With `predicate.path`, the image at that JSON pointer. Without, as in Karmada, every
//! container's image in the pod spec of a Pod, Deployment, StatefulSet, ReplicaSet, DaemonSet
//! or Job; other kinds and init containers are left alone. A policy annotated
//! `meshfleet.io/image-override-all-containers: "true"` reaches, beyond Karmada
//! (karmada-io/karmada#4283), init containers and a CronJob's job template too.
//!
//! `add` appends the value to the component as text (registry `""` + `test-repo` →
//! `test-repo/myapp:1.0.0`; registry `r.example` + `.test` → `r.example.test/...`); `replace`
//! sets it; `remove` clears it. A Tag value that is neither a valid tag nor a valid digest
//! changes nothing, as in Karmada.

use serde_json::Value;

use super::fault::Fault;
use super::patch::{Op, PatchError, parse_pointer, resolve_mut};
use super::reference::ImageRef;
use super::tree::{self, NotAnObject};
use meshfleet_api::ImageOverrider;

const LIST: &str = "imageOverrider";

/// Annotation on an OverridePolicy: `"true"` makes image overriders without a predicate reach
/// init containers and CronJobs too.
pub(super) const ANNOTATION_ALL_CONTAINERS: &str = "meshfleet.io/image-override-all-containers";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Component {
    Registry,
    Repository,
    Tag,
}

/// Why an image overrider did not apply. Messages name paths, never an image.
#[derive(Debug, thiserror::Error)]
enum ImageError {
    /// The component is not `Registry`, `Repository` or `Tag`.
    #[error("unsupported component {component:?}")]
    ParseComponent { component: String },
    /// The operator or `predicate.path` does not parse.
    #[error(transparent)]
    ParseOverrider(#[from] PatchError),
    /// Nothing is at `predicate.path`.
    #[error("path {path} does not exist")]
    FindImage { path: String },
    /// The value at the path is not a string.
    #[error("value at {path} is not a string")]
    ReadImage { path: String },
    /// The image does not parse as a reference.
    #[error("image at {path}: {reason}")]
    ParseImage { path: String, reason: &'static str },
    /// The pod spec's container list is not a list.
    #[error("{path} is not a list")]
    ReadContainers { path: String },
    /// A container of the list is not an object.
    #[error("{path} is not an object")]
    ReadContainer { path: String },
    /// A field on the way to the pod spec is not an object.
    #[error(transparent)]
    WalkTree(#[from] NotAnObject),
}

/// One image overrider, checked.
struct Edit<'a> {
    component: Component,
    op: Op,
    value: &'a str,
}

impl<'a> Edit<'a> {
    fn parse(o: &'a ImageOverrider) -> Result<Self, ImageError> {
        let component = match o.component.as_str() {
            "Registry" => Component::Registry,
            "Repository" => Component::Repository,
            "Tag" => Component::Tag,
            other => {
                return Err(ImageError::ParseComponent {
                    component: other.to_owned(),
                });
            }
        };
        Ok(Self {
            component,
            op: Op::parse(&o.operator)?,
            value: o.value.as_deref().unwrap_or_default(),
        })
    }

    /// The image after the edit; `path` only names where it is in errors (the image itself is
    /// never quoted).
    fn apply(&self, image: &str, path: &str) -> Result<String, ImageError> {
        let mut r = ImageRef::parse(image).map_err(|reason| ImageError::ParseImage {
            path: path.to_owned(),
            reason,
        })?;
        let value = self.value;
        match (self.component, self.op) {
            (Component::Registry, Op::Add) => r.registry.push_str(value),
            (Component::Registry, Op::Replace) => r.registry = value.to_owned(),
            (Component::Registry, Op::Remove) => r.registry.clear(),
            (Component::Repository, Op::Add) => r.repository.push_str(value),
            (Component::Repository, Op::Replace) => r.repository = value.to_owned(),
            (Component::Repository, Op::Remove) => r.repository.clear(),
            (Component::Tag, Op::Add) => {
                let joined = format!("{}{value}", r.tag_or_digest());
                r.set_tag_or_digest(&joined);
            }
            (Component::Tag, Op::Replace) => r.set_tag_or_digest(value),
            (Component::Tag, Op::Remove) => r.remove_tag_or_digest(),
        }
        Ok(r.to_string())
    }
}

/// Applies `overriders` in order.
///
/// # Errors
/// The first overrider that is malformed, points at no string, or meets an image that does not
/// parse.
pub(super) fn apply(
    doc: &mut Value,
    kind: &str,
    overriders: &[ImageOverrider],
    all_containers: bool,
) -> Result<(), Fault> {
    for (i, o) in overriders.iter().enumerate() {
        let result = Edit::parse(o).and_then(|edit| match &o.predicate {
            Some(predicate) => apply_at(doc, &predicate.path, &edit),
            None => apply_to_pod_spec(doc, kind, &edit, all_containers),
        });
        result.map_err(|error| Fault::at(LIST, i, &error))?;
    }
    Ok(())
}

fn apply_at(doc: &mut Value, path: &str, edit: &Edit<'_>) -> Result<(), ImageError> {
    let tokens = parse_pointer(path)?;
    match resolve_mut(doc, &tokens) {
        Some(Value::String(image)) => {
            *image = edit.apply(image, path)?;
            Ok(())
        }
        Some(_) => Err(ImageError::ReadImage {
            path: path.to_owned(),
        }),
        None => Err(ImageError::FindImage {
            path: path.to_owned(),
        }),
    }
}

fn apply_to_pod_spec(
    doc: &mut Value,
    kind: &str,
    edit: &Edit<'_>,
    all_containers: bool,
) -> Result<(), ImageError> {
    let Some(template) = tree::pod_template_path(kind) else {
        return Ok(());
    };
    if kind == "CronJob" && !all_containers {
        return Ok(());
    }
    let lists: &[&str] = if all_containers {
        &["containers", "initContainers"]
    } else {
        &["containers"]
    };
    for &list in lists {
        let path = tree::join(template, &["spec", list]);
        let Some(containers) = tree::get_mut(doc, &path)? else {
            continue;
        };
        let Value::Array(containers) = containers else {
            return Err(ImageError::ReadContainers {
                path: tree::pointer(&path),
            });
        };
        for (index, container) in containers.iter_mut().enumerate() {
            let at = format!("{}/{index}/image", tree::pointer(&path));
            let Value::Object(container) = container else {
                return Err(ImageError::ReadContainer {
                    path: at.trim_end_matches("/image").to_owned(),
                });
            };
            let image = match container.get("image") {
                Some(Value::String(image)) => image.as_str(),
                None | Some(Value::Null) => "",
                Some(_) => return Err(ImageError::ReadImage { path: at }),
            };
            let image = edit.apply(image, &at)?;
            container.insert("image".to_owned(), Value::String(image));
        }
    }
    Ok(())
}
