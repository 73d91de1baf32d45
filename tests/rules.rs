//! `spinewatch check-rules`: rules loaded and rejected by reason, as text and JSON; config
//! variables and errors; and ET Open's report when ../shared/data has it.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

fn check(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin()).arg("check-rules").args(args).output().expect("spinewatch runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

const RULES: &str = r#"# local rules
alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"gate"; flow:established,to_server; http.uri; content:"/gate.php"; classtype:trojan-activity; sid:1000001; rev:1;)
alert dns any any -> any any (msg:"dns"; dns.query; dotprefix; content:".evil.example"; endswith; sid:1000002;)
alert tcp any any -> $SQL_SERVERS 1433 (msg:"sql"; content:"|00 01|"; depth:2; sid:1000003;)
alert smb any any -> any any (msg:"smb"; sid:1000004;)
alert tcp any any -> any any (msg:"look-around"; pcre:"/(?<!a)b/"; sid:1000005;)
alert tcp any any -> any any (msg:"unknown"; frobnicate:1; sid:1000006;)
alert tcp any any -> any any (msg:"no sid";)
alert tcp any any -> any any (msg:"dup"; sid:1000001;)
"#;

#[test]
fn a_rule_file_loads_what_it_can_and_groups_the_rest_by_reason() {
    let d = TempDir::new("rules-check");
    let f = d.path("local.rules");
    std::fs::write(&f, RULES).unwrap();
    let (code, out, err) = check(&["--json", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"loaded": 3, "rejected": 5, "reasons": {
            "duplicate sid": 1,
            "pcre: look-around": 1,
            "syntax error": 1,
            "unknown keyword: frobnicate": 1,
            "unsupported protocol: smb": 1
        }})
    );
    let (code, out, _) = check(&["--verbose", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.starts_with("1 rule file(s): 3 rules loaded, 5 rejected (37.5% loaded)\n"), "{out}");
    assert!(out.contains(&format!("{}:5: unsupported protocol: smb", f.display())), "{out}");
    assert!(out.contains(&format!("{}:8: syntax error: no sid", f.display())), "{out}");
}

#[test]
fn variables_come_from_the_config_and_bad_ones_name_their_key() {
    let d = TempDir::new("rules-vars");
    let f = d.path("r.rules");
    std::fs::write(&f, "alert tcp $MY_NET any -> any $MY_PORTS (msg:\"v\"; sid:1;)\n").unwrap();
    // Without the variables the rule is rejected...
    let (_, out, _) = check(&["--json", f.to_str().unwrap()]);
    assert!(out.contains(r#""bad address":1"#), "{out}");
    // ...with them it loads.
    let c = d.path("c.toml");
    std::fs::write(&c, "[rules.address_vars]\nMY_NET = \"[10.0.0.0/8,!10.9.0.0/16]\"\n[rules.port_vars]\nMY_PORTS = \"[80,8000:8100]\"\n").unwrap();
    let (code, out, err) = check(&["--json", "--config", c.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!((code, out.trim()), (0, r#"{"loaded":1,"reasons":{},"rejected":0}"#), "{err}");
    // A variable that does not parse: the key and the file.
    std::fs::write(&c, "[rules.address_vars]\nHOME_NET = \"[10.0.0.0/33\"\n").unwrap();
    let (code, _, err) = check(&["--config", c.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains(c.to_str().unwrap()) && err.contains("rules.address_vars.HOME_NET"), "{err}");
    std::fs::write(&c, "[behaviour]\nexfil_ratio = 0.5\n").unwrap();
    let (code, _, err) = check(&["--config", c.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("behaviour.exfil_ratio"), "{err}");
    std::fs::write(&c, "[ioc]\nfiles = [\"/nonexistent/feed.csv\"]\n").unwrap();
    let st = Command::new(bin())
        .args(["replay", "--source", "file", "--config", c.to_str().unwrap(), f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("/nonexistent/feed.csv"));
    // A missing rule file is an error naming it.
    let (code, _, err) = check(&[d.path("nope.rules").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("nope.rules"), "{err}");
}

#[test]
fn et_open_loads_with_a_report() {
    let Some(files) = et_open_files() else { return };
    // Every rule line is counted once, loaded or rejected.
    let mut lines = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        lines += text.lines().filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#')).count();
    }
    let args: Vec<&str> = std::iter::once("--json").chain(files.iter().map(String::as_str)).collect();
    let (code, out, err) = check(&args);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let (loaded, rejected) = (v["loaded"].as_u64().unwrap(), v["rejected"].as_u64().unwrap());
    let by_reason: u64 = v["reasons"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(loaded + rejected, lines as u64);
    assert_eq!(by_reason, rejected);
    eprintln!("ET Open: {loaded} loaded, {rejected} rejected of {lines}: {}", v["reasons"]);
    // The issue's bar: at least 90% of ET Open loads.
    assert!(loaded * 100 >= lines as u64 * 90, "{loaded} of {lines}");
    // And the README says how much (rounded down to a whole percent).
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let said: u64 = readme
        .split("ET Open: ")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .and_then(|n| n.trim().parse().ok())
        .expect("the README says \"ET Open: N% of its rules load\"");
    assert_eq!(said, loaded * 100 / lines as u64, "README's ET Open figure: {loaded} of {lines} load");
}
