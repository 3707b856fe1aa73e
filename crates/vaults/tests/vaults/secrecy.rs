use polykey_vaults::Vaults;

use crate::fixture;

#[test]
fn no_file_reveals_vault_names_secret_names_or_values() {
    let f = fixture();
    let vaults = Vaults::new(&f.db);
    let vault = vaults.create("zebra-vault-name", &f.keys).unwrap();
    vault
        .write_secret(
            &f.db,
            &f.keys,
            "quokka-directory/narwhal-secret",
            b"platypus-value-123",
        )
        .unwrap();
    vault.mkdir(&f.db, &f.keys, "axolotl-folder").unwrap();
    let id = vault.id().to_string();
    drop(vault);
    let node_dir = f.dir.path();
    let mut scanned = 0;
    for entry in std::fs::read_dir(node_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        scanned += 1;
        for needle in [
            "zebra-vault-name",
            "quokka-directory",
            "narwhal-secret",
            "platypus-value-123",
            "axolotl-folder",
            "Add secret",
            "Create vault",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "found {needle}"
            );
        }
        // Canary: the scan sees the plaintext table names (random ids by design).
        assert!(bytes.windows(id.len()).any(|w| w == id.as_bytes()));
    }
    assert_eq!(scanned, 1);
}
