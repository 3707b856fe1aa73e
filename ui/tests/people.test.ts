// People, sharing a vault and share offers, against the in-memory node.
import { describe, expect, it } from "vitest";
import { shortId } from "../src/lib/format";
import { allByTestId, byTestId, click, settle, text, type, unlockedApp } from "./harness";

const home = () => unlockedApp("vthisdevice0000000000000000000000");

const BOB = "vbob0000000000000000000000000000000000";

describe("people", () => {
  it("shows the contact code, adds a person and lists what is shared each way", async () => {
    const { backend, target } = await home();
    click(target, "people-button");
    await settle();
    click(target, "show-contact");
    await settle();
    expect((byTestId(target, "contact-code") as HTMLTextAreaElement).value).toMatch(/^polykey-contact:/);

    click(target, "add-person-submit");
    await settle();
    expect(text(byTestId(target, "people-error"))).toContain("contact code");

    type(target, "add-person-input", `polykey-contact:${BOB}`);
    click(target, "add-person-submit");
    await settle();
    expect(allByTestId(target, "person-card")).toHaveLength(1);
    expect(text(byTestId(target, "person-name"))).toBe(shortId(BOB));
    expect(text(byTestId(target, "shared-with-them"))).toContain("nothing");
    (byTestId(target, "person-notify") as HTMLInputElement).click();
    await settle();
    expect(backend.personList[0].notify).toBe(true);

    await backend.createVault("Team");
    await backend.shareVault("Team", BOB, true);
    backend.changed();
    await settle();
    expect(text(byTestId(target, "shared-with-them"))).toContain("Team (can edit)");

    click(target, "remove-person");
    await settle();
    click(target, "remove-person-dialog-confirm");
    await settle();
    expect(allByTestId(target, "person-card")).toHaveLength(0);
    expect(backend.sharing[0].grants).toHaveLength(0);
  });

  it("shares a vault from the sidebar and stops sharing it", async () => {
    const { backend, session, target } = await home();
    await backend.createVault("Team");
    await session.browser.refresh();
    await session.browser.selectVault("Team");
    await settle();
    click(target, "share-vault");
    await settle();
    expect(byTestId(target, "share-dialog")).not.toBeNull();
    click(target, "share-submit");
    await settle();
    expect(text(byTestId(target, "share-error"))).toContain("Choose whom");
    type(target, "share-target", BOB);
    click(target, "share-submit");
    await settle();
    expect(text(byTestId(target, "share-notice"))).toContain("they were sent an offer");
    expect(allByTestId(target, "share-grant").map(text)).toEqual([`${shortId(BOB)} read only Stop sharing`]);
    expect(text(byTestId(target, "vault-shared-mark"))).toBe("shared with 1");
    click(target, "unshare");
    await settle();
    expect(allByTestId(target, "share-grant")).toHaveLength(0);
  });

  it("accepts a vault offered: the badge counts it, accepting adds it to the vaults marked read only", async () => {
    const { backend, target } = await home();
    await backend.addPerson(BOB);
    backend.offerArrives(BOB, "vaultfrombob", "Bob's logins", false);
    backend.changed();
    await settle();
    expect(text(byTestId(target, "notifications-badge"))).toBe("1");
    click(target, "notifications-button");
    await settle();
    expect(text(byTestId(target, "notification"))).toContain("shares the vault “Bob's logins” with you");
    click(target, "accept-share");
    await settle();
    expect(byTestId(target, "share-accepted")).not.toBeNull();
    expect(byTestId(target, "notifications-badge")).toBeNull();
    expect(allByTestId(target, "vault-item")).toHaveLength(1);
    expect(text(byTestId(target, "vault-shared-mark"))).toBe(`from ${shortId(BOB)} · read only`);
    // Another person's vault is not shared onwards from here.
    click(target, "vault-item");
    await settle();
    expect(byTestId(target, "share-vault")).toBeNull();
  });

  it("declines an offer", async () => {
    const { backend, target } = await home();
    backend.offerArrives(BOB, "vaultfrombob", "Bob's logins", true);
    backend.changed();
    await settle();
    click(target, "notifications-button");
    await settle();
    click(target, "decline-share");
    await settle();
    expect(allByTestId(target, "notification")).toHaveLength(0);
    expect(allByTestId(target, "vault-item")).toHaveLength(0);
  });

  it("fills the add box from a QR picture, and says so when the picture has none", async () => {
    const { backend, target } = await home();
    click(target, "people-button");
    await settle();
    backend.pictureContact = `polykey-contact:${BOB}`;
    click(target, "add-person-qr");
    await settle();
    expect((byTestId(target, "add-person-input") as HTMLInputElement).value).toBe(`polykey-contact:${BOB}`);
    click(target, "add-person-submit");
    await settle();
    expect(allByTestId(target, "person-card")).toHaveLength(1);
  });

  it("links a GitHub account from Settings: the code, the wait, then the proof", async () => {
    const { backend, target } = await home();
    click(target, "settings-button");
    await settle();
    expect(text(byTestId(target, "linked-accounts"))).toContain("None.");
    click(target, "link-github");
    await settle();
    expect(text(byTestId(target, "link-code"))).toBe("WDJB-MJHT");
    expect(byTestId(target, "link-github")).toBeNull();
    backend.approveLogin("alice");
    await settle();
    expect(allByTestId(target, "linked-identity").map(text)).toEqual(["github.com:alice verified Proof"]);
    expect(byTestId(target, "link-code-box")).toBeNull();
  });
});
