//! The DACLs Windows actually stores for what this crate creates.
//!
//! Wine stores no DACL for a file (see `crate::wine`): it answers with one
//! made up from the Unix mode it derived from ours. Under Wine these tests
//! check what that view can show: no entry for Everyone, nothing granted
//! but to the user and Wine's constant LocalSystem entry.

use std::path::Path;

use super::*;
use windows_sys::Win32::Security::{INHERITED_ACE, INHERIT_ONLY_ACE};

/// "Everyone", to give a file an entry that is not the current user's.
const EVERYONE: &str = "S-1-1-0";
/// LocalSystem.
const LOCAL_SYSTEM: &str = "S-1-5-18";

fn security_of(path: &Path) -> Security {
    Security::of_file(&wide(path.as_os_str()).expect("wide")).expect("read security")
}

fn under_wine() -> bool {
    crate::wine::version().is_some()
}

fn the_one_ace(security: &Security) -> &Ace {
    let aces = security.dacl.as_ref().expect("a DACL");
    assert_eq!(aces.len(), 1, "exactly one entry: {aces:?}");
    &aces[0]
}

/// Under Wine: the DACL made up from the Unix mode grants only the user
/// (and LocalSystem, which Wine always lists), so the mode is owner-only.
fn assert_wine_mode_is_owner_only(security: &Security, user: &Sid) {
    let system = Sid::parse(LOCAL_SYSTEM).expect("parse");
    let aces = security.dacl.as_ref().expect("a DACL");
    assert!(
        aces.iter().any(|ace| ace.sid.as_ref() == Some(user)),
        "{security:?}"
    );
    for ace in aces.iter().filter(|a| a.kind == ACCESS_ALLOWED_ACE_TYPE) {
        let sid = ace.sid.as_ref().expect("sid");
        assert!(sid == user || *sid == system, "{security:?}");
    }
}

#[test]
fn current_user_sid_round_trips_through_its_string_form() {
    let user = current_user().expect("current user");
    let sddl = user.to_sddl().expect("string form");
    assert!(sddl.starts_with("S-1-5-"), "{sddl}");
    assert_eq!(Sid::parse(&sddl).expect("parse"), user);
    assert_ne!(Sid::parse(LOCAL_SYSTEM).expect("parse"), user);
}

#[test]
fn a_created_file_has_exactly_the_current_users_entry_protected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret");
    crate::fs::create_new_private(&path).expect("create");
    let security = security_of(&path);
    let user = current_user().expect("user");
    assert_eq!(security.owner.as_ref(), Some(&user));
    if under_wine() {
        return assert_wine_mode_is_owner_only(&security, &user);
    }
    assert!(security.protected, "DACL not protected: {security:?}");
    let ace = the_one_ace(&security);
    assert_eq!(ace.kind, ACCESS_ALLOWED_ACE_TYPE);
    assert_eq!(ace.sid.as_ref(), Some(&user));
    assert_eq!(ace.mask, OWNER_ACCESS);
    assert_eq!(
        ace.flags, 0,
        "a file's entry is not inherited nor inheritable"
    );
    assert!(security.is_private_to(&user));
}

#[test]
fn a_created_directory_passes_its_entry_to_what_is_created_inside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let private = dir.path().join("private");
    crate::fs::create_private_dir(&private).expect("create");
    let user = current_user().expect("user");
    let security = security_of(&private);
    if under_wine() {
        return assert_wine_mode_is_owner_only(&security, &user);
    }
    assert!(security.protected);
    let ace = the_one_ace(&security);
    assert_eq!(ace.kind, ACCESS_ALLOWED_ACE_TYPE);
    assert_eq!(ace.sid.as_ref(), Some(&user));
    assert_eq!(
        u32::from(ace.flags),
        OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE
    );

    // A file created inside by plain std code inherits only that entry.
    let inside = private.join("plain");
    std::fs::write(&inside, b"x").expect("write inside");
    let security = security_of(&inside);
    let ace = the_one_ace(&security);
    assert_eq!(ace.kind, ACCESS_ALLOWED_ACE_TYPE);
    assert_eq!(ace.sid.as_ref(), Some(&user));
    assert_ne!(u32::from(ace.flags) & INHERITED_ACE, 0, "{ace:?}");
    assert_eq!(u32::from(ace.flags) & INHERIT_ONLY_ACE, 0, "{ace:?}");
}

