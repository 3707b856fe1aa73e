import { describe, expect, it } from "vitest";
import { flushSync, mount, tick } from "svelte";
import App from "../src/App.svelte";
import { MockBackend } from "../src/lib/mockBackend";
import { Session } from "../src/lib/stores/session.svelte";

function render(backend: MockBackend) {
  const target = document.createElement("div");
  document.body.replaceChildren(target);
  const session = new Session(backend);
  mount(App, { target, props: { session } });
  return { session, target };
}

const byTestId = (root: HTMLElement, id: string) =>
  root.querySelector<HTMLElement>(`[data-testid="${id}"]`);

describe("first run", () => {
  it("creates a node, shows the code once, and asks for words back", async () => {
    const backend = new MockBackend();
    const { session, target } = render(backend);
    await session.load();
    flushSync();
    expect(byTestId(target, "welcome-create")).not.toBeNull();

    session.startCreate();
    await session.create("short", "short");
    flushSync();
    expect(byTestId(target, "create-error")?.textContent).toContain("at least 8");

    await session.create("long enough", "long enougj");
    flushSync();
    expect(byTestId(target, "create-error")?.textContent).toContain("do not match");

    await session.create("long enough", "long enough");
    flushSync();
    const words = [...target.querySelectorAll('[data-testid="recovery-word"]')].map((w) => w.textContent);
    expect(words).toHaveLength(24);

    session.codeWrittenDown();
    flushSync();
    if (session.screen.kind !== "confirmCode") throw new Error("expected confirmation");
    const positions = session.screen.positions;
    session.confirmCode(positions.map(() => "wrong"));
    flushSync();
    expect(byTestId(target, "confirm-error")).not.toBeNull();
    expect(session.screen.kind).toBe("confirmCode");

    session.confirmCode(positions.map((p) => `word${p + 1}`));
    flushSync();
    expect(byTestId(target, "node-id")?.textContent).toBe("vmocknode");
    // A new node starts with one vault.
    expect((await backend.listVaults()).map((v) => v.name)).toEqual(["Personal"]);
  });
});

describe("unlock", () => {
  it("shows a plain message for a wrong password and unlocks with the right one", async () => {
    const backend = MockBackend.locked("the password");
    const { session, target } = render(backend);
    await session.load();
    flushSync();
    expect(byTestId(target, "unlock-node-id")?.textContent).toBe("vmocknode");

    await session.unlock("not it");
    flushSync();
    expect(byTestId(target, "unlock-error")?.textContent).toBe("Wrong password. Try again.");

    await session.unlock("the password");
    await tick();
    expect(byTestId(target, "node-id")?.textContent).toBe("vmocknode");

    (byTestId(target, "copy-node-id") as HTMLButtonElement).click();
    await tick();
    expect(backend.copied).toEqual(["vmocknode"]);
  });
});
