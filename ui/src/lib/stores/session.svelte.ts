// The app's navigation and session state: which screen shows, and what it
// needs. Components render this and call its methods; the node does the work.
import { type Backend, toBackendError } from "../backend";
import { newPasswordProblem } from "../passwords";
import { pickPositions, wordsMatch } from "../recoveryCheck";
import type { StatusDto } from "../bindings";
import { VaultBrowser } from "./vaults.svelte";
import { Devices } from "./devices.svelte";
import { People } from "./people.svelte";
import { RecentlyDeleted } from "./deleted.svelte";

export type Screen =
  | { kind: "loading" }
  | { kind: "welcome" }
  | { kind: "create" }
  | { kind: "showCode"; nodeId: string; words: string[] }
  | { kind: "confirmCode"; nodeId: string; words: string[]; positions: number[] }
  | { kind: "unlock"; nodeId: string }
  | { kind: "recover"; nodeId: string | null }
  | { kind: "home"; nodeId: string }
  | { kind: "join"; nodeId: string }
  | { kind: "fatal"; message: string };

/** The vault a new node starts with. */
export const FIRST_VAULT = "Personal";

export class Session {
  screen = $state<Screen>({ kind: "loading" });
  busy = $state(false);
  error = $state<string | null>(null);
  /** Whether the unlock screen offers the OS keyring. */
  keyringEnabled = $state(false);

  readonly browser: VaultBrowser;
  readonly devices: Devices;
  readonly people: People;
  readonly deleted: RecentlyDeleted;
  /** First run chose "Join my other device": after the node is made, join. */
  joining = $state(false);

  private lastTouch = 0;

  constructor(readonly backend: Backend) {
    this.browser = new VaultBrowser(backend);
    this.devices = new Devices(backend);
    this.people = new People(backend);
    this.deleted = new RecentlyDeleted(backend, () => this.browser.refresh());
    void backend.onLocked(() => this.lockedByNode());
    void backend.onNodeChanged(() => this.nodeChanged());
  }

  /** The node locked itself (idle): forget what is shown, ask to unlock. */
  lockedByNode() {
    this.browser.clear();
    this.devices.clear();
    this.people.clear();
    this.deleted.clear();
    void this.load();
  }

  /** A sync or pairing changed the node: refresh what is shown. */
  nodeChanged() {
    if (this.screen.kind !== "home" && this.screen.kind !== "join") return;
    void this.browser.refresh();
    void this.devices.refresh();
    void this.people.refresh();
    void this.people.loadNotifications();
    void this.deleted.refresh();
  }

  /** User activity on any unlocked screen: tell the node (at most once a
   * second), so auto-lock waits. */
  activity(now = Date.now()) {
    const unlocked = ["home", "showCode", "confirmCode", "join"].includes(this.screen.kind);
    if (!unlocked || now - this.lastTouch < 1000) return;
    this.lastTouch = now;
    void this.backend.touch();
  }

  private show(screen: Screen) {
    this.error = null;
    this.screen = screen;
  }

  private fromStatus(status: StatusDto): Screen {
    if (status.state === "uninitialised" || !status.nodeId) return { kind: "welcome" };
    if (status.state === "locked") return { kind: "unlock", nodeId: status.nodeId };
    return { kind: "home", nodeId: status.nodeId };
  }

  /** Run a node call with the busy flag set, turning failures into `error`. */
  private async attempt(work: () => Promise<void>) {
    this.busy = true;
    this.error = null;
    try {
      await work();
    } catch (raw) {
      const error = toBackendError(raw);
      this.error = error.message;
    } finally {
      this.busy = false;
    }
  }

  async load() {
    try {
      const screen = this.fromStatus(await this.backend.status());
      this.show(screen);
      this.keyringEnabled = false;
      if (screen.kind === "unlock") {
        // The keyring may be slow to answer (or absent); the unlock screen
        // does not wait for it, the button appears when it does.
        void this.backend
          .keyringStatus()
          .then((status) => (this.keyringEnabled = status.enabled))
          .catch(() => undefined);
      }
    } catch (raw) {
      this.show({ kind: "fatal", message: toBackendError(raw).message });
    }
  }

