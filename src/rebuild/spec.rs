//! `RebuildSpec`: the changes one rebuild makes to one table, parsed from command-line style
//! strings (`--enum status=draft,posted`) so the CLI can pass its arguments straight through.
//!
//! Invariants: a parsed change is syntactically valid SQL where it carries SQL (types, values,
//! expressions are single balanced fragments without `;`); whether the columns exist is checked
//! against the schema later, when the change is applied.

use super::RebuildError;
use crate::sql::{significant, unquote, Kind};

/// One change to a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// Replace the column's `CHECK (col IN (…))` with these values (or add one).
    Enum { column: String, values: Vec<String> },
    /// Replace the column's CHECK constraints with `CHECK (expr)`.
    Check { column: String, expr: String },
    /// Remove the column's CHECK constraints.
    DropCheck { column: String },
    /// Change the declared type (no CAST: SQLite's affinity converts what converts).
    Type { column: String, ty: String },
    /// Add NOT NULL; existing NULLs become `fill` when given.
    NotNull {
        column: String,
        fill: Option<String>,
    },
    /// Remove NOT NULL.
    Nullable { column: String },
    /// Set the DEFAULT.
    Default { column: String, value: String },
    /// Remove the DEFAULT.
    DropDefault { column: String },
    /// Rename a column (SQLite's RENAME COLUMN carries it into indexes, triggers, views, children).
    Rename { from: String, to: String },
    /// Drop a column.
    Drop { column: String },
    /// Add `REFERENCES table(parent_column) [ON DELETE action]` to a column.
    AddFk {
        column: String,
        table: String,
        parent_column: String,
        on_delete: Option<String>,
    },
    /// Remove the column's foreign key.
    DropFk { column: String },
    /// Add `UNIQUE (columns…)`.
    Unique { columns: Vec<String> },
}

/// Every change flag, as the CLI spells it (without `--`).
pub const FLAGS: &[&str] = &[
    "enum",
    "check",
    "drop-check",
    "type",
    "not-null",
    "nullable",
    "default",
    "drop-default",
    "rename",
    "drop",
    "add-fk",
    "drop-fk",
    "unique",
];

/// The changes to make to one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RebuildSpec {
    pub table: String,
    pub changes: Vec<Change>,
}

impl RebuildSpec {
    /// Parse `["--enum", "status=a,b", "--drop=body", …]` (a flag and its value as two items or
    /// joined by `=`).
    pub fn from_args<S: AsRef<str>>(table: &str, args: &[S]) -> Result<Self, RebuildError> {
        let mut changes = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_ref();
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(invalid(
                    arg,
                    "expected a change flag such as --enum or --drop",
                ));
            };
            let (flag, value) = match flag.split_once('=') {
                Some((f, v)) if FLAGS.contains(&f) => (f, v.to_string()),
                _ => {
                    i += 1;
                    let Some(v) = args.get(i) else {
                        return Err(invalid(arg, "missing value"));
                    };
                    (flag, v.as_ref().to_string())
                }
            };
            changes.push(Change::parse(flag, &value)?);
            i += 1;
        }
        Self::new(table, changes)
    }

    /// A spec from already parsed changes; refuses an empty list.
    pub fn new(table: &str, changes: Vec<Change>) -> Result<Self, RebuildError> {
        if table.trim().is_empty() {
            return Err(invalid(table, "the table name is empty"));
        }
        if changes.is_empty() {
            return Err(invalid(
                table,
                "no change given (for example --enum COL=a,b or --drop COL)",
            ));
        }
        Ok(Self {
            table: table.to_string(),
            changes,
        })
    }
}

fn invalid(arg: &str, reason: &str) -> RebuildError {
    RebuildError::InvalidChange {
        arg: arg.to_string(),
        reason: reason.to_string(),
    }
}

