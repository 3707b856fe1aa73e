//! Trees stored as deltas against an earlier version of the same directory.
//!
//! A directory of n secrets is one git tree of n entries; every edit in it
//! makes a new tree that differs from the last in one entry. Stored whole,
//! a directory edited one secret at a time costs O(n) bytes per edit. So a
//! new version of a directory is stored as a list of copies (runs of
//! entries unchanged since the base) and inserts (entries new or changed),
//! and still hashes to its git id once rebuilt.
//!
//! The base is picked as Subversion's skip-deltas do: the k-th version of a
//! directory (its `seq`, counted from the last version stored whole) is a
//! delta against version `k & (k - 1)`. Rebuilding version k then applies
//! `popcount(k)` deltas (at most 32, in practice under 17), and a delta
//! spans on average a few edits (about log2(k)/2), so stored bytes per
//! edit stay near a few hundred whatever the directory's size.
//!
//! Everything here reads bytes that were sealed by this vault's key, but
//! still checks every offset and length: a delta that points outside its
//! base, or rebuilds to more than [`MAX_TREE_SIZE`], is refused as corrupt.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use gix::hash::ObjectId;

use crate::transfer::MAX_TREE_SIZE;

/// Most deltas on the way from a stored object to its whole base; a
/// `seq` is a `u32`, so a chain picked as above never passes 32.
pub(crate) const MAX_CHAIN: usize = 40;

/// Most deltas this node stores on the way to a whole object: a version
/// deeper than that (possible only with bases received from another copy,
/// whose place in a line of versions is not known) is stored whole.
pub(crate) const MAX_STORED_DEPTH: usize = 24;

const COPY: u8 = 0;
const INSERT: u8 = 1;

/// The sequence number the delta base of version `seq` has.
pub(crate) fn base_seq(seq: u32) -> u32 {
    seq & seq.wrapping_sub(1)
}

fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(data: &mut &[u8]) -> Option<usize> {
    let mut value: usize = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = data.split_first()?;
        *data = rest;
        value |= usize::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The byte ranges of a git tree's entries (`mode SP name NUL id`), or
/// `None` if the bytes are not a tree with 20-byte ids.
fn entries(tree: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < tree.len() {
        let nul = tree[at..].iter().position(|&b| b == 0)?;
        let end = at.checked_add(nul)?.checked_add(21)?;
        if end > tree.len() {
            return None;
        }
        out.push(at..end);
        at = end;
    }
    Some(out)
}

/// Append the op copying `len` bytes of the base from `start`.
pub(crate) fn put_copy(ops: &mut Vec<u8>, start: usize, len: usize) {
    ops.push(COPY);
    put_varint(ops, start);
    put_varint(ops, len);
}

/// Append the op inserting `bytes`.
pub(crate) fn put_insert(ops: &mut Vec<u8>, bytes: &[u8]) {
    ops.push(INSERT);
    put_varint(ops, bytes.len());
    ops.extend_from_slice(bytes);
}

/// Ops that rebuild `target` from `base`, entry by entry; `None` when they
/// would be no smaller than half of `target` (then it is stored whole).
pub(crate) fn tree_delta(base: &[u8], target: &[u8]) -> Option<Vec<u8>> {
    let base_entries = entries(base)?;
    let target_entries = entries(target)?;
    let index: HashMap<&[u8], usize> = base_entries
        .iter()
        .map(|range| (&base[range.clone()], range.start))
        .collect();
    let limit = target.len() / 2;
    let mut ops = Vec::new();
    let mut copy: Option<(usize, usize)> = None;
    let mut insert: Option<Range<usize>> = None;
    let flush_copy = |ops: &mut Vec<u8>, copy: &mut Option<(usize, usize)>| {
        if let Some((start, len)) = copy.take() {
            put_copy(ops, start, len);
        }
    };
    let flush_insert = |ops: &mut Vec<u8>, insert: &mut Option<Range<usize>>| {
        if let Some(range) = insert.take() {
            put_insert(ops, &target[range]);
        }
    };
    for range in target_entries {
        match index.get(&target[range.clone()]) {
            Some(&start) => {
                flush_insert(&mut ops, &mut insert);
                let len = range.len();
                match &mut copy {
                    Some((from, run)) if *from + *run == start => *run += len,
                    _ => {
                        flush_copy(&mut ops, &mut copy);
                        copy = Some((start, len));
                    }
                }
            }
            None => {
                flush_copy(&mut ops, &mut copy);
                insert = Some(match insert {
                    Some(open) => open.start..range.end,
                    None => range,
                });
            }
        }
        if ops.len() > limit {
            return None;
        }
    }
    flush_copy(&mut ops, &mut copy);
    flush_insert(&mut ops, &mut insert);
    (ops.len() <= limit).then_some(ops)
}

/// One op of a delta.
enum Op<'a> {
    /// `len` bytes of the base from `start`.
    Copy { start: usize, len: usize },
    /// `bytes`, which start `at` bytes into the ops.
    Insert { at: usize, bytes: &'a [u8] },
}

/// The ops of a delta in order, the one decoder every reader of ops uses;
/// a malformed op is `None`, and ends them.
fn each_op(ops: &[u8]) -> impl Iterator<Item = Option<Op<'_>>> {
    let mut rest = ops;
    std::iter::from_fn(move || {
        let (&op, after) = rest.split_first()?;
        let mut next = after;
        let decoded = (|| match op {
            COPY => {
                let start = take_varint(&mut next)?;
                let len = take_varint(&mut next)?;
                Some(Op::Copy { start, len })
            }
            INSERT => {
                let n = take_varint(&mut next)?;
                let at = ops.len() - next.len();
                let bytes = next.get(..n)?;
                next = &next[n..];
                Some(Op::Insert { at, bytes })
            }
            _ => None,
        })();
        // A malformed op ends the ops: nothing after it is read.
        rest = if decoded.is_some() { next } else { &[] };
        Some(decoded)
    })
}

