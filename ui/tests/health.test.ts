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
});
