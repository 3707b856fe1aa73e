// Devices of this gestalt: the list, inviting a new device and joining
// another device's gestalt (each with the fingerprint check before anything
// is recorded), devices another device added, removing a device, the sync
// indicator and conflicts.
import { type Backend, toBackendError } from "../backend";
import { shortId } from "../format";
import type {
  ConflictDto,
  DeviceDto,
  DeviceDisputeDto,
  RemovedDeviceDto,
  DeviceNoticeDto,
  InvitationDto,
  JoinedDto,
  PairingStateDto,
  SyncStatusDto,
} from "../bindings";

const MESSAGES: Partial<Record<string, string>> = {
  pairing_expired: "This pairing code has expired. Show a new one on the other device.",
  pairing_used: "This pairing code was already used. Show a new one on the other device.",
  pairing_wrong_code: "The code does not match. Check it and try again.",
  network: "The other device could not be reached. Are both devices on the same network?",
};

export class Devices {
  list = $state.raw<DeviceDto[]>([]);
  invitation = $state.raw<InvitationDto | null>(null);
  pairing = $state.raw<PairingStateDto>({ state: "idle" });
  /** The inviting side said the digits match; the new device has yet to. */
  pairingAccepted = $state(false);
  /** The joining side: digits to compare; nothing is recorded yet. */
  pendingJoin = $state.raw<JoinedDto | null>(null);
  /** The joining side said the digits match and waits for the other device. */
  joinAccepted = $state(false);
  /** The joining side: the pairing was recorded on both devices. */
  joined = $state.raw<JoinedDto | null>(null);
  /** Devices another device added, to keep or remove. */
  notices = $state.raw<DeviceNoticeDto[]>([]);
  /** Devices that removed each other, for the person to decide. */
  disputes = $state.raw<DeviceDisputeDto[]>([]);
  /** The device the removal dialog asks about. */
  removing = $state<string | null>(null);
  /** The devices out that removing it lets back: they come back unless
   * removed too. */
  removingRemoved = $state.raw<RemovedDeviceDto[]>([]);
  /** Whether that list was read (confirming waits for it). */
  removedListed = $state(false);
  /** The person's answer for each of them: true keeps it removed. No
   * default: the same list is a retired laptop's removal of a stolen
   * tablet (keep it out) and a thief's removal of the person's phone (let
   * it back), and nothing in the chains tells them apart. */
  keepRemoved = $state.raw<Record<string, boolean>>({});
  /** The devices that go with it (joined to this one only through it). */
  removingGoing = $state.raw<RemovedDeviceDto[]>([]);
  sync = $state.raw<SyncStatusDto | null>(null);
  conflicts = $state.raw<ConflictDto[]>([]);
  error = $state<string | null>(null);
  busy = $state(false);
  /** Seconds since the epoch, ticking while an invitation is shown. */
  now = $state(Math.floor(Date.now() / 1000));

  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly backend: Backend) {}

  readonly secondsLeft = $derived(
    this.invitation ? Math.max(0, this.invitation.expiresAt - this.now) : 0,
  );

  private async attempt<T>(work: () => Promise<T>): Promise<T | undefined> {
    this.busy = true;
    this.error = null;
    try {
      return await work();
    } catch (raw) {
      this.showError(raw);
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  private showError(raw: unknown) {
    const error = toBackendError(raw);
    this.error = MESSAGES[error.code] ?? error.message;
  }

  /** Reload the list, the notices, the sync status and the conflicts. */
  async refresh() {
    try {
      const [list, sync, conflicts] = await Promise.all([
        this.backend.devices(),
        this.backend.syncStatus(),
        this.backend.conflicts(),
      ]);
      this.list = list;
      this.sync = sync;
      this.conflicts = conflicts;
      this.notices = await this.backend.deviceNotices();
      this.disputes = await this.backend.deviceDisputes();
    } catch {
      // Locked meanwhile; the next unlock refreshes.
    }
  }

  /** Show a new invitation and watch for the device to join. */
  async invite() {
    await this.attempt(async () => {
      this.joined = null;
      this.pairingAccepted = false;
      this.invitation = await this.backend.inviteDevice();
      this.now = Math.floor(Date.now() / 1000);
      this.pairing = await this.backend.pairingState();
      this.watch();
    });
  }

  private watch() {
    this.stopWatching();
    this.timer = setInterval(() => void this.poll(), 1000);
  }

  private stopWatching() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Follow the invitation: waiting → confirming → paired (or failed). */
  async poll() {
    this.now = Math.floor(Date.now() / 1000);
    try {
      this.pairing = await this.backend.pairingState();
    } catch {
      this.stopWatching();
      return;
    }
    const state = this.pairing.state;
    if (state === "waiting" && this.secondsLeft === 0) {
      this.stopWatching();
    } else if (state === "paired" || state === "failed" || state === "idle") {
      this.stopWatching();
      this.invitation = null;
      this.pairingAccepted = false;
      if (state === "paired") await this.refresh();
    }
  }

  /** The inviting side: the person compared the digits on both screens. */
  async answerPairing(accept: boolean) {
    await this.attempt(async () => {
      await this.backend.confirmPairing(accept);
      this.pairingAccepted = accept;
    });
    await this.poll();
  }

  /** Copy the code like a secret: out of clipboard history, cleared after the delay. */
  async copyCode() {
    await this.attempt(async () => {
      await this.backend.copyPairingCode();
    });
  }

  async cancel() {
    this.stopWatching();
    const wasConfirming = this.pairing.state === "confirming";
    this.invitation = null;
    this.pairing = { state: "idle" };
    this.pairingAccepted = false;
    if (wasConfirming) await this.backend.confirmPairing(false).catch(() => undefined);
    await this.backend.cancelInvitation().catch(() => undefined);
  }

  /** Start joining the device that shows `code`: the digits to compare
   * come back; nothing is recorded until `answerJoin`. */
  async join(code: string): Promise<boolean> {
    const trimmed = code.trim();
    if (!trimmed) {
      this.error = "Paste the code the other device shows.";
      return false;
    }
    return this.startJoin(() => this.backend.joinDevice(trimmed));
  }

  /** Start joining with a picture of the other device's QR code. */
  async joinFromPicture(): Promise<boolean> {
    return this.startJoin(() => this.backend.joinFromQrPicture());
  }

  private async startJoin(work: () => Promise<JoinedDto | null>): Promise<boolean> {
    this.joined = null;
    this.joinAccepted = false;
    const pending = await this.attempt(work);
    if (!pending) return false;
    this.pendingJoin = pending;
    return true;
  }

  /** The joining side: the digits match (finish once the other device
   * confirms too) or not (cancel; nothing is recorded on either side).
   * True when the pairing was recorded. */
  async answerJoin(accept: boolean): Promise<boolean> {
    const pending = this.pendingJoin;
    if (!pending) return false;
    this.error = null;
    if (!accept) {
      this.pendingJoin = null;
      this.joinAccepted = false;
      await this.backend.confirmJoin(false).catch(() => undefined);
      return false;
    }
    this.joinAccepted = true;
    let failure: unknown = null;
    try {
      await this.backend.confirmJoin(true);
    } catch (raw) {
      failure = raw ?? "failed";
    }
    // Cancel pressed while waiting has already reset the screen.
    if (this.pendingJoin !== pending) {
      await this.refresh();
      return false;
    }
    this.pendingJoin = null;
    this.joinAccepted = false;
    if (failure !== null) {
      this.showError(failure);
      return false;
    }
    this.joined = pending;
    await this.refresh();
    return true;
  }

  /** Name this device; returns whether it took. */
  async rename(name: string): Promise<boolean> {
    const done = await this.attempt(async () => {
      await this.backend.setDeviceName(name);
      await this.refresh();
      return true;
    });
    return done === true;
  }

  /** What to call `device` on screen: its name, else what it is. A name
   * another device also has, or one that reads like these labels, comes
   * with its short NodeId: a name is the device's own word, not proof. */
  label(device: DeviceDto): string {
    const name = device.name;
    if (!name) return device.thisDevice ? "This device" : "Unnamed device";
    const same = (other: string | null) => other?.toLocaleLowerCase() === name.toLocaleLowerCase();
    const twin = this.list.some((d) => d.nodeId !== device.nodeId && same(d.name));
    const lookalike = /this device|unnamed device/i.test(name);
    return twin || lookalike ? `${name} (${shortId(device.nodeId)})` : name;
  }

  /** Keep a device another device added. */
  async keep(device: string) {
    await this.attempt(async () => {
      await this.backend.keepDevice(device);
      await this.refresh();
    });
  }

  /** Ask before removing `device` (the dialog says what it does). */
  askRemove(device: string) {
    this.resetRemoval();
    this.removing = device;
    const request = this.effectRequest;
    void this.backend.removalEffect(device).then(
      (effect) => {
        if (request !== this.effectRequest) return;
        this.removingRemoved = effect.back;
        this.removingGoing = effect.going;
        this.removedListed = true;
      },
      () => {
        if (request !== this.effectRequest) return;
        this.error = "Could not read which devices removing it lets back. Close this and try again.";
      },
    );
  }

  /** Keep `device` removed when the one asked about is removed, or not. */
  setKeepRemoved(device: string, keep: boolean) {
    this.keepRemoved = { ...this.keepRemoved, [device]: keep };
  }

  /** Whether the removal may go ahead: the list read, each answered. */
  get removalReady(): boolean {
    return this.removedListed && this.removingRemoved.every((d) => d.device in this.keepRemoved);
  }

  /** Which request for what removing changes is current (a late answer
   * to a dialog closed since is dropped). */
  private effectRequest = 0;
  /** Devices kept out and removed already, in this dialog. */
  private keptOut: string[] = [];

  private resetRemoval() {
    this.effectRequest += 1;
    this.removing = null;
    this.removingRemoved = [];
    this.removingGoing = [];
    this.removedListed = false;
    this.keepRemoved = {};
    this.keptOut = [];
    this.error = null;
  }

  cancelRemove() {
    this.resetRemoval();
  }

  /** Remove the device the dialog asked about, from every device, for good. */
  async confirmRemove() {
    const device = this.removing;
    if (!device) return;
    if (!this.removalReady) return;
    const keep = this.removingRemoved.filter((d) => this.keepRemoved[d.device]).map((d) => d.device);
    const outcome = await this.attempt(async () => {
      // Those kept out first, while it still keeps them out: removed after
      // it, they would be devices again meanwhile.
      for (const other of keep.filter((d) => !this.keptOut.includes(d))) {
        await this.backend.revokeDevice(other);
        this.keptOut = [...this.keptOut, other];
      }
      // Keeping one out may let back others it had removed: asked about
      // too, before the device goes.
      const again = await this.backend.removalEffect(device);
      const asked = new Set(this.removingRemoved.map((d) => d.device));
      const fresh = again.back.filter((d) => !asked.has(d.device));
      this.removingGoing = again.going;
      if (fresh.length > 0) {
        this.removingRemoved = [...this.removingRemoved, ...fresh];
        return "ask";
      }
      await this.backend.revokeDevice(device);
      return "done";
    });
    // On failure the dialog stays, saying why; with more to ask, it asks.
    if (outcome !== "done") return;
    this.resetRemoval();
    await this.refresh();
  }

  async resolve(conflict: ConflictDto, keepTheirs: boolean) {
    await this.attempt(async () => {
      await this.backend.resolveConflict(conflict.vault, conflict.path, conflict.theirsPath, keepTheirs);
      await this.refresh();
    });
  }

  clear() {
    this.stopWatching();
    this.list = [];
    this.invitation = null;
    this.pairing = { state: "idle" };
    this.pairingAccepted = false;
    this.pendingJoin = null;
    this.joinAccepted = false;
    this.joined = null;
    this.notices = [];
    this.disputes = [];
    this.removing = null;
    this.sync = null;
    this.conflicts = [];
    this.error = null;
  }
}
