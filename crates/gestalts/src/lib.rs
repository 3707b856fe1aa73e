//! Trust between nodes, as in Polykey: every node keeps a **sigchain**, an
//! append-only, hash-linked list of signed claims (JSON tokens in the JWS
//! general serialization: a base64url payload with id, issued-at, sequence
//! number, previous claim and digest, type, issuer and subject; one signature
//! per signer, each naming its NodeId). A `ClaimLinkNode` is signed by both
//! nodes it links, and the **gestalt graph** (stored in the node's encrypted
//! database) joins nodes so linked into one gestalt: one person's devices.
//!
//! Everything here verifies what it is given: signatures, links, sequence,
//! sizes. It does no network IO; the network crate carries claims.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Copies of the other nodes' sigchains, checked claim by claim.
pub mod chains;
/// Signed claims: create, countersign, verify.
pub mod claims;
/// Contact codes: a node and where to reach it, to share with people.
pub mod contact;
/// Errors.
mod error;
/// The gestalt graph of linked nodes.
pub mod graph;
/// Pairing a new device: invitation codes, SPAKE2, cross-signed links.
pub mod pairing;
/// A node's own chain of claims, stored in its database.
pub mod sigchain;

pub use chains::{verify_continuation, MemberChains};
pub use claims::{ClaimPayload, ClaimType, SignedClaim};
pub use error::ClaimError;
pub use graph::{
    gestalt_of_chains, Adopted, ChainClaims, DeviceNotice, Dispute, GestaltGraph, Judgement,
    RemovalEffect, Revocation,
};
pub use sigchain::{verify_chain, ChainHead, Sigchain};
