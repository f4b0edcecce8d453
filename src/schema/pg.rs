//! PostgreSQL's schema, read into the one [`Model`] from the catalog's own DDL, so that "same
//! schema" has one meaning and one diff on both engines.
//!
//! Every object's text is what the server itself prints: `format_type` for column types,
//! `pg_get_expr` for defaults and generated columns, `pg_get_constraintdef`, `pg_get_indexdef`,
//! `pg_get_viewdef`, `pg_get_triggerdef`, `pg_get_functiondef`, `pg_sequence`, the labels of
//! enum types in their order, extensions with their versions. The server normalises spelling
//! (case, quoting, whitespace, redundant parentheses) so the texts compare exactly
//! ([`ModelObject::verbatim`]).
//!
//! Invariants:
//! - The catalog is read in one `REPEATABLE READ READ ONLY` transaction with
//!   `search_path = pg_catalog`, so every user name comes out schema-qualified whatever the
//!   connection's search path is: the same migrations replayed in two databases give the same
//!   text. No OID, database name or row count appears in any object.
//! - Left out: the system schemas, objects that belong to an extension (the extension stands for
//!   them), indexes that implement a constraint (the constraint stands for them), internal
//!   triggers, `plpgsql` (in every database), and the migration history table (as on SQLite);
//!   rows are never read.

use std::fmt::Write as _;

use postgres::Row;

use super::model::{Model, ModelObject};
use crate::db::pg::PgConn;
use crate::db::DbError;
use crate::migrate::HISTORY_TABLE;

/// The user namespaces: not the system ones, not another session's temporary ones.
const USER_NAMESPACE: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/// Objects an extension created (deptype `e`): its own, not the user's.
fn not_from_extension(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass \
         AND d.objid = {oid} AND d.deptype = 'e')"
    )
}

/// Read the schema of the database `conn` is connected to.
pub fn read(conn: &PgConn) -> Result<Model, DbError> {
    read_as(conn, false)
}

/// [`read`] inside a transaction the caller holds (the stairway's rewind point): in a savepoint,
/// whose `SET LOCAL` is undone with it; the caller's transaction is never ended here.
pub fn read_within_transaction(conn: &PgConn) -> Result<Model, DbError> {
    read_as(conn, true)
}

fn read_as(conn: &PgConn, nested: bool) -> Result<Model, DbError> {
    let (begin, end) = if nested {
        (
            "SAVEPOINT dbtool_read; SET LOCAL search_path = pg_catalog",
            "ROLLBACK TO SAVEPOINT dbtool_read; RELEASE SAVEPOINT dbtool_read",
        )
    } else {
        (
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = pg_catalog",
            "ROLLBACK",
        )
    };
    conn.run(begin, "reading the schema")?;
    let result = read_in_transaction(conn);
    // Read only: ending it either way changes nothing.
    let _ = conn.execute(end);
    let mut objects = result.map_err(|e| conn.error(&e, "reading the schema"))?;
    // The model's own order (kind, then name), as `Model::new` leaves SQLite's.
    objects.sort_by_cached_key(|o| {
        (
            super::model::kind_rank(&o.kind),
            o.name.to_ascii_lowercase(),
        )
    });
    Ok(Model { objects })
}

fn object(kind: &str, name: String, table: String, sql: String) -> ModelObject {
    ModelObject {
        kind: kind.to_string(),
        name,
        table,
        sql,
        verbatim: true,
    }
}

type Rows = Result<Vec<Row>, postgres::Error>;

fn query(conn: &PgConn, sql: &str) -> Rows {
    conn.client().query(sql, &[])
}

fn read_in_transaction(conn: &PgConn) -> Result<Vec<ModelObject>, postgres::Error> {
    let mut out = Vec::new();
    schemas(conn, &mut out)?;
    extensions(conn, &mut out)?;
    types(conn, &mut out)?;
    tables(conn, &mut out)?;
    sequences(conn, &mut out)?;
    indexes(conn, &mut out)?;
    views(conn, &mut out)?;
    triggers(conn, &mut out)?;
    policies(conn, &mut out)?;
    functions(conn, &mut out)?;
    Ok(out)
}

