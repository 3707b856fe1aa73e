// "Recently deleted": vaults and secrets deleted on any device, restorable
// for 30 days. Components render it and call its methods.
import { type Backend, toBackendError } from "../backend";
import type { DeletedSecretDto, DeletedVaultDto } from "../bindings";

export class RecentlyDeleted {
  vaults = $state.raw<DeletedVaultDto[]>([]);
  secrets = $state.raw<DeletedSecretDto[]>([]);
  error = $state<string | null>(null);
  notice = $state<string | null>(null);
  busy = $state(false);
  /** Whether the page is on screen (then a sync refreshes it). */
  shown = $state(false);

  /** `restored` reloads what shows the restored vault or secret. */
  constructor(
    private readonly backend: Backend,
    private readonly restored: () => Promise<void>,
  ) {}

  private async attempt(work: () => Promise<void>) {
    this.busy = true;
    this.error = null;
    try {
      await work();
    } catch (raw) {
      this.error = toBackendError(raw).message;
    } finally {
      this.busy = false;
    }
  }

  async load() {
    await this.attempt(() => this.fetch());
  }

  private async fetch() {
    const [vaults, secrets] = await Promise.all([this.backend.deletedVaults(), this.backend.deletedSecrets()]);
    this.vaults = vaults;
    this.secrets = secrets;
  }

  /** The page opened: load it, and keep it fresh while it shows. */
  async show() {
    this.shown = true;
    this.notice = null;
    await this.load();
  }

  hide() {
    this.shown = false;
  }

  /** Another device changed something: reload if the page is on screen. */
  async refresh() {
    if (this.shown) await this.load();
  }

  async restoreVault(vault: DeletedVaultDto) {
    await this.attempt(async () => {
      const back = await this.backend.restoreDeletedVault(vault.id);
      this.notice = `Restored the vault “${back.name}” on all your devices.`;
      await this.restored();
      await this.fetch();
    });
  }

  async restoreSecret(secret: DeletedSecretDto) {
    await this.attempt(async () => {
      await this.backend.restoreSecret(secret.vault, secret.path, secret.version);
      this.notice = `Restored “${secret.path}” in ${secret.vault}.`;
      await this.restored();
      await this.fetch();
    });
  }

  /** Forget the names shown: called when the node locks. */
  clear() {
    this.vaults = [];
    this.secrets = [];
    this.error = null;
    this.notice = null;
    this.shown = false;
  }
}
