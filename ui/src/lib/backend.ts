// The one interface through which the UI reaches the node. The Tauri
// implementation calls the Rust commands; tests use `MockBackend`.
import { invoke } from "@tauri-apps/api/core";
import { writeText } from "@tauri-apps/plugin-clipboard-manager";
import type { ApiError, CreatedDto, ErrorCode, StatusDto } from "./bindings";

export interface Backend {
  status(): Promise<StatusDto>;
  createNode(password: string): Promise<CreatedDto>;
  unlock(password: string): Promise<void>;
  lock(): Promise<void>;
  recover(code: string, password: string): Promise<void>;
  copyText(text: string): Promise<void>;
}

/** An error from the node, carrying the stable code the UI branches on. */
export class BackendError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

function isApiError(value: unknown): value is ApiError {
  return (
    typeof value === "object" &&
    value !== null &&
    "code" in value &&
    "message" in value
  );
}

export function toBackendError(error: unknown): BackendError {
  if (error instanceof BackendError) return error;
  if (isApiError(error)) return new BackendError(error.code, error.message);
  return new BackendError("internal", String(error));
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    throw toBackendError(error);
  }
}

export const tauriBackend: Backend = {
  status: () => call("status"),
  createNode: (password) => call("create_node", { password }),
  unlock: (password) => call("unlock", { password }),
  lock: () => call("lock"),
  recover: (code, password) => call("recover", { code, password }),
  copyText: (text) => writeText(text),
};