fn schemas(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT quote_ident(n.nspname) FROM pg_namespace n
         WHERE {USER_NAMESPACE} AND n.nspname <> 'public' AND {}",
        not_from_extension("pg_namespace", "n.oid")
    );
    for r in query(conn, &sql)? {
        let name: String = r.get(0);
        out.push(object(
            "schema",
            name.clone(),
            name.clone(),
            format!("CREATE SCHEMA {name}"),
        ));
    }
    Ok(())
}

fn extensions(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let rows = query(
        conn,
        "SELECT quote_ident(e.extname), quote_ident(n.nspname), e.extversion
         FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname <> 'plpgsql'",
    )?;
    for r in rows {
        let (name, schema, version): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        out.push(object(
            "extension",
            name.clone(),
            name.clone(),
            format!(
                "CREATE EXTENSION {name} SCHEMA {schema} VERSION {}",
                literal(&version)
            ),
        ));
    }
    Ok(())
}

/// Enum, domain and composite types (the row types of tables are the tables').
fn types(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT t.oid::regtype::text, t.typtype::text,
           (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
              FROM pg_enum e WHERE e.enumtypid = t.oid),
           format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
           (SELECT string_agg('CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), ' ' ORDER BY c.conname)
              FROM pg_constraint c WHERE c.contypid = t.oid),
           (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE {USER_NAMESPACE} AND {}
           AND (t.typtype IN ('e', 'd')
                OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))",
        not_from_extension("pg_type", "t.oid")
    );
    for r in query(conn, &sql)? {
        let name: String = r.get(0);
        let text = match r.get::<_, String>(1).as_str() {
            "e" => format!(
                "CREATE TYPE {name} AS ENUM ({})",
                r.get::<_, Option<String>>(2).unwrap_or_default()
            ),
            "d" => {
                let mut s = format!("CREATE DOMAIN {name} AS {}", r.get::<_, String>(3));
                if let Some(default) = r.get::<_, Option<String>>(5) {
                    write!(s, " DEFAULT {default}").expect("string");
                }
                if r.get::<_, bool>(4) {
                    s.push_str(" NOT NULL");
                }
                if let Some(checks) = r.get::<_, Option<String>>(6) {
                    write!(s, " {checks}").expect("string");
                }
                s
            }
            _ => format!(
                "CREATE TYPE {name} AS ({})",
                r.get::<_, Option<String>>(7).unwrap_or_default()
            ),
        };
        out.push(object("type", name.clone(), name, text));
    }
    Ok(())
}

