// Settings as a place of its own, and the password guidance at creation
// and at a change.
import { describe, expect, it } from "vitest";
import { flushSync } from "svelte";
import { allByTestId, byTestId, click, createScreenApp, settle, text, type, unlockedApp } from "./harness";

function submit(target: ParentNode, id: string) {
  const button = byTestId(target, id) as HTMLButtonElement | null;
  if (!button?.form) throw new Error(`no submit button [data-testid=${id}]`);
  button.form.requestSubmit(button);
}

/** Let the strength meter's debounce (120 ms) run and its answer arrive. */
async function afterMeter() {
  await new Promise((resolve) => setTimeout(resolve, 150));
  await settle();
}

describe("settings", () => {
  it("opens from the sidebar and with Ctrl+, and stays open whatever the home pane shows", async () => {
    const { target } = await unlockedApp();
    expect(byTestId(target, "settings")).toBeNull();
    expect(byTestId(target, "preferences")).toBeNull();

    window.dispatchEvent(new KeyboardEvent("keydown", { key: ",", ctrlKey: true, bubbles: true }));
    await settle();
    expect(byTestId(target, "settings")).not.toBeNull();
    expect(byTestId(target, "preferences")).not.toBeNull();
    expect(byTestId(target, "change-password")).not.toBeNull();
    expect(text(byTestId(target, "about-version"))).toBe("Polykey 0.1.0");
    expect(text(byTestId(target, "about-data-dir"))).toBe("/home/alice/.local/share/polykey");
    expect(text(byTestId(target, "node-id"))).toBe("vmocknode");

    click(target, "devices-button");
    await settle();
    expect(byTestId(target, "settings")).toBeNull();
    click(target, "settings-button");
    await settle();
    expect(byTestId(target, "settings")).not.toBeNull();
    expect(byTestId(target, "settings-button")?.getAttribute("aria-pressed")).toBe("true");
    // Devices are one of its sections, leading to the Devices page.
    expect(allByTestId(target, "settings-device-name").length).toBeGreaterThan(0);
    click(target, "settings-manage-devices");
    await settle();
    expect(byTestId(target, "settings")).toBeNull();
    expect(byTestId(target, "devices-button")?.getAttribute("aria-pressed")).toBe("true");
  });

  it("changes the password: the current one is checked, the new one typed twice, a weak one warned of", async () => {
    const { backend, session, target } = await unlockedApp();
    click(target, "settings-button");
    await settle();
    click(target, "change-password-open");
    await settle();

    type(target, "password-current", "not it");
    type(target, "password-new", "a much longer passphrase");
    type(target, "password-again", "a much longer passphrase");
    submit(target, "password-submit");
    await settle();
    expect(text(byTestId(target, "password-error"))).toBe("The current password is wrong. Try again.");
    expect(backend.password).toBe("the password");

    type(target, "password-current", "the password");
    type(target, "password-again", "a much longer passphrasf");
    submit(target, "password-submit");
    await settle();
    expect(text(byTestId(target, "password-error"))).toBe("The two passwords do not match.");

    // Weak: warned, not refused.
    type(target, "password-new", "abcdefgh");
    await afterMeter();
    expect(text(byTestId(target, "strength-warning"))).toContain("easy to guess");
    type(target, "password-new", "four unrelated words together");
    await afterMeter();
    expect(byTestId(target, "strength-warning")).toBeNull();
    type(target, "password-new", "abcdefgh");
    type(target, "password-again", "abcdefgh");
    submit(target, "password-submit");
    await settle();
    expect(byTestId(target, "password-error")).toBeNull();
    expect(text(byTestId(target, "password-changed"))).toContain("Password changed");
    expect(backend.password).toBe("abcdefgh");

    // The new password unlocks; the old one no longer does.
    await session.lock();
    await session.unlock("the password");
    flushSync();
    expect(session.screen.kind).toBe("unlock");
    await session.unlock("abcdefgh");
    expect(session.screen.kind).toBe("home");
  });
});

describe("password guidance at creation", () => {
  it("states the minimum up front and warns of a weak password without refusing it", async () => {
    const { backend, session, target } = await createScreenApp();
    expect(text(byTestId(target, "create-guidance"))).toContain("At least 8 characters");
    expect(byTestId(target, "strength-warning")).toBeNull();

    type(target, "create-password", "password1");
    await afterMeter();
    expect(text(byTestId(target, "strength-warning"))).toContain("easy to guess");
    type(target, "create-confirm", "password1");
    submit(target, "create-submit");
    await settle();
    expect(session.screen.kind).toBe("showCode");
  });
});