/// How many bytes `ops` rebuild to (without rebuilding), or `None` if they
/// are malformed.
pub(crate) fn output_len(ops: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for op in each_op(ops) {
        len = len.checked_add(match op? {
            Op::Copy { len, .. } => len,
            Op::Insert { bytes, .. } => bytes.len(),
        })?;
    }
    Some(len)
}

/// The entries `ops` insert (new or changed since the base): whatever an
/// object built from them refers to that its base did not. `None` if an
/// insert does not hold whole entries.
pub(crate) fn inserted_entries(ops: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    for op in each_op(ops) {
        if let Op::Insert { bytes, .. } = op? {
            out.extend(entries(bytes)?.into_iter().map(|range| &bytes[range]));
        }
    }
    Some(out)
}

/// Whether a tree entry (`mode SP name NUL id`) is a directory, and the
/// id it names.
pub(crate) fn entry_target(entry: &[u8]) -> Option<(bool, ObjectId)> {
    let id = entry.len().checked_sub(20).map(|at| &entry[at..])?;
    let oid = ObjectId::try_from(id).ok()?;
    Some((entry.starts_with(b"40000 "), oid))
}

/// The name a tree entry (`mode SP name NUL id`) holds.
pub(crate) fn entry_name(entry: &[u8]) -> Option<&[u8]> {
    let space = entry.iter().position(|&b| b == b' ')?;
    let nul = entry.iter().position(|&b| b == 0)?;
    entry.get(space + 1..nul)
}

/// The starts of a tree's entries and, last, its length (the boundaries
/// a delta keeping to whole entries copies between); `None` if the bytes
/// are not a tree.
pub(crate) fn entry_starts(base: &[u8]) -> Option<Vec<usize>> {
    let mut starts: Vec<usize> = entries(base)?.into_iter().map(|r| r.start).collect();
    starts.push(base.len());
    Some(starts)
}

/// The ids of the entries `ops` insert, if the delta keeps to whole
/// entries: every copy starts and ends on an entry boundary of the base
/// (`starts`, from [`entry_starts`]), and every insert holds whole
/// entries. Then each entry of the result not among these is an entry of
/// the base, unchanged. `None` otherwise (a delta this node did not make:
/// check the result whole).
pub(crate) fn fresh_entries(starts: &[usize], ops: &[u8]) -> Option<HashSet<ObjectId>> {
    let on_bound = |at: usize| starts.binary_search(&at).is_ok();
    let mut fresh = HashSet::new();
    for op in each_op(ops) {
        match op? {
            Op::Copy { start, len } => {
                if !on_bound(start) || !on_bound(start.checked_add(len)?) {
                    return None;
                }
            }
            Op::Insert { bytes, .. } => {
                for range in entries(bytes)? {
                    fresh.insert(entry_target(&bytes[range])?.1);
                }
            }
        }
    }
    Some(fresh)
}