/// Tables (ordinary, partitioned, foreign excluded): one column per line in the table's order,
/// then its constraints by name.
fn tables(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT c.oid::regclass::text, c.relkind::text, c.relpersistence::text,
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
           CASE WHEN c.relispartition THEN
             (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid)
             || ' ' || pg_get_expr(c.relpartbound, c.oid) END,
           (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno)
              FROM pg_inherits i WHERE i.inhrelid = c.oid AND NOT c.relispartition),
           c.relrowsecurity, c.relforcerowsecurity, c.oid
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND {USER_NAMESPACE} AND {}
           AND NOT (c.relname = '{HISTORY_TABLE}' AND c.relkind = 'r')",
        not_from_extension("pg_class", "c.oid")
    );
    let tables = query(conn, &sql)?;
    let oids: Vec<u32> = tables.iter().map(|r| r.get(8)).collect();
    // Every table's columns and constraints in one query each (per-table queries made the
    // stairway's three reads per migration cost a round trip per table).
    let mut columns = by_table(conn.client().query(
        "SELECT a.attrelid, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attcollation <> t.typcollation THEN
             (SELECT quote_ident(co.collname) FROM pg_collation co WHERE co.oid = a.attcollation) END,
           a.attnotnull, a.attidentity::text, a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid),
           a.attislocal
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attrelid, a.attnum",
        &[&oids],
    )?);
    let mut constraints = by_table(conn.client().query(
        "SELECT conrelid, quote_ident(conname), pg_get_constraintdef(oid, true)
         FROM pg_constraint WHERE conrelid = ANY($1) AND conislocal ORDER BY conrelid, conname",
        &[&oids],
    )?);
    for r in tables {
        let name: String = r.get(0);
        let oid: u32 = r.get(8);
        let mut lines = Vec::new();
        for col in columns.remove(&oid).unwrap_or_default() {
            if !col.get::<_, bool>(8) {
                continue; // inherited from a parent table: the parent's
            }
            let mut line = format!("{} {}", col.get::<_, String>(1), col.get::<_, String>(2));
            if let Some(collation) = col.get::<_, Option<String>>(3) {
                write!(line, " COLLATE {collation}").expect("string");
            }
            if col.get::<_, bool>(4) {
                line.push_str(" NOT NULL");
            }
            let default: Option<String> = col.get(7);
            match (
                col.get::<_, String>(5).as_str(),
                col.get::<_, String>(6).as_str(),
            ) {
                ("a", _) => line.push_str(" GENERATED ALWAYS AS IDENTITY"),
                ("d", _) => line.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
                (_, "s") => write!(
                    line,
                    " GENERATED ALWAYS AS ({}) STORED",
                    default.clone().unwrap_or_default()
                )
                .expect("string"),
                _ => {
                    if let Some(default) = &default {
                        write!(line, " DEFAULT {default}").expect("string");
                    }
                }
            }
            lines.push(line);
        }
        for k in constraints.remove(&oid).unwrap_or_default() {
            lines.push(format!(
                "CONSTRAINT {} {}",
                k.get::<_, String>(1),
                k.get::<_, String>(2)
            ));
        }
        let persistence = match r.get::<_, String>(2).as_str() {
            "u" => "UNLOGGED ",
            _ => "",
        };
        let mut text = match r.get::<_, Option<String>>(4) {
            Some(partition) => format!("CREATE {persistence}TABLE {name} PARTITION OF {partition}"),
            None => format!("CREATE {persistence}TABLE {name}"),
        };
        text.push_str(" (\n");
        text.push_str(
            &lines
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join(",\n"),
        );
        text.push_str("\n)");
        if let Some(parents) = r.get::<_, Option<String>>(5) {
            write!(text, " INHERITS ({parents})").expect("string");
        }
        if let Some(key) = r.get::<_, Option<String>>(3) {
            write!(text, " PARTITION BY {key}").expect("string");
        }
        if r.get::<_, bool>(6) {
            text.push_str(";\nALTER TABLE ");
            text.push_str(&name);
            text.push_str(" ENABLE ROW LEVEL SECURITY");
        }
        if r.get::<_, bool>(7) {
            write!(text, ";\nALTER TABLE {name} FORCE ROW LEVEL SECURITY").expect("string");
        }
        out.push(object("table", name.clone(), name, text));
    }
    Ok(())
}

/// Rows whose first column is a table's OID, grouped by it (in their order).
fn by_table(rows: Vec<Row>) -> std::collections::HashMap<u32, Vec<Row>> {
    let mut out: std::collections::HashMap<u32, Vec<Row>> = std::collections::HashMap::new();
    for row in rows {
        out.entry(row.get(0)).or_default().push(row);
    }
    out
}

/// Sequences, with their parameters (never their current value, which is data). Those behind an
/// identity column are the column's.
fn sequences(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT c.oid::regclass::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
           s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
           (SELECT d.refobjid::regclass::text || '.' || quote_ident(a.attname)
              FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
                AND d.refclassid = 'pg_class'::regclass)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_sequence s ON s.seqrelid = c.oid
         WHERE c.relkind = 'S' AND {USER_NAMESPACE} AND {}
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                           AND d.objid = c.oid AND d.deptype = 'i')",
        not_from_extension("pg_class", "c.oid")
    );
    for r in query(conn, &sql)? {
        let name: String = r.get(0);
        let mut text = format!(
            "CREATE SEQUENCE {name} AS {} START {} INCREMENT {} MINVALUE {} MAXVALUE {} CACHE {}{}",
            r.get::<_, String>(1),
            r.get::<_, i64>(2),
            r.get::<_, i64>(3),
            r.get::<_, i64>(4),
            r.get::<_, i64>(5),
            r.get::<_, i64>(6),
            if r.get::<_, bool>(7) { " CYCLE" } else { "" }
        );
        let table = match r.get::<_, Option<String>>(8) {
            Some(owner) => {
                write!(text, " OWNED BY {owner}").expect("string");
                owner
                    .rsplit_once('.')
                    .map_or(name.clone(), |(t, _)| t.to_string())
            }
            None => name.clone(),
        };
        out.push(object("sequence", name, table, text));
    }
    Ok(())
}

