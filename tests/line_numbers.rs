//! Rejects name the line a text editor shows: after a BOM, with CRLF line ends, after quoted fields
//! that hold newlines, and in JSONL with blank lines. A rejected row makes the run exit 2.

mod common;

use std::fs;

const CONFIG: &str = r#"
[[source]]
name = "csv"
format = "csv"
path = "a.csv"
delimiter = ";"
decimal = ","
thousands = "."
key = { column = "ref" }
amount = { column = "amount" }
currency = { value = "EUR" }

[[source]]
name = "json"
format = "jsonl"
path = "b.jsonl"
key = { column = "ref" }
amount = { column = "amount" }
currency = { column = "cur" }

[[check]]
name = "c"
from = "csv"
to = "json"
"#;

#[test]
fn rejects_point_at_editor_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Editor lines: 1 header, 2 ok, 3-4 a quoted note with a newline, 5 bad grouping, 6 ragged,
    // 7 too many decimals, no final newline.
    let csv = "\u{feff}ref;note;amount\r\nA1;plain;1.234,50\r\nA2;\"two\r\nlines; quoted\";2,00\r\nA3;x;1.23.4,00\r\nA4;x\r\nA5;x;1,005";
    // Editor lines: 1 ok, 2 blank, 3 not JSON, 4 unknown currency, 5 a number amount (ok), 6 array.
    let jsonl = "{\"ref\":\"A1\",\"amount\":\"1234.5\",\"cur\":\"EUR\"}\r\n\r\n{oops\r\n{\"ref\":\"A2\",\"amount\":\"2\",\"cur\":\"EURO\"}\n{\"ref\":\"A3\",\"amount\":0.10,\"cur\":\"eur\"}\n[1]\n";
    fs::write(dir.path().join("a.csv"), csv).unwrap();
    fs::write(dir.path().join("b.jsonl"), jsonl).unwrap();
    fs::write(dir.path().join("recon.toml"), CONFIG).unwrap();
    let run = common::recon(dir.path(), &["run", "-c", "recon.toml", "-o", "out", "-q"]);
    run.expect_code(2);
    let rejects = fs::read_to_string(dir.path().join("out/rejects.csv")).unwrap();
    let want = "\
source,file,line,field,reason,raw
csv,a.csv,5,amount,malformed thousands grouping (EUR),\"1.23.4,00\"
csv,a.csv,6,,\"expected 3 fields, found 2\",A4;x
csv,a.csv,7,amount,more decimals than the currency's minor unit allows (2) (EUR),\"1,005\"
json,b.jsonl,3,,not valid JSON at column 2: key must be a string,{oops
json,b.jsonl,4,cur,not an ISO 4217 currency code,EURO
json,b.jsonl,6,,not a JSON object,[1]
";
    assert_eq!(rejects, want, "{}", run.described);
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["status"], "incomplete");
    assert_eq!(summary["sources"][0]["rows_read"], 5);
    assert_eq!(summary["sources"][0]["rows_rejected"], 3);
    assert_eq!(summary["sources"][1]["rows_read"], 5);
    assert_eq!(summary["sources"][1]["rows_rejected"], 3);
    let reasons = summary["incomplete_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 2);
    assert_eq!(
        reasons[0],
        "source \"csv\" rejected 3 of 5 rows, more than its max_rejects (0); see rejects.csv"
    );
    // The rows that parsed still reconcile: A1 matches exactly (1.234,50 = "1234.5").
    let breaks = fs::read_to_string(dir.path().join("out/breaks.csv")).unwrap();
    assert!(!breaks.contains(",A1,"), "{breaks}");
    assert!(
        breaks.contains("c,missing,A2,json,,,2.00,EUR,2.00,EUR,,,a.csv:3,"),
        "{breaks}"
    );
    assert!(
        breaks.contains("c,unexpected,A3,json,,,0.10,EUR,,,0.10,EUR,,b.jsonl:5,"),
        "{breaks}"
    );
}

#[test]
fn max_rejects_allows_a_known_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("a.csv"),
        "ref;note;amount\nA1;x;1,00\nA2;x;zwei\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("b.jsonl"),
        "{\"ref\":\"A1\",\"amount\":\"1\",\"cur\":\"EUR\"}\n",
    )
    .unwrap();
    let config = CONFIG.replacen(
        "path = \"a.csv\"",
        "path = \"a.csv\"\nmax_rejects = \"50%\"",
        1,
    );
    fs::write(dir.path().join("recon.toml"), config).unwrap();
    let run = common::recon(dir.path(), &["run", "-c", "recon.toml", "-o", "out", "-q"]);
    run.expect_code(0);
    let rejects = fs::read_to_string(dir.path().join("out/rejects.csv")).unwrap();
    assert_eq!(
        rejects,
        "source,file,line,field,reason,raw\ncsv,a.csv,3,amount,not a decimal amount (EUR),zwei\n"
    );
}