/// Whether a tree entry's mode is spelled as git writes the only modes a
/// vault holds (a file, an executable file, a directory): gix also reads
/// `040000` and the like as a directory, which `git fsck --strict`
/// refuses and [`entry_target`] would take for a file.
pub(crate) fn canonical_mode(entry: &[u8]) -> bool {
    [b"100644 ".as_slice(), b"100755 ", b"40000 "]
        .iter()
        .any(|mode| entry.starts_with(mode))
}

/// Whether every entry of a tree has a [`canonical_mode`] (`false` if the
/// bytes are not a tree).
pub(crate) fn modes_canonical(tree: &[u8]) -> bool {
    entries(tree).is_some_and(|all| all.into_iter().all(|r| canonical_mode(&tree[r])))
}

/// Whether the names of a tree's entries (at `starts`, from
/// [`entry_starts`]) ascend strictly: then it holds no name twice.
pub(crate) fn names_ascend(tree: &[u8], starts: &[usize]) -> bool {
    let mut previous: Option<&[u8]> = None;
    for pair in starts.windows(2) {
        let Some(name) = tree.get(pair[0]..pair[1]).and_then(entry_name) else {
            return false;
        };
        if previous.is_some_and(|p| p >= name) {
            return false;
        }
        previous = Some(name);
    }
    true
}

/// What a delta does to its base, seen from its ops alone: the runs of
/// the base's entries it leaves out and the runs of entries it inserts
/// (byte ranges of the base and of the ops). See [`splice`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Splice {
    pub(crate) removed: Vec<Range<usize>>,
    pub(crate) inserted: Vec<Range<usize>>,
}

/// The [`Splice`] of `ops` against a base whose names ascend (`starts`
/// from [`entry_starts`]), when the tree they rebuild is known from them
/// alone to ascend too, so to hold no name twice: every copy keeps to
/// whole entries and comes after the last, every insert holds whole
/// entries, and names ascend across each seam. Each entry of the result is
/// then a base entry, unchanged, or an inserted one, and each base entry
/// is in the result once or removed. `None` otherwise (check the result
/// whole).
pub(crate) fn splice(base: &[u8], starts: &[usize], ops: &[u8]) -> Option<Splice> {
    let index = |at: usize| starts.binary_search(&at).ok();
    let name_at = |i: usize| entry_name(base.get(*starts.get(i)?..*starts.get(i + 1)?)?);
    let mut out = Splice {
        removed: Vec::new(),
        inserted: Vec::new(),
    };
    let mut consumed = 0usize;
    let mut last: Option<&[u8]> = None;
    for op in each_op(ops) {
        match op? {
            Op::Copy { start, len } => {
                let end = start.checked_add(len)?;
                let (first, after) = (index(start)?, index(end)?);
                if start < consumed || after <= first {
                    return None;
                }
                let first_name = name_at(first)?;
                if last.is_some_and(|l| l >= first_name) {
                    return None;
                }
                if start > consumed {
                    out.removed.push(consumed..start);
                }
                last = Some(name_at(after - 1)?);
                consumed = end;
            }
            Op::Insert { at, bytes } => {
                for range in entries(bytes)? {
                    if !canonical_mode(&bytes[range.clone()]) {
                        return None;
                    }
                    let name = entry_name(&bytes[range])?;
                    if last.is_some_and(|l| l >= name) {
                        return None;
                    }
                    last = Some(name);
                }
                if !bytes.is_empty() {
                    out.inserted.push(at..at + bytes.len());
                }
            }
        }
    }
    if consumed < base.len() {
        out.removed.push(consumed..base.len());
    }
    // Checking the removed entries must cost no more than checking the
    // result whole would.
    let removed: usize = out.removed.iter().map(Range::len).sum();
    let result = output_len(ops)?;
    (removed <= result).then_some(out)
}

