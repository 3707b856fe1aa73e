import { describe, expect, it } from "vitest";
import { flushSync, mount } from "svelte";
import App from "../src/App.svelte";
import { MockBackend } from "../src/lib/mockBackend";
import { Session } from "../src/lib/stores/session.svelte";
import { wordsMatch } from "../src/lib/recoveryCheck";

function render(backend: MockBackend) {
  const target = document.createElement("div");
  document.body.replaceChildren(target);
  const session = new Session(backend);
  mount(App, { target, props: { session } });
  return { session, target };
}

const byTestId = (root: HTMLElement, id: string) =>
  root.querySelector<HTMLElement>(`[data-testid="${id}"]`);

describe("devices", () => {
  it("first run can join another device after making this one's node", async () => {
    const backend = new MockBackend();
    const { session, target } = render(backend);
    await session.load();
    flushSync();
    byTestId(target, "welcome-join")?.click();
    flushSync();
    expect(session.joining).toBe(true);
    await session.create("long enough", "long enough");
    session.codeWrittenDown();
    const screen = session.screen;
    if (screen.kind !== "confirmCode") throw new Error(screen.kind);
    expect(wordsMatch(screen.words, screen.positions, screen.positions.map((p) => screen.words[p]))).toBe(true);
    session.confirmCode(screen.positions.map((p) => screen.words[p]));
    flushSync();
    expect(session.screen.kind).toBe("join");
    // A device that joins gets the other's vaults: none of its own first.
    expect(await backend.listVaults()).toEqual([]);

    // A malformed code gets a clear error and nothing is joined.
    expect(await session.devices.join("hello")).toBe(false);
    flushSync();
    expect(byTestId(target, "join-error")?.textContent).toContain("not a pairing code");
    // A used one says so in words.
    expect(await session.devices.join("polykey-pair:used")).toBe(false);
    expect(session.devices.error).toContain("already used");

    expect(await session.devices.join("  polykey-pair:good \n")).toBe(true);
    flushSync();
    expect(byTestId(target, "join-fingerprint")?.textContent?.trim()).toBe("123 456");
    // Nothing is recorded, and there is no way past, until the digits are confirmed.
    expect(byTestId(target, "join-continue")).toBeNull();
    expect(backend.paired).toHaveLength(0);
    expect(await session.devices.answerJoin(true)).toBe(true);
    flushSync();
    expect(byTestId(target, "join-done")?.textContent).toContain("Paired");
    expect(backend.paired.map((d) => d.nodeId)).toEqual(["vmockinviter"]);
    byTestId(target, "join-continue")?.click();
    flushSync();
    expect(session.screen.kind).toBe("home");
  });

  it("shows an invitation with its time left, then the device that joined", async () => {
    const backend = MockBackend.locked("correct horse", "vme");
    const { session } = render(backend);
    await session.load();
    await session.unlock("correct horse");
    await session.devices.invite();
    expect(session.devices.invitation?.code).toContain("polykey-pair:");
    expect(session.devices.secondsLeft).toBeGreaterThan(590);
    expect(session.devices.pairing.state).toBe("waiting");
    await session.devices.cancel();
    expect(session.devices.invitation).toBeNull();
    expect(backend.pairing.state).toBe("idle");
  });

  it("resolves a conflict by keeping the version the user picks", async () => {
    const backend = MockBackend.locked("correct horse", "vme");
    backend.conflictList = [{ vault: "Personal", path: "github", theirsPath: "github.conflict-0123abcd" }];
    const { session } = render(backend);
    await session.load();
    await session.unlock("correct horse");
    await session.devices.refresh();
    expect(session.devices.sync?.conflicts).toBe(1);
    await session.devices.resolve(session.devices.conflicts[0], true);
    expect(backend.resolved).toEqual([{ path: "github", keepTheirs: true }]);
    expect(session.devices.conflicts).toHaveLength(0);
  });

  it("joins from a picture of the QR code, and a cancelled dialog changes nothing", async () => {
    const backend = MockBackend.locked("correct horse", "vme");
    const { session } = render(backend);
    await session.load();
    await session.unlock("correct horse");
    backend.pictureCode = null;
    expect(await session.devices.joinFromPicture()).toBe(false);
    expect(session.devices.error).toBeNull();
    expect(session.devices.joined).toBeNull();
    backend.pictureCode = "polykey-pair:from-a-picture";
    expect(await session.devices.joinFromPicture()).toBe(true);
    expect(session.devices.pendingJoin?.fingerprint).toBe("123 456");
    expect(await session.devices.answerJoin(true)).toBe(true);
    expect(session.devices.joined?.fingerprint).toBe("123 456");
    expect(session.devices.list).toHaveLength(2);
  });

  it("locking forgets the devices page", async () => {
    const backend = MockBackend.locked("correct horse", "vme");
    const { session } = render(backend);
    await session.load();
    await session.unlock("correct horse");
    await session.devices.invite();
    await session.lock();
    expect(session.devices.invitation).toBeNull();
    expect(session.devices.list).toHaveLength(0);
  });
});
