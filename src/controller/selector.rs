//! Label selectors in their string form (a scale subresource's `status.selector`), parsed so
//! pods can be matched from a watch cache instead of a LIST per evaluation.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector};

/// Splits on commas outside parentheses: `a in (x,y),b=c` is two terms.
fn terms(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (vec![], 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn set(values: &str) -> Option<BTreeSet<String>> {
    let inner = values.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

fn expression(term: &str) -> Option<Expression> {
    let t = term.trim();
    if t.is_empty() {
        return None;
    }
    if let Some(k) = t.strip_prefix('!') {
        return Some(Expression::DoesNotExist(k.trim().to_string()));
    }
    if let Some((k, v)) = t.split_once("!=") {
        return Some(Expression::NotEqual(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
        return Some(Expression::Equal(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once(" notin ") {
        return Some(Expression::NotIn(k.trim().into(), set(v)?));
    }
    if let Some((k, v)) = t.split_once(" in ") {
        return Some(Expression::In(k.trim().into(), set(v)?));
    }
    t.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        .then(|| Expression::Exists(t.to_string()))
}

/// The selector, or None when the string is not one this parser understands (the caller
/// then asks the API server).
pub fn parse(s: &str) -> Option<Selector> {
    let exprs: Option<Vec<Expression>> = terms(s).into_iter().map(expression).collect();
    Some(exprs?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::SelectorExt;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_and_set_based_selectors_match_as_the_api_server_does() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let api = labels(&[("app", "api")]);
        let cases = [
            ("app=web", true, false),
            ("app==web,tier=front", true, false),
            ("app!=web", false, true),
            ("app in (web, api)", true, true),
            ("app notin (web),tier", false, false),
            ("!tier", false, true),
            ("tier", true, false),
        ];
        for (s, on_web, on_api) in cases {
            let Some(sel) = parse(s) else {
                panic!("{s} did not parse")
            };
            assert_eq!(
                (sel.matches(&web), sel.matches(&api)),
                (on_web, on_api),
                "{s}"
            );
        }
    }

    #[test]
    fn what_it_cannot_read_is_left_to_the_api_server() {
        assert!(parse("app in web").is_none());
        assert!(parse("a,,b").is_none());
        assert!(parse("app=web,weird$key").is_none());
    }
}