/// The entry starts (as [`entry_starts`] gives them) of the tree `ops`
/// rebuild from a base whose entries start at `starts`, worked out from
/// the ops alone, for ops [`splice`] accepted (copies on entry bounds,
/// inserts of whole entries); `None` for others.
pub(crate) fn spliced_starts(starts: &[usize], ops: &[u8]) -> Option<Vec<usize>> {
    let index = |at: usize| starts.binary_search(&at).ok();
    let mut out = Vec::with_capacity(starts.len());
    let mut at = 0usize;
    for op in each_op(ops) {
        match op? {
            Op::Copy { start, len } => {
                let (first, after) = (index(start)?, index(start.checked_add(len)?)?);
                out.extend(starts.get(first..after)?.iter().map(|s| s - start + at));
                at = at.checked_add(len)?;
            }
            Op::Insert { bytes, .. } => {
                out.extend(entries(bytes)?.into_iter().map(|r| r.start + at));
                at = at.checked_add(bytes.len())?;
            }
        }
    }
    out.push(at);
    Some(out)
}

/// Rebuild an object from its base and the ops of [`tree_delta`].
pub(crate) fn apply(base: &[u8], ops: &[u8]) -> Option<Vec<u8>> {
    let len = output_len(ops)?;
    if len > MAX_TREE_SIZE {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    for op in each_op(ops) {
        match op? {
            Op::Copy { start, len } => {
                out.extend_from_slice(base.get(start..start.checked_add(len)?)?);
            }
            Op::Insert { bytes, .. } => out.extend_from_slice(bytes),
        }
        if out.len() > MAX_TREE_SIZE {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            out.extend_from_slice(b"100644 ");
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.extend_from_slice(&[i as u8; 20]);
        }
        out
    }

    #[test]
    fn one_changed_entry_of_many_costs_about_one_entry() {
        let names: Vec<String> = (0..10_000).map(|i| format!("secret-{i:05}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let base = tree(&refs);
        let mut target = base.clone();
        // Change the id of entry 5,000 (bytes of its id only).
        let at = base.len() / 2;
        let entry = entries(&base)
            .unwrap()
            .into_iter()
            .find(|r| r.contains(&at))
            .unwrap();
        target[entry.end - 1] ^= 0xff;
        let ops = tree_delta(&base, &target).unwrap();
        assert!(ops.len() < 80, "{} bytes of ops", ops.len());
        assert_eq!(apply(&base, &ops).unwrap(), target);
    }

    #[test]
    fn added_removed_and_reordered_entries_rebuild_exactly() {
        let base = tree(&["a", "b", "c", "d", "e"]);
        let mut target = tree(&["a", "c", "x"]);
        target.extend_from_slice(&base[..]);
        let ops = tree_delta(&base, &target).unwrap();
        assert_eq!(apply(&base, &ops).unwrap(), target);
        assert_eq!(tree_delta(&base, &tree(&["q"])), None, "nothing in common");
    }

    #[test]
    fn only_a_delta_keeping_to_whole_entries_names_its_fresh_ones() {
        let base = tree(&["a", "b", "c"]);
        let mut target = tree(&["a", "b", "c"]);
        target.extend_from_slice(&tree(&["d"])[..]);
        // tree() numbers ids by position: "d" is id [0; 20] like "a".
        let last = target.len() - 1;
        target[last] = 9;
        let ops = tree_delta(&base, &target).unwrap();
        let starts = entry_starts(&base).unwrap();
        let fresh = fresh_entries(&starts, &ops).unwrap();
        assert_eq!(fresh.len(), 1);
        assert!(fresh.contains(&entry_target(&target[target.len() - 30..]).unwrap().1));
        // A copy from the middle of an entry splices new entries out of old
        // bytes: nothing can be assumed checked.
        let spliced = [COPY, 3, 20, INSERT, 1, b'x'];
        assert_eq!(fresh_entries(&starts, &spliced), None);
    }

    /// The names of a tree's entries, in order.
    fn names(tree: &[u8]) -> Vec<Vec<u8>> {
        entries(tree)
            .unwrap()
            .into_iter()
            .map(|r| entry_name(&tree[r]).unwrap().to_vec())
            .collect()
    }

    #[test]
    fn a_splice_names_what_a_delta_removes_and_inserts() {
        let mut all: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        all.extend((0..40).map(|i| format!("m{i:02}")));
        let base = tree(&all.iter().map(String::as_str).collect::<Vec<_>>());
        // "b" removed, "c" changed (new id), "zz" added.
        let ranges = entries(&base).unwrap();
        let mut target = base[ranges[0].clone()].to_vec();
        let mut c = base[ranges[2].clone()].to_vec();
        *c.last_mut().unwrap() = 0xaa;
        target.extend_from_slice(&c);
        target.extend_from_slice(&base[ranges[3].start..]);
        target.extend_from_slice(&tree(&["zz"]));
        let ops = tree_delta(&base, &target).unwrap();
        let starts = entry_starts(&base).unwrap();
        assert!(names_ascend(&base, &starts));
        let splice = splice(&base, &starts, &ops).unwrap();
        let removed: Vec<u8> = splice
            .removed
            .iter()
            .flat_map(|r| base[r.clone()].to_vec())
            .collect();
        assert_eq!(names(&removed), [b"b".to_vec(), b"c".to_vec()]);
        let inserted: Vec<u8> = splice
            .inserted
            .iter()
            .flat_map(|r| ops[r.clone()].to_vec())
            .collect();
        assert_eq!(names(&inserted), [b"c".to_vec(), b"zz".to_vec()]);
        assert_eq!(apply(&base, &ops).unwrap(), target);
    }

    #[test]
    fn a_splice_is_refused_where_the_result_could_hold_a_name_twice() {
        let base = tree(&["a", "b", "c"]);
        let starts = entry_starts(&base).unwrap();
        let entry = base.len() / 3;
        let one = |name: &str| tree(&[name]);
        let insert = |bytes: &[u8]| [vec![INSERT, bytes.len() as u8], bytes.to_vec()].concat();
        let copy = |from: usize, len: usize| vec![COPY, from as u8, len as u8];
        for (what, ops) in [
            ("a copy twice", [copy(0, entry), copy(0, entry)].concat()),
            (
                "copies out of order",
                [copy(entry, entry), copy(0, entry)].concat(),
            ),
            (
                "overlapping copies",
                [copy(0, 2 * entry), copy(entry, entry)].concat(),
            ),
            (
                "an insert of a copied name",
                [copy(0, entry), insert(&one("a"))].concat(),
            ),
            (
                "an insert before the copy it should follow",
                [insert(&one("z")), copy(0, entry)].concat(),
            ),
            (
                "inserts out of order",
                [insert(&one("y")), insert(&one("x"))].concat(),
            ),
            ("a copy off an entry's bounds", copy(1, entry)),
        ] {
            assert_eq!(splice(&base, &starts, &ops), None, "{what}");
        }
        // Honest ones pass.
        for ops in [
            [copy(0, entry), insert(&one("b2")), copy(2 * entry, entry)].concat(),
            [insert(&one("0")), copy(0, 3 * entry)].concat(),
            copy(entry, 2 * entry),
        ] {
            let splice = splice(&base, &starts, &ops).unwrap();
            let result = apply(&base, &ops).unwrap();
            assert!(names_ascend(&result, &entry_starts(&result).unwrap()));
            assert!(splice.inserted.len() <= 1);
        }
        assert!(!names_ascend(
            &tree(&["b", "a"]),
            &entry_starts(&tree(&["b", "a"])).unwrap()
        ));
    }

    #[test]
    fn a_splice_that_removes_more_than_it_keeps_is_left_to_the_whole_check() {
        // Checking what a delta removes must never cost more than checking
        // what it rebuilds: empty ops against a large base rebuild nothing.
        let names: Vec<String> = (0..100).map(|i| format!("n{i:03}")).collect();
        let base = tree(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let starts = entry_starts(&base).unwrap();
        assert_eq!(splice(&base, &starts, &[]), None);
        let last = starts[starts.len() - 2];
        let keep_one = [vec![COPY], varint(last), varint(base.len() - last)].concat();
        assert_eq!(splice(&base, &starts, &keep_one), None);
        let keep_half = [vec![COPY, 0], varint(starts[50])].concat();
        assert!(splice(&base, &starts, &keep_half).is_some());
    }

    #[test]
    fn a_splice_takes_only_modes_spelled_as_git_writes_them() {
        let base = tree(&["a"]);
        let starts = entry_starts(&base).unwrap();
        let entry = |mode: &str, name: &str| {
            [mode.as_bytes(), b" ", name.as_bytes(), b"\0", &[9u8; 20]].concat()
        };
        for (mode, taken) in [
            ("100644", true),
            ("100755", true),
            ("40000", true),
            ("040000", false),
            ("40755", false),
            ("120000", false),
        ] {
            let insert = entry(mode, "b");
            let ops = [
                vec![COPY, 0, base.len() as u8, INSERT, insert.len() as u8],
                insert,
            ]
            .concat();
            assert_eq!(splice(&base, &starts, &ops).is_some(), taken, "{mode}");
        }
    }

    fn varint(value: usize) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        out
    }

    proptest::proptest! {
        /// Whatever the ops, a splice that is accepted rebuilds a tree
        /// whose names ascend, and its removed and copied entries are the
        /// base's, each once.
        #[test]
        fn an_accepted_splice_never_repeats_a_name(
            base_names in proptest::collection::btree_set("[a-e]{1,3}", 0..12),
            ops in proptest::collection::vec(
                (proptest::bool::ANY, 0usize..14, 0usize..4, "[a-f]{1,3}"),
                0..8,
            ),
        ) {
            let base_names: Vec<&str> = base_names.iter().map(String::as_str).collect();
            let base = tree(&base_names);
            let starts = entry_starts(&base).unwrap();
            let mut encoded = Vec::new();
            for (is_copy, from, len, name) in ops {
                if is_copy {
                    let start = starts[from.min(starts.len() - 1)];
                    let end = starts[(from + len).min(starts.len() - 1)];
                    encoded.push(COPY);
                    put_varint(&mut encoded, start);
                    put_varint(&mut encoded, end - start);
                } else {
                    let bytes = tree(&[name.as_str()]);
                    encoded.push(INSERT);
                    put_varint(&mut encoded, bytes.len());
                    encoded.extend_from_slice(&bytes);
                }
            }
            if let Some(splice) = splice(&base, &starts, &encoded) {
                let result = apply(&base, &encoded).unwrap();
                let result_starts = entry_starts(&result).unwrap();
                proptest::prop_assert_eq!(
                    spliced_starts(&starts, &encoded),
                    Some(result_starts.clone())
                );
                proptest::prop_assert!(names_ascend(&result, &result_starts));
                let removed: usize = splice.removed.iter().map(|r| r.len()).sum();
                let inserted: usize = splice.inserted.iter().map(|r| {
                    entries(&encoded[r.clone()]).unwrap().iter().map(|e| e.len()).sum::<usize>()
                }).sum();
                // Every base byte is copied once or removed.
                proptest::prop_assert_eq!(result.len() + removed, base.len() + inserted);
            }
        }
    }

    #[test]
    fn hostile_ops_are_refused_not_followed() {
        let base = tree(&["a"]);
        for ops in [
            vec![COPY, 0, 200],                    // past the base
            vec![COPY, 0xff, 0xff, 0xff],          // unterminated varint
            vec![INSERT, 10, 1, 2],                // fewer bytes than announced
            vec![7],                               // unknown op
            [vec![COPY], vec![0xff; 12]].concat(), // varint overflow
        ] {
            assert_eq!(apply(&base, &ops), None, "{ops:?}");
        }
        let mut huge = Vec::new();
        for _ in 0..(MAX_TREE_SIZE / base.len() + 2) {
            huge.extend_from_slice(&[COPY, 0, base.len() as u8]);
        }
        assert_eq!(apply(&base, &huge), None, "larger than any tree");
    }

    #[test]
    fn skip_delta_bases_keep_chains_short() {
        assert_eq!(base_seq(1), 0);
        assert_eq!(base_seq(6), 4);
        assert_eq!(base_seq(8), 0);
        // The base of seq n + 1 is on the chain of seq n.
        for n in 1u32..5_000 {
            let mut chain = vec![n];
            while *chain.last().unwrap() != 0 {
                chain.push(base_seq(*chain.last().unwrap()));
            }
            assert!(chain.contains(&base_seq(n + 1)));
            assert!(chain.len() <= 14);
        }
    }
}
