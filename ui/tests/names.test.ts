import { describe, expect, it } from "vitest";
import { flushSync } from "svelte";
import { allByTestId, byTestId, click, createScreenApp, settle, text, type, unlockedApp } from "./harness";

describe("device names", () => {
  it("setup offers the computer's name, and the name typed is the one kept", async () => {
    const { backend, session, target } = await createScreenApp();
    const field = byTestId(target, "create-device-name") as HTMLInputElement;
    expect(field.value).toBe("mock-laptop");

    type(target, "create-device-name", "  Work laptop ");
    type(target, "create-password", "long enough");
    type(target, "create-confirm", "long enough");
    click(target, "create-submit");
    await settle();
    expect(session.screen.kind).toBe("showCode");
    expect(backend.deviceName).toBe("Work laptop");
  });

  it("a device is listed by name with its NodeId one click away, and this one can be renamed", async () => {
    const { backend, target } = await unlockedApp();
    backend.paired.push({ nodeId: "vpairedphone0000000000000000", thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: "Phone" });
    click(target, "devices-button");
    await settle();
    const names = allByTestId(target, "device-name").map(text);
    expect(names).toEqual(["This device", "Phone"]);
    expect(text(allByTestId(target, "device-node-id")[1])).toBe("vpairedphone0000000000000000");
    expect(byTestId(target, "remove-device")?.getAttribute("aria-label")).toContain("Remove Phone");

    click(target, "rename-device");
    flushSync();
    type(target, "device-name-input", "   ");
    click(target, "device-name-save");
    await settle();
    expect(text(byTestId(target, "devices-error"))).toContain("1 to 64 characters");
    expect(byTestId(target, "device-name-input")).not.toBeNull();

    type(target, "device-name-input", "Desk");
    click(target, "device-name-save");
    await settle();
    expect(byTestId(target, "device-name-input")).toBeNull();
    expect(text(allByTestId(target, "device-name")[0])).toBe("Desk (this device)");
  });

  it("two devices with one name, or a name like a label, are told apart by NodeId", async () => {
    const { backend, target } = await unlockedApp();
    await backend.setDeviceName("Laptop");
    backend.paired.push({ nodeId: "vthief0000000000000000000000", thisDevice: false, online: false, lastSeen: Date.now() - 7_200_000, addresses: [], name: "laptop" });
    backend.paired.push({ nodeId: "vspoof0000000000000000000000", thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: "Phone (this device)" });
    click(target, "devices-button");
    await settle();
    expect(allByTestId(target, "device-name").map(text)).toEqual([
      "Laptop (vmocknode) (this device)",
      "laptop (vthief0000…000000)",
      "Phone (this device) (vspoof0000…000000)",
    ]);
    allByTestId(target, "remove-device")[0].click();
    await settle();
    expect(text(byTestId(target, "remove-device-dialog"))).toContain("“laptop” vthief0000…000000 (last seen 2 h ago) will be removed");
  });

  it("the sync indicator names the devices online", async () => {
    const { backend, session, target } = await unlockedApp();
    backend.paired.push({ nodeId: "vpairedphone0000000000000000", thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: "Phone" });
    await session.devices.refresh();
    await settle();
    expect(text(byTestId(target, "sync-indicator"))).toBe("Synced with Phone");
    backend.paired.push({ nodeId: "vpairedtablet000000000000000", thisDevice: false, online: true, lastSeen: Date.now(), addresses: [], name: null });
    await session.devices.refresh();
    await settle();
    expect(text(byTestId(target, "sync-indicator"))).toBe("Synced with Phone and Unnamed device");
  });

  it("history says on which device each version was made", async () => {
    const { backend, session, target } = await unlockedApp();
    await backend.setDeviceName("Laptop");
    const browser = session.browser;
    await browser.createVault("V");
    await browser.save(
      { path: "bank", title: "bank", item: { type: "login", username: "ada", password: "pw", urls: [], totp: null, notes: "" }, fields: [], attachments: [] },
      true,
    );
    await browser.showHistory("bank");
    await settle();
    expect(text(byTestId(target, "version-author"))).toMatch(/^on Laptop · /);
  });
});
