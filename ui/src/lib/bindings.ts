// Generated from polykey-node's api module by `UPDATE_BINDINGS=1 cargo test -p polykey-tests --test tidy`.
// Do not edit by hand.

export type ErrorCode = "already_exists" | "not_initialised" | "in_use" | "wrong_password" | "password_too_short" | "locked" | "already_unlocked" | "invalid_recovery_code" | "recovery_code_mismatch" | "key_file_corrupt" | "wrong_key" | "tampered" | "data_corrupt" | "io" | "internal" | "unknown_vault" | "vault_exists" | "invalid_vault_name" | "invalid_path" | "secret_not_found" | "secret_exists" | "wrong_kind" | "directory_not_empty" | "secret_too_large" | "unknown_version";

export type ApiError = { 
/**
 * What went wrong, for code.
 */
code: ErrorCode, 
/**
 * What went wrong, for people.
 */
message: string, };

export type NodeStateDto = "uninitialised" | "locked" | "unlocked";

export type StatusDto = { 
/**
 * Uninitialised, locked or unlocked.
 */
state: NodeStateDto, 
/**
 * The NodeId (`v…`), known even while locked.
 */
nodeId: string | null, };

export type CreatedDto = { 
/**
 * The new NodeId.
 */
nodeId: string, 
/**
 * The 24 words, shown to the user once.
 */
recoveryCode: string, };
