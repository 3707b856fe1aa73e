// The fingerprint check before a pairing is recorded, devices added by
// another device, removing a device, and "Recently deleted".
import { describe, expect, it } from "vitest";
import { flushSync } from "svelte";
import { allByTestId, byTestId, click, settle, text, unlockedApp } from "./harness";
import { daysLeftText, shortId } from "../src/lib/format";

async function home(nodeId = "vthisdevice0000000000000000000000") {
  const app = await unlockedApp(nodeId);
  return { ...app, devices: app.session.devices };
}

function press(element: Element, key: string) {
  element.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));
}

const JOINER = "vjoiner00000000000000000000000000000";
const OTHER = "vother000000000000000000000000000000";
const ROGUE = "vrogue000000000000000000000000000000";

describe("pairing: the inviting side", () => {
  it("shows the digits once a device has the code, records nothing until both confirm", async () => {
    const { backend, devices, target } = await home();
    click(target, "devices-button");
    await settle();
    await devices.invite();
    flushSync();
    expect(byTestId(target, "invitation")).not.toBeNull();

    backend.joinerArrives(JOINER, "481 516");
    await devices.poll();
    flushSync();
    expect(byTestId(target, "invitation")).toBeNull();
    expect(byTestId(target, "pairing-fingerprint")?.textContent?.trim()).toBe("481 516");
    // The next step is the question: focus is on it.
    expect(document.activeElement).toBe(byTestId(target, "pairing-match"));
    expect(allByTestId(target, "device-row")).toHaveLength(1);

    click(target, "pairing-match");
    await settle();
    expect(byTestId(target, "pairing-waiting")?.textContent?.replace(/\s+/g, " ")).toContain("Waiting for the new device");
    expect(byTestId(target, "pairing-match")).toBeNull();
    await devices.refresh();
    flushSync();
    expect(allByTestId(target, "device-row")).toHaveLength(1);

    backend.joinerConfirms();
    await devices.poll();
    await settle();
    expect(byTestId(target, "invitation-paired")?.textContent?.replace(/\s+/g, " ")).toContain("481 516");
    expect(allByTestId(target, "device-row")).toHaveLength(2);
  });

  it("cancel at the digits leaves nothing recorded", async () => {
    const { backend, devices, target } = await home();
    click(target, "devices-button");
    await devices.invite();
    backend.joinerArrives(JOINER);
    await devices.poll();
    flushSync();
    click(target, "pairing-cancel");
    await settle();
    expect(byTestId(target, "invitation-failed")?.textContent?.replace(/\s+/g, " ")).toContain("cancelled");
    expect(byTestId(target, "pairing-fingerprint")).toBeNull();
    expect(backend.paired).toHaveLength(0);
    expect(allByTestId(target, "device-row")).toHaveLength(1);
  });
});

