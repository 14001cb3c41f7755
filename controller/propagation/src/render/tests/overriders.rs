use serde_json::json;

use super::{myapp, override_with};

fn myapp_command(command: serde_json::Value) -> serde_json::Value {
    myapp(json!([{"image": "myapp", "name": "myapp", "command": command}]))
}

/// Karmada docs, CommandOverrider examples 1 and 2, and the same for args.
#[test]
fn command_and_args_add_and_remove() {
    let start = json!(["./myapp", "--parameter1=foo", "--parameter2=bar"]);
    let cases = [
        (
            "commandOverrider:\n- {containerName: myapp, operator: add, value: [--cluster=member1]}",
            json!([
                "./myapp",
                "--parameter1=foo",
                "--parameter2=bar",
                "--cluster=member1"
            ]),
        ),
        (
            "commandOverrider:\n- {containerName: myapp, operator: remove, value: [--parameter1=foo]}",
            json!(["./myapp", "--parameter2=bar"]),
        ),
        (
            "commandOverrider:\n- {containerName: other, operator: add, value: [--x]}",
            start.clone(),
        ),
    ];
    for (overriders, want) in cases {
        assert_eq!(
            override_with(myapp_command(start.clone()), overriders),
            Ok(myapp_command(want)),
            "{overriders}"
        );
    }
    let args = override_with(
        myapp(json!([{"name": "myapp", "image": "myapp"}])),
        "argsOverrider:\n- {containerName: myapp, operator: add, value: [-v, '2']}\n\
         - {containerName: myapp, operator: remove, value: [-q]}",
    );
    assert_eq!(
        args,
        Ok(myapp(
            json!([{"name": "myapp", "image": "myapp", "args": ["-v", "2"]}])
        ))
    );
}

#[test]
fn command_remove_on_a_container_without_one_writes_an_empty_list() {
    let got = override_with(
        myapp(json!([{"name": "myapp", "image": "myapp"}, {"image": "sidecar"}])),
        "commandOverrider:\n- {containerName: myapp, operator: remove, value: [--x]}",
    );
    assert_eq!(
        got,
        Ok(myapp(json!([
            {"name": "myapp", "image": "myapp", "command": []},
            {"image": "sidecar"}
        ])))
    );
}

#[test]
fn command_errors() {
    let cases = [
        (
            myapp_command(json!("./myapp --x")),
            "commandOverrider:\n- {containerName: myapp, operator: add, value: [--y]}",
            "ClusterOverridePolicy op spec.overrideRules[0].overriders.commandOverrider[0]: \
             /spec/template/spec/containers/0/command is not a list of strings",
        ),
        (
            myapp_command(json!([])),
            "argsOverrider:\n- {containerName: myapp, operator: replace, value: [--y]}",
            "ClusterOverridePolicy op spec.overrideRules[0].overriders.argsOverrider[0]: \
             unsupported operator \"replace\"",
        ),
    ];
    for (doc, overriders, want) in cases {
        assert_eq!(
            override_with(doc, overriders).map_err(|e| e.to_string()),
            Err(want.to_owned())
        );
    }
}

/// Karmada docs, LabelsOverrider example, and Karmada's tests (composed keys, absent map).
#[test]
fn labels_and_annotations() {
    let labelled = |labels: serde_json::Value| json!({"kind": "Deployment", "metadata": {"name": "myapp", "labels": labels}});
    let docs_example = "labelsOverrider:\n\
        - {operator: add, value: {bar: bar}}\n\
        - {operator: replace, value: {foo: exist, non-exist: non-exist}}\n\
        - {operator: remove, value: {baz: baz, non-exist: non-exist}}";
    assert_eq!(
        override_with(labelled(json!({"foo": "foo", "baz": "baz"})), docs_example),
        Ok(labelled(json!({"foo": "exist", "bar": "bar"})))
    );
    let no_annotations = json!({"kind": "Deployment", "metadata": {"name": "myapp"}});
    let got = override_with(
        no_annotations,
        "annotationsOverrider:\n- {operator: add, value: {testannotation/projectId: 'c-m-lfx9lk92:p-v86cf'}}\n\
         - {operator: remove, value: {absent: x}}",
    );
    assert_eq!(
        got,
        Ok(json!({"kind": "Deployment", "metadata": {"name": "myapp",
            "annotations": {"testannotation/projectId": "c-m-lfx9lk92:p-v86cf"}}}))
    );
}

/// Karmada docs, PlaintextOverrider example 1.
#[test]
fn plaintext_replaces_configmap_data() {
    let cm = |v: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "myconfigmap"}, "data": {"example": v}})
    };
    assert_eq!(
        override_with(
            cm(json!(1)),
            "plaintext:\n- {path: /data/example, operator: replace, value: 2}"
        ),
        Ok(cm(json!(2)))
    );
}

