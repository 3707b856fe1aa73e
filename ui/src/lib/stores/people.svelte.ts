// Other people: the people trusted here (their gestalts), this node's
// contact code to give them, sharing vaults with them, and the
// notifications they send (share offers to accept or decline).
import { type Backend, toBackendError } from "../backend";
import { shortId } from "../format";
import type {
  ContactDto,
  IdentityLogin,
  LinkedIdentity,
  NotificationDto,
  PersonDto,
  VaultSharingDto,
} from "../bindings";

/** A person's name for a sentence: an identity as it is, a NodeId
 * shortened. */
export function personName(name: string): string {
  return name.includes(":") ? name : shortId(name);
}

const MESSAGES: Partial<Record<string, string>> = {
  network: "Their device could not be reached. Is it online? Try again later.",
  network_off: "This device is not on the network.",
};

export class People {
  list = $state.raw<PersonDto[]>([]);
  /** How each shared vault is shared, by vault id. */
  sharing = $state.raw<VaultSharingDto[]>([]);
  notifications = $state.raw<NotificationDto[]>([]);
  contact = $state.raw<ContactDto | null>(null);
  /** The vault whose Share dialog is open. */
  sharingVault = $state<string | null>(null);
  error = $state<string | null>(null);
  notice = $state<string | null>(null);
  busy = $state(false);
  /** Accounts this node claimed (GitHub). */
  linked = $state.raw<LinkedIdentity[]>([]);
  /** A login under way: the code to enter on the provider's site. */
  login = $state.raw<IdentityLogin | null>(null);
  /** Text for the add-person box (a QR picture fills it). */
  target = $state("");

  constructor(private readonly backend: Backend) {}

  /** Offers not yet accepted, for the badge. */
  readonly pendingOffers = $derived(
    this.notifications.filter((n) => n.share && !n.share.accepted).length,
  );

  /** How vault `id` is shared, if it is. */
  sharingOf(id: string): VaultSharingDto | undefined {
    return this.sharing.find((v) => v.id === id);
  }

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

  /** Reload people and sharing (not notifications: reading marks them read). */
  async refresh() {
    try {
      const [list, sharing] = await Promise.all([this.backend.people(), this.backend.vaultSharing()]);
      this.list = list;
      this.sharing = sharing;
    } catch (raw) {
      this.error = toBackendError(raw).message;
    }
  }

  async loadNotifications() {
    const list = await this.attempt(() => this.backend.notifications());
    if (list) this.notifications = list;
  }

  async showContact() {
    const contact = await this.attempt(() => this.backend.contactCode());
    if (contact) this.contact = contact;
  }

  /** Fill the add-person box from a picture of their QR code. */
  async fromQrPicture() {
    const code = await this.attempt(() => this.backend.contactFromQrPicture());
    if (code) this.target = code;
  }

  async loadLinked() {
    try {
      this.linked = await this.backend.linkedIdentities();
    } catch (raw) {
      this.error = toBackendError(raw).message;
    }
  }

  /** Link an account: show the code, wait for approval on the provider's
   * site, then post the signed claim. */
  async link(provider = "github.com") {
    this.error = null;
    const login = await this.attempt(() => this.backend.identityLoginStart(provider));
    if (!login) return;
    this.login = login;
    try {
      await this.backend.identityLoginFinish(provider);
      const linked = await this.backend.claimIdentity(provider);
      this.notice = `Linked ${linked.identity}. People can find this device under it.`;
      await this.loadLinked();
    } catch (raw) {
      this.error = toBackendError(raw).message;
    } finally {
      this.login = null;
    }
  }

  /** Trust a person by contact code, NodeId or github.com:login. */
  async add(target: string): Promise<boolean> {
    if (!target.trim()) {
      this.error = "Paste their contact code, or type their NodeId or github.com:name.";
      return false;
    }
    const name = await this.attempt(() => this.backend.addPerson(target.trim()));
    if (name === undefined) return false;
    this.notice = `Added ${personName(name)}. Nothing is shared until you share a vault.`;
    await this.refresh();
    return true;
  }

  async remove(name: string) {
    if ((await this.attempt(() => this.backend.removePerson(name))) !== undefined) {
      this.notice = `${personName(name)} is no longer trusted; every share with them ended.`;
      await this.refresh();
    }
  }

  async setPermission(name: string, permission: "notify" | "scan", allow: boolean) {
    await this.attempt(() => this.backend.setPersonPermission(name, permission, allow));
    await this.refresh();
  }

  async share(vault: string, target: string, write: boolean): Promise<boolean> {
    if (!target.trim()) {
      this.error = "Choose whom to share with.";
      return false;
    }
    const offered = await this.attempt(() => this.backend.shareVault(vault, target.trim(), write));
    if (offered === undefined) return false;
    this.notice = offered
      ? `Shared “${vault}”; they were sent an offer.`
      : `Shared “${vault}”; they could not be told now and will find it when they look.`;
    await this.refresh();
    return true;
  }

  async unshare(vault: string, person: string) {
    if ((await this.attempt(() => this.backend.unshareVault(vault, person))) !== undefined) {
      this.notice = `“${vault}” is no longer shared with ${personName(person)}. They keep what they had.`;
      await this.refresh();
    }
  }

  /** Accept an offer: the vault is taken and kept in step from then on. */
  async accept(vault: string, onAdded: () => void) {
    const added = await this.attempt(() => this.backend.acceptShare(vault));
    if (!added) return;
    this.notice = `“${added.name}” is in your vaults now.`;
    this.notifications = this.notifications.map((n) =>
      n.share?.vault === vault ? { ...n, share: { ...n.share, accepted: true } } : n,
    );
    await this.refresh();
    onAdded();
  }

  async decline(vault: string) {
    const done = await this.attempt(async () => {
      await this.backend.dismissShare(vault);
      return true;
    });
    if (done) {
      this.notifications = this.notifications.filter((n) => n.share?.vault !== vault);
    }
  }

  clear() {
    this.linked = [];
    this.login = null;
    this.target = "";
    this.list = [];
    this.sharing = [];
    this.notifications = [];
    this.contact = null;
    this.sharingVault = null;
    this.error = null;
    this.notice = null;
  }
}
