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
            ops.push(COPY);
            put_varint(ops, start);
            put_varint(ops, len);
        }
    };
    let flush_insert = |ops: &mut Vec<u8>, insert: &mut Option<Range<usize>>| {
        if let Some(range) = insert.take() {
            ops.push(INSERT);
            put_varint(ops, range.len());
            ops.extend_from_slice(&target[range]);
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

/// How many bytes `ops` rebuild to (without rebuilding), or `None` if they
/// are malformed.
pub(crate) fn output_len(mut ops: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        let n = match op {
            COPY => {
                take_varint(&mut ops)?;
                take_varint(&mut ops)?
            }
            INSERT => {
                let n = take_varint(&mut ops)?;
                ops = ops.get(n..)?;
                n
            }
            _ => return None,
        };
        len = len.checked_add(n)?;
    }
    Some(len)
}

/// The entries `ops` insert (new or changed since the base): whatever an
/// object built from them refers to that its base did not. `None` if an
/// insert does not hold whole entries.
pub(crate) fn inserted_entries(mut ops: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        match op {
            COPY => {
                take_varint(&mut ops)?;
                take_varint(&mut ops)?;
            }
            INSERT => {
                let n = take_varint(&mut ops)?;
                let bytes = ops.get(..n)?;
                ops = &ops[n..];
                out.extend(entries(bytes)?.into_iter().map(|range| &bytes[range]));
            }
            _ => return None,
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
pub(crate) fn fresh_entries(starts: &[usize], mut ops: &[u8]) -> Option<HashSet<ObjectId>> {
    let on_bound = |at: usize| starts.binary_search(&at).is_ok();
    let mut fresh = HashSet::new();
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        match op {
            COPY => {
                let start = take_varint(&mut ops)?;
                let end = start.checked_add(take_varint(&mut ops)?)?;
                if !on_bound(start) || !on_bound(end) {
                    return None;
                }
            }
            INSERT => {
                let n = take_varint(&mut ops)?;
                let bytes = ops.get(..n)?;
                ops = &ops[n..];
                for range in entries(bytes)? {
                    fresh.insert(entry_target(&bytes[range])?.1);
                }
            }
            _ => return None,
        }
    }
    Some(fresh)
}

/// Rebuild an object from its base and the ops of [`tree_delta`].
pub(crate) fn apply(base: &[u8], mut ops: &[u8]) -> Option<Vec<u8>> {
    let len = output_len(ops)?;
    if len > MAX_TREE_SIZE {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        match op {
            COPY => {
                let start = take_varint(&mut ops)?;
                let len = take_varint(&mut ops)?;
                out.extend_from_slice(base.get(start..start.checked_add(len)?)?);
            }
            INSERT => {
                let len = take_varint(&mut ops)?;
                if len > ops.len() {
                    return None;
                }
                let (bytes, rest) = ops.split_at(len);
                out.extend_from_slice(bytes);
                ops = rest;
            }
            _ => return None,
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