#[test]
fn plaintext_add_remove_with_arrays_and_escapes() {
    let doc = json!({"kind": "Deployment", "metadata": {"labels": {"app.kubernetes.io/name": "x", "a~b": "y"}},
        "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}});
    let got = override_with(
        doc,
        "plaintext:\n\
         - {path: /spec/template/spec/containers/-, operator: add, value: {name: c}}\n\
         - {path: /spec/template/spec/containers/0, operator: remove}\n\
         - {path: /metadata/labels/app.kubernetes.io~1name, operator: replace, value: z}\n\
         - {path: /metadata/labels/a~0b, operator: remove}\n\
         - {path: /spec/replicas, operator: add, value: 3}",
    );
    assert_eq!(
        got,
        Ok(
            json!({"kind": "Deployment", "metadata": {"labels": {"app.kubernetes.io/name": "z"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "b"}, {"name": "c"}]}}}})
        )
    );
}

#[test]
fn plaintext_that_does_not_apply_is_an_error() {
    let doc = || json!({"kind": "ConfigMap", "data": {"a": "1"}, "list": [1]});
    let field = "ClusterOverridePolicy op spec.overrideRules[0].overriders.plaintext";
    let cases = [
        (
            "- {path: /spec/foo, operator: replace, value: 1}",
            "[0]: path /spec/foo does not exist",
        ),
        (
            "- {path: /data/b, operator: remove}",
            "[0]: path /data/b does not exist",
        ),
        (
            "- {path: /spec/foo/bar, operator: add, value: 1}",
            "[0]: parent of path /spec/foo/bar does not exist",
        ),
        (
            "- {path: /list/01, operator: replace, value: 1}",
            "[0]: path /list/01 does not exist",
        ),
        (
            "- {path: /list/2, operator: add, value: 1}",
            "[0]: path /list/2 is not a valid array position",
        ),
        (
            "- {path: /data/a, operator: add, value: 2}\n- {path: data, operator: add}",
            "[1]: path data does not start with /",
        ),
        (
            "- {path: /data, operator: move}",
            "[0]: unsupported operator \"move\"",
        ),
        (
            "- {path: '', operator: remove}",
            "[0]: cannot remove the whole object",
        ),
    ];
    for (ops, want) in cases {
        let got = override_with(doc(), &format!("plaintext:\n{ops}")).map_err(|e| e.to_string());
        assert_eq!(got, Err(format!("{field}{want}")), "{ops}");
    }
}

/// Karmada docs, FieldOverrider: patch YAML and JSON held in a ConfigMap.
#[test]
fn field_overrider_patches_yaml_and_json_text() {
    let cm = |yaml: &str, json: &str| {
        json!({"kind": "ConfigMap", "metadata": {"name": "myconfigmap"},
        "data": {"db-config.yaml": yaml, "db-config.json": json}})
    };
    let got = override_with(
        cm(
            "database:\n  host: localhost\n  port: 3306\n",
            r#"{"db": {"host": "localhost", "port": 3306}}"#,
        ),
        "fieldOverrider:\n\
         - fieldPath: /data/db-config.yaml\n  yaml:\n\
         \x20 - {subPath: /database/host, operator: replace, value: remote-db.example.com}\n\
         \x20 - {subPath: /database/ssl, operator: add, value: true}\n\
         - fieldPath: /data/db-config.json\n  json:\n\
         \x20 - {subPath: /db/port, operator: remove}",
    );
    assert_eq!(
        got,
        Ok(cm(
            "database:\n  host: remote-db.example.com\n  port: 3306\n  ssl: true\n",
            r#"{"db":{"host":"localhost"}}"#
        ))
    );
}

#[test]
fn field_overrider_errors_quote_no_content() {
    let secret = json!({"kind": "Secret", "stringData": {"conf": "password: [hunter2", "n": 1}});
    let field = "ClusterOverridePolicy op spec.overrideRules[0].overriders.fieldOverrider";
    let cases = [
        (
            "- fieldPath: /stringData/conf\n  yaml: [{subPath: /a, operator: remove}]",
            "[0]: value at /stringData/conf is not valid YAML (line 2, column 1)",
        ),
        (
            "- fieldPath: /stringData/n\n  json: [{subPath: /a, operator: remove}]",
            "[0]: value at /stringData/n is not a string",
        ),
        (
            "- fieldPath: /stringData/conf",
            "[0]: one of json or yaml is required",
        ),
        (
            "- fieldPath: /stringData/conf\n  json: [{subPath: /a, operator: remove}]",
            "[0]: value at /stringData/conf is not valid JSON (line 1, column 1)",
        ),
    ];
    for (ops, want) in cases {
        let got = override_with(secret.clone(), &format!("fieldOverrider:\n{ops}"))
            .map_err(|e| e.to_string());
        assert_eq!(got, Err(format!("{field}{want}")), "{ops}");
        assert!(!got.unwrap_err().contains("hunter2"));
    }
    let cm = json!({"kind": "ConfigMap", "data": {"c": "a: 1\n"}});
    let got = override_with(
        cm,
        "fieldOverrider:\n- fieldPath: /data/c\n  yaml:\n  - {subPath: /a, operator: add, value: 2}\n  - {subPath: /b/c, operator: replace, value: 3}",
    );
    assert_eq!(
        got.map_err(|e| e.to_string()),
        Err(format!("{field}[0].yaml[1]: path /b/c does not exist"))
    );
}