#[test]
fn restrict_replaces_a_dacl_that_grants_everyone() {
    let dir = tempfile::tempdir().expect("tempdir");
    // In a private directory: Wine's SetNamedSecurityInfoW adds the
    // parent's inheritable entries even to a protected DACL (see
    // `crate::wine`), and the temporary directory's made-up DACL grants
    // Everyone. On Windows the parent makes no difference.
    let private = dir.path().join("private");
    crate::fs::create_private_dir(&private).expect("private dir");
    let path = private.join("shared");
    std::fs::write(&path, b"x").expect("write");
    let name = wide(path.as_os_str()).expect("wide");
    OwnerOnly::new(Sid::parse(EVERYONE).expect("parse"), Inheritance::None)
        .expect("descriptor")
        .apply_to_file(&name)
        .expect("grant everyone");
    let user = current_user().expect("user");
    let everyone = Sid::parse(EVERYONE).expect("parse");
    let before = security_of(&path);
    let grants_everyone =
        |security: &Security| {
            security.dacl.iter().flatten().any(|ace| {
                ace.kind == ACCESS_ALLOWED_ACE_TYPE && ace.sid.as_ref() == Some(&everyone)
            })
        };
    assert!(grants_everyone(&before), "{before:?}");
    assert!(!before.is_private_to(&user));
    assert!(!crate::fs::is_private(&path).expect("is_private"));

    crate::fs::restrict(&path).expect("restrict");
    let after = security_of(&path);
    assert!(!grants_everyone(&after), "{after:?}");
    if under_wine() {
        return assert_wine_mode_is_owner_only(&after, &user);
    }
    assert!(after.protected);
    assert_eq!(the_one_ace(&after).sid.as_ref(), Some(&user));
    assert!(crate::fs::is_private(&path).expect("is_private"));
}

fn ace(kind: u8, sid: &str) -> Ace {
    Ace {
        kind,
        flags: 0,
        mask: OWNER_ACCESS,
        sid: Some(Sid::parse(sid).expect("parse")),
    }
}

#[test]
fn private_means_protected_and_every_allow_entry_for_the_user() {
    let user = current_user().expect("user");
    let me = user.to_sddl().expect("sddl");
    let security = |protected, dacl| Security {
        owner: Some(current_user().expect("user")),
        dacl,
        protected,
    };
    let only_me = || Some(vec![ace(ACCESS_ALLOWED_ACE_TYPE, &me)]);
    assert!(security(true, only_me()).is_private_to(&user));
    // No entry at all: no one has access.
    assert!(security(true, Some(Vec::new())).is_private_to(&user));
    // A denial of someone else takes nothing away.
    let with_denial = vec![
        ace(ACCESS_DENIED_ACE_TYPE, EVERYONE),
        ace(ACCESS_ALLOWED_ACE_TYPE, &me),
    ];
    assert!(security(true, Some(with_denial)).is_private_to(&user));

    // Not protected: the parent's entries may be added to it.
    assert!(!security(false, only_me()).is_private_to(&user));
    // No DACL: everyone has full access.
    assert!(!security(true, None).is_private_to(&user));
    let with_system = vec![
        ace(ACCESS_ALLOWED_ACE_TYPE, &me),
        ace(ACCESS_ALLOWED_ACE_TYPE, LOCAL_SYSTEM),
    ];
    assert!(!security(true, Some(with_system)).is_private_to(&user));
    // An entry of another type (here an object entry) is not understood,
    // so it counts as granting someone else.
    let other_type = vec![Ace {
        kind: 5,
        flags: 0,
        mask: OWNER_ACCESS,
        sid: None,
    }];
    assert!(!security(true, Some(other_type)).is_private_to(&user));
    // Owned by someone else (who may grant themselves access at any time),
    // or with no owner known: not private, whatever the DACL says.
    let owned_by = |owner: Option<Sid>| Security {
        owner,
        dacl: only_me(),
        protected: true,
    };
    assert!(!owned_by(Some(Sid::parse(LOCAL_SYSTEM).expect("parse"))).is_private_to(&user));
    assert!(!owned_by(None).is_private_to(&user));
}

#[test]
fn wine_is_recognised_only_under_wine() {
    // Two independent signs: ntdll's wine_get_version, and the variables
    // Wine's loader puts in every process's environment.
    let version = crate::wine::version();
    assert_eq!(
        version.is_some(),
        std::env::var_os("WINECONFIGDIR").is_some(),
        "{version:?}"
    );
    if let Some(version) = version {
        assert!(
            version.starts_with(|c: char| c.is_ascii_digit()),
            "{version}"
        );
    }
}
