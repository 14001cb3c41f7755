use serde_json::json;

use super::super::image;
use super::super::reference::ImageRef;
use super::{myapp, override_annotated, override_with};
use meshfleet_api::{ImageOverrider, ImagePredicate};

const DIGEST: &str = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";

fn parts(registry: &str, repository: &str, tag: &str, digest: &str) -> ImageRef {
    ImageRef {
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        digest: digest.to_owned(),
    }
}

#[test]
fn parses_references_as_karmada() {
    let d50 = "sha256:50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c";
    let cases = [
        ("pause", parts("", "pause", "", "")),
        (
            "subpath/imagename:v1.0.0",
            parts("", "subpath/imagename", "v1.0.0", ""),
        ),
        (
            "test-repo/myapp:1.0.0",
            parts("", "test-repo/myapp", "1.0.0", ""),
        ),
        (
            "fictional.registry.example/imagename:v1.0.0",
            parts("fictional.registry.example", "imagename", "v1.0.0", ""),
        ),
        (
            "fictional.registry.example:10443/subpath/imagename:v1.0.0",
            parts(
                "fictional.registry.example:10443",
                "subpath/imagename",
                "v1.0.0",
                "",
            ),
        ),
        (
            &format!("fictional.registry.example:10443/subpath/imagename@{d50}"),
            parts(
                "fictional.registry.example:10443",
                "subpath/imagename",
                "",
                d50,
            ),
        ),
        ("localhost/app", parts("localhost", "app", "", "")),
        ("localhost:5000", parts("", "localhost", "5000", "")),
        (
            "10.10.10.10:10443/a/b",
            parts("10.10.10.10:10443", "a/b", "", ""),
        ),
        ("[::1]:5000/app:v1", parts("[::1]:5000", "app", "v1", "")),
        (
            "Registry.Example/app",
            parts("Registry.Example", "app", "", ""),
        ),
        ("a__b/c-d---e.f", parts("", "a__b/c-d---e.f", "", "")),
        // Karmada splits the registry off by text: a first component with a dot is one.
        ("a__b.c/d", parts("a__b.c", "d", "", "")),
        // Tag and digest: Karmada keeps the tag only.
        (&format!("nginx:1.25@{d50}"), parts("", "nginx", "1.25", "")),
    ];
    for (image, want) in cases {
        let got = ImageRef::parse(image).unwrap_or_else(|e| panic!("{image}: {e}"));
        assert_eq!(got, want, "{image}");
    }
}

#[test]
fn rejects_references_as_distribution() {
    let cases = [
        ("", "repository name must have at least one component"),
        ("Nginx:1.0", "repository name must be lowercase"),
        ("nginx:bad:tag", "invalid reference format"),
        ("a..b", "invalid reference format"),
        ("a___b", "invalid reference format"),
        ("-a", "invalid reference format"),
        ("nginx:", "invalid reference format"),
        ("nginx@sha256:abc", "invalid reference format"),
        (
            "nginx@md5:0123456789abcdef0123456789abcdef",
            "unsupported digest algorithm",
        ),
        (
            "nginx@sha256:0123456789abcdef0123456789abcdef",
            "invalid checksum digest length",
        ),
        (
            "nginx@sha256:DBCC1C35AC38DF41FD2F5E4130B32FFDB93EBAE8B3DBE638C23575912276FC9C",
            "invalid checksum digest format",
        ),
    ];
    for (image, want) in cases {
        assert_eq!(ImageRef::parse(image), Err(want), "{image:?}");
    }
    let long = format!("{}/app", "a".repeat(252));
    assert_eq!(
        ImageRef::parse(&long),
        Err("repository name must not be more than 255 characters")
    );
}

/// (image, component, operator, value, expected): Karmada's docs and `imageoverride_test.go`.
#[test]
fn edits_components() {
    let example = "fictional.registry.example/imagename:v1.0.0";
    let cases = [
        (
            "myapp:1.0.0",
            "Registry",
            "add",
            "test-repo",
            "test-repo/myapp:1.0.0",
        ),
        (
            "myapp:1.0.0",
            "Repository",
            "replace",
            "myapp2",
            "myapp2:1.0.0",
        ),
        ("myapp:1.0.0", "Tag", "remove", "", "myapp"),
        (
            "perl:5.34.0",
            "Registry",
            "add",
            "registry.k8s.io",
            "registry.k8s.io/perl:5.34.0",
        ),
        (
            example,
            "Registry",
            "add",
            ".test",
            "fictional.registry.example.test/imagename:v1.0.0",
        ),
        (
            example,
            "Registry",
            "replace",
            "fictional.registry.us",
            "fictional.registry.us/imagename:v1.0.0",
        ),
        (
            example,
            "Registry",
            "remove",
            "fictional.registry.us",
            "imagename:v1.0.0",
        ),
        (
            example,
            "Repository",
            "add",
            "/nginx",
            "fictional.registry.example/imagename/nginx:v1.0.0",
        ),
        (
            example,
            "Repository",
            "replace",
            "nginx",
            "fictional.registry.example/nginx:v1.0.0",
        ),
        (
            example,
            "Repository",
            "remove",
            "nginx",
            "fictional.registry.example/:v1.0.0",
        ),
        // "v1.0.0sha256:…" is neither a tag nor a digest: nothing changes.
        (example, "Tag", "add", DIGEST, example),
        (
            example,
            "Tag",
            "replace",
            DIGEST,
            &format!("fictional.registry.example/imagename@{DIGEST}"),
        ),
        (
            example,
            "Tag",
            "remove",
            DIGEST,
            "fictional.registry.example/imagename",
        ),
        (
            example,
            "Tag",
            "replace",
            "v2",
            "fictional.registry.example/imagename:v2",
        ),
        (
            example,
            "Tag",
            "add",
            "-debug",
            "fictional.registry.example/imagename:v1.0.0-debug",
        ),
        (example, "Tag", "replace", "not a tag", example),
    ];
    for (image, component, operator, value, want) in cases {
        let mut doc = json!({"image": image});
        let o = ImageOverrider {
            predicate: Some(ImagePredicate {
                path: "/image".to_owned(),
            }),
            component: component.to_owned(),
            operator: operator.to_owned(),
            value: Some(value.to_owned()),
        };
        image::apply(&mut doc, "ConfigMap", &[o], false)
            .unwrap_or_else(|f| panic!("{}", f.message));
        assert_eq!(
            doc,
            json!({"image": want}),
            "{image} {component} {operator} {value}"
        );
    }
}

