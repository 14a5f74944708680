//! Matching URIs against RFC 6570 templates, for resource templates. Level-1 `{var}` and
//! reserved `{+var}` expressions are supported: enough for resource URIs, and small enough to
//! read. A simple variable never spans `/`, `?` or `#`, so `notes://{id}` cannot be stretched
//! over a path.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable { name: String, reserved: bool },
}

/// A parsed URI template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    parts: Vec<Part>,
}

impl UriTemplate {
    /// Parses a template; operators other than `+`, and two variables in a row, are refused.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or_else(|| format!("unclosed `{{` in `{template}`"))? + open;
            let expression = &rest[open + 1..close];
            let (name, reserved) = match expression.strip_prefix('+') {
                Some(name) => (name, true),
                None => (expression, false),
            };
            let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!("unsupported expression `{{{expression}}}` in `{template}`"));
            }
            if matches!(parts.last(), Some(Part::Variable { .. })) {
                return Err(format!("two variables in a row in `{template}` cannot be told apart"));
            }
            parts.push(Part::Variable { name: name.to_owned(), reserved });
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("stray `}}` in `{template}`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(UriTemplate { parts })
    }

    /// The variables of `uri` if it matches, else `None`.
    pub fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        let mut values = BTreeMap::new();
        let mut rest = uri;
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(literal) => rest = rest.strip_prefix(literal.as_str())?,
                Part::Variable { name, reserved } => {
                    let end = match self.parts.get(i + 1) {
                        Some(Part::Literal(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    let value = &rest[..end];
                    let forbidden: &[char] = if *reserved { &[] } else { &['/', '?', '#'] };
                    if value.is_empty() || value.contains(forbidden) {
                        return None;
                    }
                    values.insert(name.clone(), value.to_owned());
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_variables_match_one_segment() {
        let template = UriTemplate::parse("test://template/{id}/data").unwrap();
        assert_eq!(template.matches("test://template/123/data").unwrap()["id"], "123");
        assert!(template.matches("test://template/1/2/data").is_none());
        assert!(template.matches("test://template//data").is_none());
        assert!(template.matches("test://template/123/data/extra").is_none());
    }

    #[test]
    fn reserved_variables_span_paths() {
        let template = UriTemplate::parse("file:///{+path}").unwrap();
        assert_eq!(template.matches("file:///a/b/c.txt").unwrap()["path"], "a/b/c.txt");
    }

    #[test]
    fn unsupported_templates_are_refused() {
        assert!(UriTemplate::parse("x://{?q}").is_err());
        assert!(UriTemplate::parse("x://{a}{b}").is_err());
        assert!(UriTemplate::parse("x://{a").is_err());
    }
}