/// Indexes that do not implement a constraint (those are in their table's text).
fn indexes(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT c.oid::regclass::text, i.indrelid::regclass::text, pg_get_indexdef(c.oid)
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class t ON t.oid = i.indrelid
         WHERE {USER_NAMESPACE} AND {}
           AND t.relkind IN ('r', 'p', 'm')
           AND NOT (t.relname = '{HISTORY_TABLE}' AND t.relkind = 'r')
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid
                           AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
           AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid)",
        not_from_extension("pg_class", "c.oid")
    );
    for r in query(conn, &sql)? {
        // An index whose table is a partition, attached to the parent's index, is the parent's.
        out.push(object("index", r.get(0), r.get(1), r.get(2)));
    }
    Ok(())
}

fn views(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT c.oid::regclass::text, c.relkind::text, pg_get_viewdef(c.oid, true),
           array_to_string(c.reloptions, ', ')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('v', 'm') AND {USER_NAMESPACE} AND {}",
        not_from_extension("pg_class", "c.oid")
    );
    for r in query(conn, &sql)? {
        let name: String = r.get(0);
        let materialized = r.get::<_, String>(1) == "m";
        let kind = if materialized {
            "materialized view"
        } else {
            "view"
        };
        let options = r
            .get::<_, Option<String>>(3)
            .filter(|o| !o.is_empty())
            .map_or(String::new(), |o| format!(" WITH ({o})"));
        let body: String = r.get(2);
        let text = format!(
            "CREATE {} {name}{options} AS\n{}",
            kind.to_ascii_uppercase(),
            body.trim_end().trim_end_matches(';')
        );
        out.push(object(kind, name.clone(), name, text));
    }
    Ok(())
}

fn triggers(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT quote_ident(g.tgname), g.tgrelid::regclass::text, pg_get_triggerdef(g.oid, true)
         FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT g.tgisinternal AND g.tgparentid = 0 AND {USER_NAMESPACE} AND {}",
        not_from_extension("pg_trigger", "g.oid")
    );
    for r in query(conn, &sql)? {
        out.push(object("trigger", r.get(0), r.get(1), r.get(2)));
    }
    Ok(())
}

/// Row-level security policies (their names are their table's, like triggers').
fn policies(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT quote_ident(p.polname), p.polrelid::regclass::text,
           CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
           CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                         WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
           (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(a.rolname) END, ', '
                              ORDER BY CASE WHEN r = 0 THEN 'PUBLIC' ELSE a.rolname::text END)
              FROM unnest(p.polroles) AS r LEFT JOIN pg_roles a ON a.oid = r),
           pg_get_expr(p.polqual, p.polrelid, true), pg_get_expr(p.polwithcheck, p.polrelid, true)
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {USER_NAMESPACE}"
    );
    for r in query(conn, &sql)? {
        let (name, table): (String, String) = (r.get(0), r.get(1));
        let mut text = format!(
            "CREATE POLICY {name} ON {table} AS {} FOR {} TO {}",
            r.get::<_, String>(2),
            r.get::<_, String>(3),
            r.get::<_, Option<String>>(4)
                .unwrap_or_else(|| "PUBLIC".into())
        );
        if let Some(using) = r.get::<_, Option<String>>(5) {
            write!(text, " USING ({using})").expect("string");
        }
        if let Some(check) = r.get::<_, Option<String>>(6) {
            write!(text, " WITH CHECK ({check})").expect("string");
        }
        out.push(object("policy", name, table, text));
    }
    Ok(())
}

/// Functions and procedures (not aggregates, which `pg_get_functiondef` cannot print), named
/// with their argument types so that overloads are distinct objects.
fn functions(conn: &PgConn, out: &mut Vec<ModelObject>) -> Result<(), postgres::Error> {
    let sql = format!(
        "SELECT p.oid::regproc::text || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           pg_get_functiondef(p.oid)
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE p.prokind IN ('f', 'p', 'w') AND {USER_NAMESPACE} AND {}",
        not_from_extension("pg_proc", "p.oid")
    );
    for r in query(conn, &sql)? {
        let name: String = r.get(0);
        let body: String = r.get(1);
        out.push(object(
            "function",
            name.clone(),
            name,
            body.trim_end().to_string(),
        ));
    }
    Ok(())
}

/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