impl Change {
    /// Parse one change: `flag` without `--`, `value` as typed.
    pub fn parse(flag: &str, value: &str) -> Result<Self, RebuildError> {
        let arg = format!("--{flag} {value}");
        let bad = |reason: &str| invalid(&arg, reason);
        if value.contains(['\n', '\r', '\0']) {
            return Err(bad("values cannot contain line breaks"));
        }
        let single = |v: &str| -> Result<String, RebuildError> {
            let name = column_name(v).ok_or_else(|| bad("expected a column name"))?;
            Ok(name)
        };
        let pair = || -> Result<(String, String), RebuildError> {
            let (col, rest) = split_name(value).ok_or_else(|| bad("expected COL=VALUE"))?;
            Ok((col, rest.to_string()))
        };
        let change = match flag {
            "enum" => {
                let (column, list) = pair()?;
                let values: Vec<String> = list.split(',').map(|v| v.trim().to_string()).collect();
                if values.iter().any(String::is_empty) {
                    return Err(bad("enum values cannot be empty (COL=a,b,c)"));
                }
                let mut seen = std::collections::BTreeSet::new();
                if let Some(dup) = values.iter().find(|v| !seen.insert(v.as_str())) {
                    return Err(bad(&format!("value {dup:?} is listed twice")));
                }
                Change::Enum { column, values }
            }
            "check" => {
                let (column, expr) = pair()?;
                check_fragment(&expr).map_err(|r| bad(&r))?;
                Change::Check { column, expr }
            }
            "drop-check" => Change::DropCheck {
                column: single(value)?,
            },
            "type" => {
                let (column, ty) = pair()?;
                check_type(&ty).map_err(|r| bad(&r))?;
                Change::Type {
                    column,
                    ty: ty.trim().to_string(),
                }
            }
            "not-null" => match split_name(value) {
                Some((column, fill)) => {
                    check_value(fill).map_err(|r| bad(&r))?;
                    Change::NotNull {
                        column,
                        fill: Some(fill.trim().to_string()),
                    }
                }
                None => Change::NotNull {
                    column: single(value)?,
                    fill: None,
                },
            },
            "nullable" => Change::Nullable {
                column: single(value)?,
            },
            "default" => {
                let (column, v) = pair()?;
                check_value(&v).map_err(|r| bad(&r))?;
                Change::Default {
                    column,
                    value: v.trim().to_string(),
                }
            }
            "drop-default" => Change::DropDefault {
                column: single(value)?,
            },
            "rename" => {
                let (from, to) = pair()?;
                let to = column_name(&to).ok_or_else(|| bad("expected OLD=NEW"))?;
                Change::Rename { from, to }
            }
            "drop" => Change::Drop {
                column: single(value)?,
            },
            "add-fk" => {
                let (column, target) = pair()?;
                let (reference, action) = match target.rsplit_once(':') {
                    Some((r, a)) if !a.contains(')') => {
                        (r, Some(on_delete_action(a).map_err(|r| bad(&r))?))
                    }
                    _ => (target.as_str(), None),
                };
                let (table, parent) = reference
                    .trim()
                    .strip_suffix(')')
                    .and_then(|r| r.split_once('('))
                    .ok_or_else(|| bad("expected COL=TABLE(COL)[:on-delete-action]"))?;
                let table = column_name(table).ok_or_else(|| bad("expected a table name"))?;
                let parent_column =
                    column_name(parent).ok_or_else(|| bad("expected a parent column name"))?;
                Change::AddFk {
                    column,
                    table,
                    parent_column,
                    on_delete: action,
                }
            }
            "drop-fk" => Change::DropFk {
                column: single(value)?,
            },
            "unique" => {
                let columns = value
                    .split(',')
                    .map(|c| column_name(c).ok_or_else(|| bad("expected COL[,COL…]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Change::Unique { columns }
            }
            _ => {
                return Err(bad(&format!(
                    "unknown change; expected one of --{}",
                    FLAGS.join(", --")
                )))
            }
        };
        Ok(change)
    }

    /// The change as command-line arguments (round-trips through [`Change::parse`]).
    pub fn to_arg(&self) -> String {
        let n = display_name;
        match self {
            Change::Enum { column, values } => format!("--enum {}={}", n(column), values.join(",")),
            Change::Check { column, expr } => format!("--check {}={expr}", n(column)),
            Change::DropCheck { column } => format!("--drop-check {}", n(column)),
            Change::Type { column, ty } => format!("--type {}={ty}", n(column)),
            Change::NotNull { column, fill: None } => format!("--not-null {}", n(column)),
            Change::NotNull {
                column,
                fill: Some(f),
            } => format!("--not-null {}={f}", n(column)),
            Change::Nullable { column } => format!("--nullable {}", n(column)),
            Change::Default { column, value } => format!("--default {}={value}", n(column)),
            Change::DropDefault { column } => format!("--drop-default {}", n(column)),
            Change::Rename { from, to } => format!("--rename {}={}", n(from), n(to)),
            Change::Drop { column } => format!("--drop {}", n(column)),
            Change::AddFk {
                column,
                table,
                parent_column,
                on_delete,
            } => {
                let action = on_delete
                    .as_ref()
                    .map(|a| format!(":{}", a.to_ascii_lowercase().replace(' ', "-")))
                    .unwrap_or_default();
                format!(
                    "--add-fk {}={}({}){action}",
                    n(column),
                    n(table),
                    n(parent_column)
                )
            }
            Change::DropFk { column } => format!("--drop-fk {}", n(column)),
            Change::Unique { columns } => format!(
                "--unique {}",
                columns.iter().map(|c| n(c)).collect::<Vec<_>>().join(",")
            ),
        }
    }

    /// The column this change is about (the first one for `--unique`, the old name for a rename).
    pub fn column(&self) -> &str {
        match self {
            Change::Enum { column, .. }
            | Change::Check { column, .. }
            | Change::DropCheck { column }
            | Change::Type { column, .. }
            | Change::NotNull { column, .. }
            | Change::Nullable { column }
            | Change::Default { column, .. }
            | Change::DropDefault { column }
            | Change::Drop { column }
            | Change::AddFk { column, .. }
            | Change::DropFk { column } => column,
            Change::Rename { from, .. } => from,
            Change::Unique { columns } => &columns[0],
        }
    }
}

/// A name as typed: plain text, or a double-quoted identifier (for names with `=`, `,` or spaces
/// at the ends).
fn column_name(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if t.starts_with('"') {
        let toks = significant(t);
        return match toks.as_slice() {
            [one] if one.kind == Kind::QuotedIdent && one.end == t.len() => Some(unquote(t)),
            _ => None,
        };
    }
    Some(t.to_string())
}

/// Split `COL=REST` where COL may be a double-quoted identifier containing `=`.
fn split_name(value: &str) -> Option<(String, &str)> {
    let v = value.trim_start();
    if v.starts_with('"') {
        let first = *significant(v).first()?;
        let rest = v[first.end..].trim_start().strip_prefix('=')?;
        return Some((unquote(first.text(v)), rest));
    }
    let (col, rest) = v.split_once('=')?;
    Some((column_name(col)?, rest))
}

fn display_name(name: &str) -> String {
    if name.contains(['=', ',', '(', ')', ':', '"']) || name.trim() != name || name.is_empty() {
        crate::sql::quote_ident(name)
    } else {
        name.to_string()
    }
}

/// An expression fragment: non-empty, balanced parentheses, no top-level `;`.
fn check_fragment(expr: &str) -> Result<(), String> {
    let toks = significant(expr);
    if toks.is_empty() {
        return Err("the expression is empty".into());
    }
    let mut depth: i32 = 0;
    for t in &toks {
        match t.kind {
            Kind::LParen => depth += 1,
            Kind::RParen => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced parentheses".into());
                }
            }
            Kind::Semi => return Err("an expression cannot contain ;".into()),
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    let last = toks[toks.len() - 1];
    if matches!(last.kind, Kind::String | Kind::QuotedIdent) && !closes(last.text(expr)) {
        return Err("unterminated quote".into());
    }
    Ok(())
}

fn closes(text: &str) -> bool {
    let q = text.as_bytes()[0];
    let close = if q == b'[' { b']' } else { q };
    text.len() >= 2 && text.as_bytes()[text.len() - 1] == close
}

/// A DEFAULT value or NOT NULL fill: a literal, a signed number, a keyword literal, or a
/// parenthesised expression. A bare word would be ambiguous (a column? a string?), so it is
/// refused with a hint to quote it.
fn check_value(value: &str) -> Result<(), String> {
    check_fragment(value)?;
    let toks = significant(value);
    let src = value;
    let ok = match toks.as_slice() {
        [t] => match t.kind {
            Kind::String | Kind::Blob | Kind::Number => closes_if_quoted(t.text(src)),
            Kind::Word => [
                "NULL",
                "TRUE",
                "FALSE",
                "CURRENT_TIME",
                "CURRENT_DATE",
                "CURRENT_TIMESTAMP",
            ]
            .iter()
            .any(|k| t.text(src).eq_ignore_ascii_case(k)),
            _ => false,
        },
        [sign, n] => {
            sign.kind == Kind::Op && matches!(sign.text(src), "+" | "-") && n.kind == Kind::Number
        }
        [first, .., last] => {
            first.kind == Kind::LParen && last.kind == Kind::RParen && {
                // the first ( must close at the very end
                let mut depth = 0;
                toks.iter().enumerate().all(|(i, t)| {
                    match t.kind {
                        Kind::LParen => depth += 1,
                        Kind::RParen => depth -= 1,
                        _ => {}
                    }
                    depth > 0 || i == toks.len() - 1
                })
            }
        }
        [] => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a SQL literal; quote text ('{}') or wrap an expression in parentheses",
            value.trim().replace('\'', "''")
        ))
    }
}

fn closes_if_quoted(text: &str) -> bool {
    match text.as_bytes()[0] {
        b'\'' => closes(text),
        b'x' | b'X' => text.len() >= 3 && text.ends_with('\''),
        _ => true,
    }
}

/// A type name: words, optionally followed by `(n)` or `(n, m)`.
fn check_type(ty: &str) -> Result<(), String> {
    let toks = significant(ty);
    let words = toks.iter().take_while(|t| t.kind == Kind::Word).count();
    if words == 0 {
        return Err("expected a type name such as TEXT or INTEGER".into());
    }
    let rest: Vec<_> = toks[words..].iter().map(|t| (t.kind, t.text(ty))).collect();
    let ok = matches!(
        rest.as_slice(),
        [] | [(Kind::LParen, _), (Kind::Number, _), (Kind::RParen, _)]
            | [
                (Kind::LParen, _),
                (Kind::Number, _),
                (Kind::Comma, _),
                (Kind::Number, _),
                (Kind::RParen, _)
            ]
    );

    if ok {
        Ok(())
    } else {
        Err(format!(
            "{ty:?} is not a type name (words, then optional (n) or (n, m))"
        ))
    }
}

fn on_delete_action(a: &str) -> Result<String, String> {
    let norm = a.trim().to_ascii_uppercase().replace(['-', '_'], " ");
    match norm.as_str() {
        "CASCADE" | "SET NULL" | "SET DEFAULT" | "RESTRICT" | "NO ACTION" => Ok(norm),
        _ => Err(format!(
            "unknown on-delete action {a:?}; expected cascade, set-null, set-default, restrict or no-action"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_flag_and_round_trips() {
        let args = [
            "--enum",
            "status=draft, scheduled,posted",
            "--check",
            "n=n > 0 AND n < 10",
            "--drop-check=m",
            "--type",
            "price=NUMERIC(10, 2)",
            "--not-null",
            "full_name=''",
            "--not-null",
            "email",
            "--nullable",
            "x",
            "--default",
            "created=CURRENT_TIMESTAMP",
            "--default",
            "n=-1",
            "--default",
            "d=(datetime('now'))",
            "--drop-default",
            "y",
            "--rename",
            "\"a=b\"=c",
            "--drop",
            "old",
            "--add-fk",
            "author_id=users(id):set-null",
            "--add-fk",
            "p=\"my t\"(id)",
            "--drop-fk",
            "q",
            "--unique",
            "a,b",
        ];
        let spec = RebuildSpec::from_args("posts", &args).unwrap();
        assert_eq!(spec.changes.len(), 17);
        assert_eq!(
            spec.changes[0],
            Change::Enum {
                column: "status".into(),
                values: vec!["draft".into(), "scheduled".into(), "posted".into()]
            }
        );
        assert_eq!(
            spec.changes[11],
            Change::Rename {
                from: "a=b".into(),
                to: "c".into()
            }
        );
        assert_eq!(
            spec.changes[13],
            Change::AddFk {
                column: "author_id".into(),
                table: "users".into(),
                parent_column: "id".into(),
                on_delete: Some("SET NULL".into())
            }
        );
        for c in &spec.changes {
            let arg = c.to_arg();
            let (flag, value) = arg[2..].split_once(' ').unwrap();
            assert_eq!(&Change::parse(flag, value).unwrap(), c, "{arg}");
        }
    }

    #[test]
    fn refuses_ambiguous_or_broken_values() {
        for (flag, value) in [
            ("default", "s=draft"),
            ("not-null", "s=x y"),
            ("check", "n=(n > 0"),
            ("check", "n=1; DROP TABLE t"),
            ("type", "n=INT; x"),
            ("enum", "s=a,,b"),
            ("enum", "s=a,a"),
            ("add-fk", "a=users"),
            ("add-fk", "a=users(id):explode"),
            ("rename", "a"),
            ("frobnicate", "a"),
        ] {
            let err = Change::parse(flag, value).unwrap_err();
            assert_eq!(err.code(), "rebuild-invalid-change", "{flag} {value}");
        }
        assert!(RebuildSpec::from_args::<&str>("t", &[]).is_err());
        assert!(RebuildSpec::from_args("t", &["--drop"]).is_err());
        assert!(RebuildSpec::from_args("t", &["drop", "x"]).is_err());
    }
}
