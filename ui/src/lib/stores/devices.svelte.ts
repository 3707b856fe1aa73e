// Devices of this gestalt: the list, inviting a new device, joining another
// device's gestalt, the sync indicator and conflicts.
import { type Backend, toBackendError } from "../backend";
import type {
  ConflictDto,
  DeviceDto,
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
  joined = $state.raw<JoinedDto | null>(null);
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
      const error = toBackendError(raw);
      this.error = MESSAGES[error.code] ?? error.message;
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  /** Reload the list, the sync status and the conflicts. */
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
    } catch {
      // Locked meanwhile; the next unlock refreshes.
    }
  }

  /** Show a new invitation and watch for the device to join. */
  async invite() {
    await this.attempt(async () => {
      this.joined = null;
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

  private async poll() {
    this.now = Math.floor(Date.now() / 1000);
    try {
      this.pairing = await this.backend.pairingState();
    } catch {
      this.stopWatching();
      return;
    }
    if (this.pairing.state !== "waiting") {
      this.stopWatching();
      if (this.pairing.state === "paired") {
        this.invitation = null;
        await this.refresh();
      }
    } else if (this.secondsLeft === 0) {
      this.stopWatching();
    }
  }

  async cancel() {
    this.stopWatching();
    this.invitation = null;
    this.pairing = { state: "idle" };
    await this.backend.cancelInvitation().catch(() => undefined);
  }

  /** Join the gestalt of the device that shows `code`. */
  async join(code: string): Promise<boolean> {
    const trimmed = code.trim();
    if (!trimmed) {
      this.error = "Paste the code the other device shows.";
      return false;
    }
    const joined = await this.attempt(() => this.backend.joinDevice(trimmed));
    if (!joined) return false;
    this.joined = joined;
    await this.refresh();
    return true;
  }

  /** Join with a picture of the other device's QR code. */
  async joinFromPicture(): Promise<boolean> {
    const joined = await this.attempt(() => this.backend.joinFromQrPicture());
    if (!joined) return false;
    this.joined = joined;
    await this.refresh();
    return true;
  }

  async remove(device: string) {
    await this.attempt(async () => {
      await this.backend.removeDevice(device);
      await this.refresh();
    });
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
    this.joined = null;
    this.sync = null;
    this.conflicts = [];
    this.error = null;
  }
}