const ALL: &str = "{meshfleet.io/image-override-all-containers: 'true'}";

#[test]
fn default_targets_containers_and_the_annotation_init_containers_too() {
    let mut doc = myapp(json!([
        {"name": "nginx", "image": "fictional.registry.example/imagename:v1.0.0"},
        {"name": "nginx", "image": "registry.k8s.io/nginx-slim:0.8"}
    ]));
    doc["spec"]["template"]["spec"]["initContainers"] =
        json!([{"name": "init", "image": "busybox"}]);
    let rule = "imageOverrider:\n- {component: Repository, operator: replace, value: nginx}";
    let mut want = myapp(json!([
        {"name": "nginx", "image": "fictional.registry.example/nginx:v1.0.0"},
        {"name": "nginx", "image": "registry.k8s.io/nginx:0.8"}
    ]));
    // As Karmada: init containers are left alone.
    want["spec"]["template"]["spec"]["initContainers"] =
        json!([{"name": "init", "image": "busybox"}]);
    assert_eq!(override_with(doc.clone(), rule), Ok(want.clone()));
    want["spec"]["template"]["spec"]["initContainers"] =
        json!([{"name": "init", "image": "nginx"}]);
    assert_eq!(override_annotated(doc, rule, ALL), Ok(want));
}

#[test]
fn default_covers_pods_and_the_annotation_cronjobs_too() {
    let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "app:1"}]}});
    let cron = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "app:1"}]}}}}}});
    let other = json!({"kind": "ReplicationController", "spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "app:1"}]}}}});
    let add = "imageOverrider:\n- {component: Registry, operator: add, value: reg.example}";
    let mut want_pod = pod.clone();
    want_pod["spec"]["containers"][0]["image"] = json!("reg.example/app:1");
    let mut want_cron = cron.clone();
    want_cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("reg.example/app:1");
    assert_eq!(override_with(pod, add), Ok(want_pod));
    assert_eq!(override_with(cron.clone(), add), Ok(cron.clone()));
    assert_eq!(override_annotated(cron, add, ALL), Ok(want_cron));
    assert_eq!(override_annotated(other.clone(), add, ALL), Ok(other));
}

#[test]
fn bad_images_and_paths_are_errors_that_quote_no_value() {
    let cases = [
        (
            myapp(json!([{"name": "a", "image": "Secret-Looking:Value"}])),
            "imageOverrider:\n- {component: Tag, operator: remove}",
            "ClusterOverridePolicy op spec.overrideRules[0].overriders.imageOverrider[0]: \
             image at /spec/template/spec/containers/0/image: repository name must be lowercase",
        ),
        (
            myapp(json!([{"name": "a"}])),
            "imageOverrider:\n- {component: Tag, operator: remove}",
            "ClusterOverridePolicy op spec.overrideRules[0].overriders.imageOverrider[0]: \
             image at /spec/template/spec/containers/0/image: repository name must have at least one component",
        ),
        (
            myapp(json!([{"name": "a", "image": "app"}])),
            "imageOverrider:\n- {predicate: {path: /spec/template/spec/containers/1/image}, component: Tag, operator: remove}",
            "ClusterOverridePolicy op spec.overrideRules[0].overriders.imageOverrider[0]: \
             path /spec/template/spec/containers/1/image does not exist",
        ),
        (
            myapp(json!([{"name": "a", "image": "app"}])),
            "imageOverrider:\n- {component: Digest, operator: remove}",
            "ClusterOverridePolicy op spec.overrideRules[0].overriders.imageOverrider[0]: \
             unsupported component \"Digest\"",
        ),
        (
            json!({"kind": "Deployment", "spec": "not an object"}),
            "imageOverrider:\n- {component: Tag, operator: remove}",
            "ClusterOverridePolicy op spec.overrideRules[0].overriders.imageOverrider[0]: \
             /spec is not an object",
        ),
    ];
    for (doc, overriders, want) in cases {
        let got = override_with(doc, overriders).map_err(|e| e.to_string());
        assert_eq!(got, Err(want.to_owned()));
    }
}
