//! The CRD reference for the docs (`headroom crd --reference`), written from the same schema
//! as `crds/`, so the two cannot disagree.

use serde_json::Value;

/// The ScalingPolicy reference as Markdown: one table row per field of `spec` and `status`.
pub fn crd_reference() -> Result<String, serde_json::Error> {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(super::ScalingPolicy::crd())?;
    let version = &crd["spec"]["versions"][0];
    let root = &version["schema"]["openAPIV3Schema"]["properties"];
    let mut out = format!(
        "# ScalingPolicy reference\n\n\
         `{group}/{name}`, kind `ScalingPolicy` (short name `sp`), namespaced. Generated from the \
         CRD's schema by `headroom crd --reference`; a test fails when this page is stale. \
         Types are the schema's; *required* fields have no default.\n",
        group = crd["spec"]["group"].as_str().unwrap_or_default(),
        name = version["name"].as_str().unwrap_or_default(),
    );
    for section in ["spec", "status"] {
        out.push_str(&format!(
            "\n## `{section}`\n\n| field | type | required | constraints | description |\n|---|---|---|---|---|\n"
        ));
        let mut rows = Vec::new();
        walk(&root[section], section, &mut rows);
        for row in rows {
            out.push_str(&row);
        }
    }
    Ok(out)
}

/// Appends a row for each field under `schema`, depth first, in the schema's order.
fn walk(schema: &Value, path: &str, rows: &mut Vec<String>) {
    let Some(props) = schema["properties"].as_object() else {
        if let Some(items) = schema.get("items") {
            walk(items, &format!("{path}[]"), rows);
        }
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, field) in props {
        let here = format!("{path}.{name}");
        rows.push(format!(
            "| `{here}` | {} | {} | {} | {} |\n",
            type_of(field),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                ""
            },
            cell(&constraints(field)),
            cell(&first_paragraph(field)),
        ));
        walk(field, &here, rows);
    }
}

fn type_of(field: &Value) -> String {
    let base = field["type"].as_str().unwrap_or("any");
    match base {
        "array" => format!("[]{}", type_of(&field["items"])),
        "object" if field.get("additionalProperties").is_some() => {
            format!("map[string]{}", type_of(&field["additionalProperties"]))
        }
        _ => match field["format"].as_str() {
            Some(f) => format!("{base} ({f})"),
            None => base.to_string(),
        },
    }
}

fn constraints(field: &Value) -> String {
    let mut c = Vec::new();
    if let Some(e) = field["enum"].as_array() {
        let values: Vec<String> = e.iter().map(|v| format!("`{}`", plain(v))).collect();
        c.push(format!("one of {}", values.join(", ")));
    }
    for (key, label) in [
        ("default", "default"),
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("pattern", "pattern"),
    ] {
        if let Some(v) = field.get(key) {
            c.push(format!("{label} `{}`", plain(v)));
        }
    }
    if let Some(rules) = field["x-kubernetes-validations"].as_array() {
        for r in rules {
            let said = r["message"].as_str().or(r["rule"].as_str()).unwrap_or("");
            c.push(format!("rule: {said}"));
        }
    }
    c.join("; ")
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // The schema's bounds are floats (`1.0`); a whole one reads as the integer it bounds.
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn first_paragraph(field: &Value) -> String {
    let text = field["description"].as_str().unwrap_or("");
    text.split("\n\n").next().unwrap_or("").to_string()
}

/// One table cell: a line, with the pipes escaped and the length kept readable.
fn cell(text: &str) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_field_of_the_schema_has_a_row() {
        let md = crd_reference().unwrap_or_default();
        for field in [
            "`spec.targetRef.name`",
            "`spec.signals[].cpu.saturation.throttledPercent`",
            "`spec.guardrails.connectionBudget.maxConnections`",
            "`spec.predictive.minSkill`",
            "`status.conditions[].reason`",
        ] {
            assert!(md.contains(field), "{field} missing");
        }
    }

    #[test]
    fn a_pipe_in_a_pattern_does_not_split_the_row() {
        assert_eq!(cell("a|b\n c"), "a\\|b c");
    }
}