  startCreate() {
    this.joining = false;
    this.show({ kind: "create" });
  }

  /** First run: make this device's node, then join the other device. */
  startJoin() {
    this.joining = true;
    this.show({ kind: "create" });
  }

  /** Done joining (or skipped): open the vaults. */
  finishJoin() {
    if (this.screen.kind !== "join") return;
    this.joining = false;
    this.show({ kind: "home", nodeId: this.screen.nodeId });
  }

  startRecover() {
    const nodeId = this.screen.kind === "unlock" ? this.screen.nodeId : null;
    this.show({ kind: "recover", nodeId });
  }

  back() {
    void this.load();
  }

  /** Make the node, named `deviceName` (left unnamed when empty). */
  async create(password: string, confirmation: string, deviceName = "") {
    const problem = newPasswordProblem(password, confirmation);
    if (problem) {
      this.error = problem;
      return;
    }
    if (deviceName.trim().length > 64) {
      this.error = "Give this device a shorter name (at most 64 characters).";
      return;
    }
    await this.attempt(async () => {
      const created = await this.backend.createNode(password);
      // The node exists now: a name or a first vault that fails to be made
      // is no reason to stop (both can be made later).
      if (deviceName.trim()) await this.backend.setDeviceName(deviceName).catch(() => {});
      // A new node starts with a vault to put things in; a device that
      // joins another gets that one's vaults instead.
      if (!this.joining) await this.backend.createVault(FIRST_VAULT).catch(() => {});
      this.show({
        kind: "showCode",
        nodeId: created.nodeId,
        words: created.recoveryCode.split(" "),
      });
    });
  }

  /** The user says they wrote the code down: ask for a few words back. */
  codeWrittenDown() {
    if (this.screen.kind !== "showCode") return;
    const { nodeId, words } = this.screen;
    this.show({ kind: "confirmCode", nodeId, words, positions: pickPositions(words.length) });
  }

  /** Back from the confirmation to the code, to read it again. */
  showCodeAgain() {
    if (this.screen.kind !== "confirmCode") return;
    const { nodeId, words } = this.screen;
    this.show({ kind: "showCode", nodeId, words });
  }

  confirmCode(answers: string[]) {
    if (this.screen.kind !== "confirmCode") return;
    const { nodeId, words, positions } = this.screen;
    if (!wordsMatch(words, positions, answers)) {
      this.error = "Those words do not match your recovery code. Check them and try again.";
      return;
    }
    // The words leave memory with this screen: the code is never shown again.
    this.show(this.joining ? { kind: "join", nodeId } : { kind: "home", nodeId });
  }

  async unlock(password: string) {
    if (this.screen.kind !== "unlock") return;
    const nodeId = this.screen.nodeId;
    await this.attempt(async () => {
      await this.backend.unlock(password);
      this.show({ kind: "home", nodeId });
    });
  }

  async unlockWithKeyring() {
    if (this.screen.kind !== "unlock") return;
    const nodeId = this.screen.nodeId;
    await this.attempt(async () => {
      await this.backend.unlockWithKeyring();
      this.show({ kind: "home", nodeId });
    });
  }

  async lock() {
    await this.attempt(async () => {
      // Drop every decrypted secret from the UI before the node forgets its keys.
      this.browser.clear();
      this.devices.clear();
      this.people.clear();
      this.deleted.clear();
      await this.backend.lock();
      await this.load();
    });
  }

  async recover(code: string, password: string, confirmation: string) {
    const problem = newPasswordProblem(password, confirmation);
    if (problem) {
      this.error = problem;
      return;
    }
    await this.attempt(async () => {
      await this.backend.recover(code.trim().toLowerCase().split(/\s+/).join(" "), password);
      await this.load();
    });
  }

  async copy(text: string) {
    await this.attempt(() => this.backend.copyText(text));
  }
}