describe("pairing: the joining side", () => {
  it("Devices › Join another device: digits first, then waiting, then paired", async () => {
    const { backend, devices, target } = await home();
    click(target, "devices-button");
    await settle();
    click(target, "join-another");
    flushSync();
    let answer: () => void = () => undefined;
    backend.otherDeviceAnswers = new Promise((resolve) => (answer = resolve));

    expect(await devices.join("polykey-pair:good")).toBe(true);
    flushSync();
    expect(byTestId(target, "join-fingerprint")?.textContent?.trim()).toBe("123 456");
    expect(byTestId(target, "join-code")).toBeNull();

    click(target, "join-match");
    await settle();
    expect(text(byTestId(target, "join-waiting"))).toContain("check that your other device shows 123 456 and choose They match there");
    expect(allByTestId(target, "device-row")).toHaveLength(1);

    answer();
    await settle();
    expect(byTestId(target, "join-done")?.textContent?.replace(/\s+/g, " ")).toContain("Paired");
    expect(allByTestId(target, "device-row")).toHaveLength(2);
  });

  it("the other device cancelling says so and records nothing", async () => {
    const { backend, devices, target } = await home();
    click(target, "devices-button");
    await settle();
    click(target, "join-another");
    flushSync();
    backend.otherDeviceAnswer = "cancel";
    await devices.join("polykey-pair:good");
    expect(await devices.answerJoin(true)).toBe(false);
    flushSync();
    expect(byTestId(target, "join-error")?.textContent?.replace(/\s+/g, " ")).toContain("other device cancelled");
    expect(byTestId(target, "join-code")).not.toBeNull();
    expect(backend.paired).toHaveLength(0);
  });

  it("once confirmed, the joining side waits and can still cancel; the other device's cancel ends it", async () => {
    const { backend, devices, target } = await home();
    click(target, "devices-button");
    await settle();
    click(target, "join-another");
    flushSync();
    let answer: () => void = () => undefined;
    backend.otherDeviceAnswers = new Promise((resolve) => (answer = resolve));
    backend.otherDeviceAnswer = "cancel";
    await devices.join("polykey-pair:good");
    const waiting = devices.answerJoin(true);
    await settle();
    expect(byTestId(target, "join-cancel")).not.toBeNull();
    answer();
    expect(await waiting).toBe(false);
    flushSync();
    expect(devices.joined).toBeNull();
    expect(text(byTestId(target, "join-error"))).toContain("other device cancelled");
    expect(backend.paired).toHaveLength(0);
  });
});

