use crate::{open, snapshot, DEVICE_NAME, PASSWORD};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_file_holds_the_password_the_recovery_words_or_stored_data() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let created = node.create(PASSWORD.into()).await.unwrap();
    node.set_device_name(DEVICE_NAME.into()).await.unwrap();
    node.change_password(PASSWORD.into(), "second password".into())
        .await
        .unwrap();
    node.lock().await.unwrap();
    drop(node);

    let code = created.recovery_code.expose_secret();
    let words: Vec<&str> = code.split(' ').collect();
    let mut needles = vec![
        PASSWORD.to_owned(),
        "second password".to_owned(),
        DEVICE_NAME.to_owned(),
        code.to_string(),
        words.concat(),
    ];
    // Single words are too short to scan for without false hits on JSON
    // field names; every adjacent pair of the code is distinctive.
    needles.extend(words.windows(2).map(|pair| pair.join(" ")));

    let files = snapshot(dir.path());
    assert!(files.len() >= 3, "scanned {:?}", files.keys());
    for (path, bytes) in &files {
        for needle in &needles {
            assert!(
                !contains(bytes, needle),
                "{} holds a secret",
                path.display()
            );
        }
    }
    // The scan can fail: the public NodeId is in the key file by design.
    let key_file = &files[&dir.path().join("root_key.json")];
    assert!(contains(key_file, &created.node_id.to_string()));
}

#[tokio::test]
async fn debug_output_of_a_created_node_hides_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    let created = node.create(PASSWORD.into()).await.unwrap();
    let shown = format!("{created:?} {node:?}");
    let code = created.recovery_code.expose_secret();
    let first_pair: Vec<&str> = code.split(' ').take(2).collect();
    assert!(!shown.contains(&first_pair.join(" ")), "{shown}");
    assert!(!shown.contains(PASSWORD));
}

/// The client API's requests and answers carry passwords and secrets as
/// JSON strings: wiping one reaches every string, however deep, and
/// overwrites it in place (zeroize keeps the allocation it zeroed; the
/// bytes themselves cannot be read back here without unsafe code).
#[test]
fn wiped_json_reaches_every_string_and_leaves_the_rest() {
    use polykey_node::wiped_json::{wipe, WipedJson};
    use serde_json::Value;
    let mut value = serde_json::json!({
        "password": "hunter2-hunter2",
        "params": { "value": "c2VjcmV0LXZhbHVl", "list": ["one-secret", 7, null, true] },
    });
    fn strings(value: &Value, out: &mut Vec<(usize, usize)>) {
        match value {
            Value::String(s) => out.push((s.len(), s.capacity())),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut before = Vec::new();
    strings(&value, &mut before);
    assert_eq!(before.len(), 3);
    wipe(&mut value);
    let mut after = Vec::new();
    strings(&value, &mut after);
    for ((_, capacity), (len, kept)) in before.iter().zip(&after) {
        assert_eq!(*len, 0, "a string kept its text");
        assert_eq!(kept, capacity, "a string was replaced, not overwritten");
    }
    assert_eq!(value["params"]["list"][1], 7);
    assert_eq!(value["params"]["list"][3], true);
    // A part taken out of a request is wiped by its new owner.
    let mut request = WipedJson(serde_json::json!({ "params": { "password": "pw" } }));
    let params = request.take("params");
    assert_eq!(params["password"], "pw");
    assert!(request["params"].is_null());
}
