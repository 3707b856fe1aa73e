// Password health: weak and reused passwords listed by group, never shown;
// "New password" saves a generated one and the login leaves the list.
import { describe, expect, it } from "vitest";
import { allByTestId, byTestId, click, settle, text, unlockedApp } from "./harness";

const login = (path: string, password: string) => ({
  path,
  title: path,
  item: { type: "login" as const, username: "ada", password, urls: [], totp: null, notes: "" }, fields: [], attachments: [],
});

describe("password health", () => {
  it("lists weak and reused passwords and fixes one with a click", async () => {
    localStorage.clear();
    const { backend, session, target } = await unlockedApp();
    await backend.createVault("Home");
    await backend.createVault("Work");
    await backend.saveSecret("Home", login("forum", "short"), true);
    await backend.saveSecret("Home", login("bank", "a-long-shared-password"), true);
    await backend.saveSecret("Work", login("vpn", "a-long-shared-password"), true);
    await backend.saveSecret("Work", login("wiki", "another-long-password"), true);
    await session.browser.load();
    click(target, "password-health");
    await settle();

    expect(allByTestId(target, "health-group").map((g) => text(g).split(" (")[0])).toEqual(["Weak", "Reused"]);
    const rows = () => allByTestId(target, "health-item").map((r) => `${r.dataset.group}: ${text(r.querySelector(".device-main"))}`);
    expect(rows()).toEqual([
      "weak: forum Home · ada · weak",
      "reused: bank Home · ada · also used by 1 other login",
      "reused: vpn Work · ada · also used by 1 other login",
    ]);
    expect(target.textContent).not.toContain("a-long-shared-password");

    // The bank login gets a new password: neither it nor the VPN login is
    // reused any more; the old password stays in the bank's history.
    allByTestId(target, "health-fix")[1].click();
    await settle();
    expect(rows()).toEqual(["weak: forum Home · ada · weak"]);
    expect((await backend.readSecret("Home", "bank")).item).toMatchObject({ password: "x".repeat(20) });
    expect(text(byTestId(target, "notice"))).toContain("A new password is saved in “bank”");
    expect((await backend.secretHistory("Home", "bank")).length).toBe(2);

    // (The mock's generator gives the same password every time, so the two
    // fixed logins now share one: listed as reused, no longer weak.)
    allByTestId(target, "health-fix")[0].click();
    await settle();
    expect(rows()).toEqual([
      "reused: bank Home · ada · also used by 1 other login",
      "reused: forum Home · ada · also used by 1 other login",
    ]);
    await backend.saveSecret("Home", login("forum", "yet-another-long-password"), false);
    await backend.saveSecret("Home", login("bank", "a-fourth-long-password"), false);
    click(target, "health-refresh");
    await settle();
    expect(text(byTestId(target, "health-all-good"))).toContain("Every password is strong");
  });

  it("checks breaches only once turned on, and a fix takes the login off", async () => {
    localStorage.clear();
    const { backend, session, target } = await unlockedApp();
    await backend.createVault("Home");
    await backend.saveSecret("Home", login("forum", "password123"), true);
    await backend.saveSecret("Home", login("bank", "a-long-unbreached-password"), true);
    await session.browser.load();
    click(target, "password-health");
    await settle();

    // Off: the check says where to turn it on, and nothing is listed.
    click(target, "breach-run");
    await settle();
    expect(session.browser.error).toContain("turn it on in Settings");
    expect(allByTestId(target, "breach-item")).toHaveLength(0);

    // Turned on in Settings (the endpoint field appears), then checked.
    click(target, "settings-button");
    await settle();
    expect(byTestId(target, "breach-endpoint")).toBeNull();
    click(target, "breach-check");
    await settle();
    expect(backend.prefs.breachCheck).toBe(true);
    expect(byTestId(target, "breach-endpoint")).not.toBeNull();
    click(target, "password-health");
    await settle();
    click(target, "breach-run");
    await settle();
    expect(allByTestId(target, "breach-item").map((r) => text(r.querySelector(".device-main")))).toEqual([
      "forum Home · ada · seen 251,682 times in breaches",
    ]);
    click(target, "breach-fix");
    await settle();
    expect(allByTestId(target, "breach-item")).toHaveLength(0);
    expect((await backend.readSecret("Home", "forum")).item).toMatchObject({ password: "x".repeat(20) });
  });
});