describe("devices added by another device", () => {
  it("shows a notice on every page and on the Devices button; Keep dismisses it", async () => {
    const { backend, target } = await home();
    backend.paired.push({ nodeId: OTHER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    backend.deviceAddedElsewhere(ROGUE, OTHER);
    await settle();
    const notice = byTestId(target, "device-notice");
    expect(notice?.textContent?.replace(/\s+/g, " ")).toContain(`${shortId(OTHER)} added ${shortId(ROGUE)}`);
    expect(notice?.getAttribute("role")).toBe("alert");
    expect(byTestId(target, "devices-badge")?.textContent).toBe("1");
    expect(byTestId(target, "devices-button")?.textContent?.replace(/\s+/g, " ")).toContain("1 device to review");

    click(target, "notice-keep");
    await settle();
    expect(byTestId(target, "device-notice")).toBeNull();
    expect(byTestId(target, "devices-badge")).toBeNull();
    expect(backend.paired.map((d) => d.nodeId)).toContain(ROGUE);
  });

  it("Remove asks first (Escape keeps it), then removes it for good", async () => {
    const { backend, target } = await home();
    backend.deviceAddedElsewhere(ROGUE, OTHER);
    await settle();
    const removeButton = byTestId(target, "notice-remove")!;
    removeButton.focus();
    removeButton.click();
    await settle();
    const dialog = byTestId(document, "remove-device-dialog")!;
    expect(dialog.getAttribute("role")).toBe("alertdialog");
    expect(dialog.getAttribute("aria-modal")).toBe("true");
    expect(text(dialog)).toContain("will be removed from all your devices and refused from now on");
    expect(text(dialog)).toContain("Only a new pairing brings it back");
    // Focus moves into the dialog, on the harmless choice.
    expect(document.activeElement).toBe(byTestId(dialog, "remove-device-dialog-cancel"));

    press(dialog, "Escape");
    await settle();
    expect(byTestId(document, "remove-device-dialog")).toBeNull();
    expect(document.activeElement).toBe(removeButton);
    expect(backend.revoked).toEqual([]);

    click(target, "notice-remove");
    await settle();
    click(document, "remove-device-dialog-confirm");
    await settle();
    expect(backend.revoked).toEqual([ROGUE]);
    expect(byTestId(target, "device-notice")).toBeNull();
    expect(byTestId(document, "remove-device-dialog")).toBeNull();
  });
});

describe("devices that removed each other", () => {
  it("shows both as a dispute on every page; removing one brings the other back", async () => {
    const { backend, target } = await home();
    backend.paired.push({ nodeId: OTHER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    backend.paired.push({ nodeId: ROGUE, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    backend.devicesRemovedEachOther(OTHER, ROGUE);
    await settle();
    const shown = byTestId(target, "device-disputes")!;
    expect(byTestId(shown, "device-dispute")).not.toBeNull();
    expect(text(shown)).toContain("Your devices removed each other");
    expect(text(shown)).toContain(`${shortId(OTHER)}, removed by ${shortId(ROGUE)}`);
    expect(text(shown)).toContain(`${shortId(ROGUE)}, removed by ${shortId(OTHER)}`);
    expect(allByTestId(target, "device-dispute")).toHaveLength(2);
    expect(byTestId(target, "devices-badge")?.textContent).toBe("2");

    // The person does not have the rogue any more: removing it asks first,
    // and whether to let back the device it removed.
    const removes = allByTestId(target, "dispute-remove");
    (removes[1] as HTMLElement).click();
    await settle();
    expect(text(byTestId(document, "remove-device-dialog")!)).toContain("will be removed from all your devices");
    expect(text(byTestId(document, "remove-device-removed")!)).toContain(shortId(OTHER));
    (byTestId(document, "let-back") as HTMLInputElement).click();
    await settle();
    click(document, "remove-device-dialog-confirm");
    await settle();
    expect(backend.revoked).toEqual([ROGUE]);
    expect(byTestId(target, "device-disputes")).toBeNull();
    expect(byTestId(target, "devices-badge")).toBeNull();
    click(target, "devices-button");
    await settle();
    expect(allByTestId(target, "device-row")).toHaveLength(2);
  });

  it("names what a device nobody removed removed", async () => {
    const { backend, target } = await home();
    backend.devicesRemovedEachOther(OTHER, ROGUE, true);
    await settle();
    const shown = byTestId(target, "device-disputes")!;
    expect(text(shown)).toContain(`${shortId(OTHER)}, removed by ${shortId(ROGUE)}`);
    expect(text(shown)).toContain(`${shortId(ROGUE)}, which removed ${shortId(OTHER)}`);
    expect(allByTestId(target, "dispute-remove")).toHaveLength(2);
  });
});

describe("removing a device that had removed another", () => {
  async function asked() {
    const app = await home();
    app.backend.paired.push({ nodeId: OTHER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    app.backend.deviceRemovedElsewhere(ROGUE, OTHER);
    await settle();
    click(app.target, "devices-button");
    await settle();
    click(app.target, "remove-device");
    await settle();
    return app;
  }

  it("asks whether to keep out what it removed, with no answer chosen for the person", async () => {
    const { backend, target } = await asked();
    const dialog = byTestId(document, "remove-device-dialog")!;
    expect(text(byTestId(dialog, "remove-device-removed")!)).toContain(shortId(ROGUE));
    const confirm = byTestId(document, "remove-device-dialog-confirm") as HTMLButtonElement;
    expect(confirm.disabled).toBe(true);
    (byTestId(dialog, "keep-removed") as HTMLInputElement).click();
    await settle();
    expect(confirm.disabled).toBe(false);
    click(document, "remove-device-dialog-confirm");
    await settle();
    // The one kept out first, while the device that removed it still
    // keeps it out.
    expect(backend.revoked).toEqual([ROGUE, OTHER]);
    expect(allByTestId(target, "device-row")).toHaveLength(1);
  });

  it("lets it back when the person says so", async () => {
    const { backend, target } = await asked();
    (byTestId(document, "let-back") as HTMLInputElement).click();
    await settle();
    click(document, "remove-device-dialog-confirm");
    await settle();
    expect(backend.revoked).toEqual([OTHER]);
    expect(allByTestId(target, "device-row")).toHaveLength(2);
  });

  it("asks again about what a device kept out had removed, before removing", async () => {
    const { backend, target } = await home();
    backend.paired.push({ nodeId: OTHER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    backend.paired.push({ nodeId: JOINER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    backend.deviceRemovedElsewhere(ROGUE, OTHER);
    backend.deviceRemovedElsewhere(JOINER, OTHER);
    backend.deviceRemovedElsewhere(JOINER, ROGUE);
    await settle();
    click(target, "devices-button");
    await settle();
    click(target, "remove-device");
    await settle();
    // The rogue's removal keeps JOINER out for now: only the rogue is asked.
    expect(allByTestId(document, "removed-choice")).toHaveLength(1);
    (byTestId(document, "keep-removed") as HTMLInputElement).click();
    await settle();
    click(document, "remove-device-dialog-confirm");
    await settle();
    // The rogue out, its removal of JOINER ends: JOINER is asked about,
    // and the device is not removed yet.
    expect(backend.revoked).toEqual([ROGUE]);
    expect(allByTestId(document, "removed-choice")).toHaveLength(2);
    const confirm = byTestId(document, "remove-device-dialog-confirm") as HTMLButtonElement;
    expect(confirm.disabled).toBe(true);
    (allByTestId(document, "keep-removed")[1] as HTMLInputElement).click();
    await settle();
    click(document, "remove-device-dialog-confirm");
    await settle();
    expect(backend.revoked).toEqual([ROGUE, JOINER, OTHER]);
    expect(byTestId(document, "remove-device-dialog")).toBeNull();
  });

  it("names the devices that go with it", async () => {
    const { backend, target } = await home();
    backend.paired.push({ nodeId: OTHER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    backend.paired.push({ nodeId: JOINER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: "Tablet" });
    backend.pairedThrough.set(JOINER, OTHER);
    click(target, "devices-button");
    await settle();
    (allByTestId(target, "remove-device")[0] as HTMLElement).click();
    await settle();
    const going = text(byTestId(document, "remove-device-going")!);
    expect(going).toContain("Tablet");
    expect(going).toContain(shortId(JOINER));
    // Nothing comes back, so nothing to answer.
    expect((byTestId(document, "remove-device-dialog-confirm") as HTMLButtonElement).disabled).toBe(false);
  });

  it("removes nothing when confirmed before the list arrived", async () => {
    const { backend, devices } = await home();
    backend.paired.push({ nodeId: OTHER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    backend.deviceRemovedElsewhere(ROGUE, OTHER);
    devices.askRemove(OTHER);
    await devices.confirmRemove();
    expect(backend.revoked).toEqual([]);
  });
});

describe("removing a paired device", () => {
  it("asks with a dialog that says what it does, then the device leaves the list", async () => {
    const { backend, target } = await home();
    backend.paired.push({ nodeId: OTHER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    click(target, "devices-button");
    await settle();
    expect(allByTestId(target, "device-row")).toHaveLength(2);
    // Only paired devices can be removed, not this one.
    expect(allByTestId(target, "remove-device")).toHaveLength(1);

    click(target, "remove-device");
    await settle();
    expect(byTestId(document, "remove-device-dialog")?.textContent?.replace(/\s+/g, " ")).toContain(shortId(OTHER));
    click(document, "remove-device-dialog-cancel");
    await settle();
    expect(allByTestId(target, "device-row")).toHaveLength(2);

    click(target, "remove-device");
    await settle();
    click(document, "remove-device-dialog-confirm");
    await settle();
    expect(allByTestId(target, "device-row")).toHaveLength(1);
    expect(backend.revoked).toEqual([OTHER]);
  });

  it("Tab stays inside the dialog", async () => {
    const { backend, target } = await home();
    backend.paired.push({ nodeId: OTHER, thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    click(target, "devices-button");
    await settle();
    click(target, "remove-device");
    await settle();
    const dialog = byTestId(document, "remove-device-dialog")!;
    const confirm = byTestId(dialog, "remove-device-dialog-confirm")!;
    confirm.focus();
    press(dialog, "Tab");
    expect(document.activeElement).toBe(byTestId(dialog, "remove-device-dialog-cancel"));
  });
});

describe("Recently deleted", () => {
  it("a deleted vault goes there (the dialog says so), shows who and how long, and restores", async () => {
    const { session, target } = await home("vthisdevice0000000000000000000000");
    const browser = session.browser;
    await browser.createVault("Personal");
    await browser.createVault("Work");
    await settle();

    click(target, "delete-vault");
    await settle();
    const dialog = byTestId(document, "delete-vault-dialog")!;
    expect(text(dialog)).toContain("Recently deleted");
    expect(text(dialog)).toContain("30 days");
    expect(text(dialog)).not.toMatch(/forever|cannot be undone/i);
    click(dialog, "delete-vault-dialog-confirm");
    await settle();
    expect(allByTestId(target, "vault-item").map((e) => e.textContent)).toEqual(["Personal"]);
    expect(byTestId(target, "notice")?.textContent?.replace(/\s+/g, " ")).toContain("Recently deleted");

    click(target, "recently-deleted");
    await settle();
    const row = byTestId(target, "deleted-vault")!;
    expect(byTestId(row, "deleted-vault-name")?.textContent).toBe("Work");
    expect(text(row)).toContain("by this device");
    expect(byTestId(row, "deleted-vault-days-left")?.textContent).toBe("30 days left");

    click(row, "restore-vault");
    await settle();
    expect(byTestId(target, "deleted-notice")?.textContent?.replace(/\s+/g, " ")).toContain("Restored the vault “Work”");
    expect(byTestId(target, "deleted-vault")).toBeNull();
    expect(allByTestId(target, "vault-item").map((e) => e.textContent)).toEqual(["Personal", "Work"]);
  });

  it("lists deleted secrets and restores them from the version that holds them", async () => {
    const { session, target } = await home();
    const browser = session.browser;
    await browser.createVault("Personal");
    await browser.save({ path: "bank", title: "Bank", item: { type: "text", text: "pw-1" }, fields: [], attachments: [] }, true);
    await settle();
    click(target, "delete-secret");
    await settle();
    expect(byTestId(document, "delete-secret-dialog")?.textContent?.replace(/\s+/g, " ")).toContain("Recently deleted");
    click(document, "delete-secret-dialog-confirm");
    await settle();
    expect(allByTestId(target, "secret-item")).toHaveLength(0);

    click(target, "recently-deleted");
    await settle();
    expect(byTestId(target, "deleted-secret-path")?.textContent).toBe("bank");
    click(target, "restore-secret");
    await settle();
    expect(byTestId(target, "deleted-secret")).toBeNull();
    expect(allByTestId(target, "secret-item")).toHaveLength(1);
    expect((await session.backend.readSecret("Personal", "bank")).item).toMatchObject({ text: "pw-1" });
  });

  it("another device's deletion shows while the page is open; locking forgets it", async () => {
    const { backend, session, target } = await home();
    await session.browser.createVault("Shared");
    click(target, "recently-deleted");
    await settle();
    expect(byTestId(target, "no-deleted-vaults")).not.toBeNull();
    await backend.deleteVault("Shared");
    backend.deletedVaultList[0].deletedBy = OTHER;
    backend.changed();
    await settle();
    expect(byTestId(target, "deleted-vault")?.textContent?.replace(/\s+/g, " ")).toContain(`by ${shortId(OTHER)}`);
    await session.lock();
    expect(session.deleted.vaults).toEqual([]);
  });
});

describe("format", () => {
  it("says how long a deleted vault stays", () => {
    const now = 1_000_000_000_000;
    const day = 86_400_000;
    expect(daysLeftText(now + 30 * day, now)).toBe("30 days left");
    expect(daysLeftText(now + day + 1, now)).toBe("2 days left");
    expect(daysLeftText(now + day, now)).toBe("1 day left");
    expect(daysLeftText(now + 5, now)).toBe("less than a day left");
    expect(daysLeftText(now - day, now)).toBe("less than a day left");
  });
});
