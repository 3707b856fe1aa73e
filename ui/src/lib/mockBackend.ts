// An in-memory node for component tests: same interface, same error codes.
import { type Backend, BackendError } from "./backend";
import type { CreatedDto, StatusDto } from "./bindings";

const WORDS = Array.from({ length: 24 }, (_, i) => `word${i + 1}`);

export class MockBackend implements Backend {
  state: StatusDto["state"] = "uninitialised";
  nodeId: string | null = null;
  password: string | null = null;
  copied: string[] = [];

  static locked(password: string, nodeId = "vmocknode"): MockBackend {
    const backend = new MockBackend();
    backend.state = "locked";
    backend.password = password;
    backend.nodeId = nodeId;
    return backend;
  }

  async status(): Promise<StatusDto> {
    return { state: this.state, nodeId: this.nodeId };
  }

  async createNode(password: string): Promise<CreatedDto> {
    if (this.state !== "uninitialised") throw new BackendError("already_exists", "a node already exists here");
    this.state = "unlocked";
    this.password = password;
    this.nodeId = "vmocknode";
    return { nodeId: this.nodeId, recoveryCode: WORDS.join(" ") };
  }

  async unlock(password: string): Promise<void> {
    if (password !== this.password) throw new BackendError("wrong_password", "wrong password");
    this.state = "unlocked";
  }

  async lock(): Promise<void> {
    this.state = "locked";
  }

  async recover(code: string, password: string): Promise<void> {
    if (code !== WORDS.join(" ")) throw new BackendError("recovery_code_mismatch", "different node");
    this.password = password;
    this.nodeId = "vmocknode";
    this.state = "unlocked";
  }

  async copyText(text: string): Promise<void> {
    this.copied.push(text);
  }
}
