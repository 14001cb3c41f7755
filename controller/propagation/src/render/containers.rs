//! Karmada's command and args overriders (`pkg/util/overridemanager/commandargsoverride.go`):
//! for every container named `containerName` in the pod spec of a Pod, Deployment,
//! StatefulSet, ReplicaSet, DaemonSet or Job (and, beyond Karmada, a CronJob's job template),
//! `add` appends the values and `remove` drops every occurrence of each listed value.
//!
//! As in Karmada, a container without the list gets one: the values for `add`, and an empty
//! list for `remove`. Init containers are not touched; neither are other kinds.

use serde_json::Value;

use super::fault::Fault;
use super::patch::{Op, PatchError};
use super::tree::{self, NotAnObject};
use meshfleet_api::CommandArgsOverrider;

/// Why a command or args overrider did not apply.
#[derive(Debug, thiserror::Error)]
enum ContainersError {
    /// The operator is not `add`, `remove` or `replace`.
    #[error(transparent)]
    ParseOperator(#[from] PatchError),
    /// The operator is `replace`, which Karmada does not take for command and args.
    #[error("unsupported operator \"replace\"")]
    Replace,
    /// The pod spec's container list is not a list.
    #[error("{path} is not a list")]
    ReadContainers { path: String },
    /// A matching container's `command` or `args` is not a list of strings.
    #[error("{path} is not a list of strings")]
    ReadList { path: String },
    /// A field on the way to the pod spec is not an object.
    #[error(transparent)]
    WalkTree(#[from] NotAnObject),
}

/// Which list of a container an overrider edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    Command,
    Args,
}

impl Target {
    fn field(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Args => "args",
        }
    }

    fn list(self) -> &'static str {
        match self {
            Self::Command => "commandOverrider",
            Self::Args => "argsOverrider",
        }
    }
}

/// Applies `overriders` in order.
///
/// # Errors
/// An unsupported operator, or a container list or `command`/`args` of the wrong type.
pub(super) fn apply(
    doc: &mut Value,
    kind: &str,
    target: Target,
    overriders: &[CommandArgsOverrider],
) -> Result<(), Fault> {
    let Some(template) = tree::pod_template_path(kind) else {
        return Ok(());
    };
    let path = tree::join(template, &["spec", "containers"]);
    for (i, o) in overriders.iter().enumerate() {
        apply_one(doc, &path, target, o).map_err(|error| Fault::at(target.list(), i, &error))?;
    }
    Ok(())
}

fn apply_one(
    doc: &mut Value,
    path: &[&str],
    target: Target,
    o: &CommandArgsOverrider,
) -> Result<(), ContainersError> {
    let op = match Op::parse(&o.operator)? {
        Op::Replace => return Err(ContainersError::Replace),
        op => op,
    };
    let Some(containers) = tree::get_mut(doc, path)? else {
        return Ok(());
    };
    let Value::Array(containers) = containers else {
        return Err(ContainersError::ReadContainers {
            path: tree::pointer(path),
        });
    };
    for (index, container) in containers.iter_mut().enumerate() {
        let Value::Object(container) = container else {
            continue;
        };
        if container.get("name").and_then(Value::as_str) != Some(o.container_name.as_str()) {
            continue;
        }
        let not_strings = || ContainersError::ReadList {
            path: format!("{}/{index}/{}", tree::pointer(path), target.field()),
        };
        let current = match container.get(target.field()) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(not_strings)?,
            Some(_) => return Err(not_strings()),
        };
        let edited = edit(current, op, &o.value);
        container.insert(
            target.field().to_owned(),
            Value::Array(edited.into_iter().map(Value::String).collect()),
        );
    }
    Ok(())
}

fn edit(mut current: Vec<String>, op: Op, values: &[String]) -> Vec<String> {
    match op {
        Op::Add => current.extend(values.iter().cloned()),
        _ => current.retain(|item| !values.contains(item)),
    }
    current
}
