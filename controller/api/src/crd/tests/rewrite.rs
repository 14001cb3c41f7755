//! The structural rewrite on hand-written schemars output.

use serde_json::json;

use super::super::structural::{StructuralError, structural};

fn rewrite(schema: serde_json::Value) -> Result<serde_json::Value, StructuralError> {
    structural(&schemars::Schema::try_from(schema).expect("a schema"))
}

#[test]
fn inlines_refs_keeping_the_fields_own_description() {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Root",
        "type": "object",
        "properties": {
            "a": { "$ref": "#/$defs/A", "description": "the field's" },
            "b": { "anyOf": [{ "$ref": "#/$defs/A" }, { "type": "null" }] },
        },
        "$defs": {
            "A": {
                "description": "the type's",
                "type": "object",
                "properties": { "n": { "type": ["integer", "null"], "format": "uint16", "minimum": 0 } },
            },
        },
    });
    let inner = json!({
        "type": "object",
        "properties": {
            "n": { "type": "integer", "format": "int32", "minimum": 0, "nullable": true },
        },
    });
    let mut a = inner.clone();
    a["description"] = json!("the field's");
    let mut b = inner;
    b["description"] = json!("the type's");
    b["nullable"] = json!(true);
    assert_eq!(
        rewrite(schema),
        Ok(json!({ "type": "object", "properties": { "a": a, "b": b } }))
    );
}

#[test]
fn free_form_values_and_maps_preserve_unknown_fields() {
    let schema = json!({
        "type": "object",
        "properties": {
            "any": true,
            "described": { "description": "free" },
            "map": { "type": "object", "additionalProperties": true },
            "closed": { "type": "object", "properties": {}, "additionalProperties": false },
        },
    });
    assert_eq!(
        rewrite(schema),
        Ok(json!({
            "type": "object",
            "properties": {
                "any": { "x-kubernetes-preserve-unknown-fields": true },
                "described": { "description": "free", "x-kubernetes-preserve-unknown-fields": true },
                "map": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
                "closed": { "type": "object", "properties": {} },
            },
        }))
    );
}

#[test]
fn unit_enums_and_consts_become_enum() {
    let schema = json!({
        "oneOf": [
            { "type": "string", "const": "Abort" },
            { "type": "string", "enum": ["Overwrite"] },
        ],
        "default": "Abort",
    });
    assert_eq!(
        rewrite(schema),
        Ok(json!({ "type": "string", "enum": ["Abort", "Overwrite"], "default": "Abort" }))
    );
}

#[test]
fn int_or_string_keeps_its_any_of() {
    let schema = json!({ "x-kubernetes-int-or-string": true });
    assert_eq!(
        rewrite(schema),
        Ok(json!({
            "x-kubernetes-int-or-string": true,
            "anyOf": [{ "type": "integer" }, { "type": "string" }],
        }))
    );
}

#[test]
fn defaults_lose_nulls_and_empties() {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": { "r": { "type": "string", "nullable": true }, "p": { "type": "integer" } },
                "default": { "r": null, "zones": [], "p": 1 },
            },
            "status": { "type": "object", "properties": {}, "default": { "conditions": [] } },
        },
    });
    let rewritten = rewrite(schema).expect("structural");
    assert_eq!(
        rewritten["properties"]["spec"]["default"],
        json!({ "p": 1 })
    );
    assert_eq!(rewritten["properties"]["status"].get("default"), None);
}

#[test]
fn what_has_no_structural_form_is_an_error() {
    let recursive = json!({
        "$ref": "#/$defs/Node",
        "$defs": { "Node": { "type": "object", "properties": { "next": { "$ref": "#/$defs/Node" } } } },
    });
    assert_eq!(
        rewrite(recursive),
        Err(StructuralError::InlineRecursive {
            path: ".next".to_owned(),
            reference: "#/$defs/Node".to_owned(),
        })
    );
    let missing = json!({ "type": "object", "properties": { "a": { "$ref": "#/$defs/Gone" } } });
    assert_eq!(
        rewrite(missing),
        Err(StructuralError::ResolveRef {
            path: ".a".to_owned(),
            reference: "#/$defs/Gone".to_owned(),
        })
    );
    let union = json!({ "anyOf": [{ "type": "string" }, { "type": "object", "properties": {} }] });
    assert!(matches!(
        rewrite(union),
        Err(StructuralError::Rewrite { .. })
    ));
    let several = json!({ "type": ["string", "integer"] });
    assert!(matches!(
        rewrite(several),
        Err(StructuralError::Rewrite { .. })
    ));
}

#[test]
fn descriptions_unwrap_paragraphs_and_keep_lists() {
    let schema = json!({
        "type": "string",
        "description": "One sentence\nwrapped.\n\nTwo:\n- a\n- b",
    });
    assert_eq!(
        rewrite(schema).expect("structural")["description"],
        json!("One sentence wrapped.\n\nTwo:\n- a\n- b")
    );
}

#[test]
fn sets_of_scalars_become_list_type_set() {
    let schema = json!({
        "type": "object",
        "properties": {
            "names": { "type": "array", "uniqueItems": true, "items": { "type": "string" } },
            "objects": {
                "type": "array",
                "uniqueItems": true,
                "items": { "type": "object", "properties": {} },
            },
        },
    });
    assert_eq!(
        rewrite(schema),
        Ok(json!({
            "type": "object",
            "properties": {
                "names": {
                    "type": "array",
                    "items": { "type": "string" },
                    "x-kubernetes-list-type": "set",
                },
                "objects": { "type": "array", "items": { "type": "object", "properties": {} } },
            },
        }))
    );
}
