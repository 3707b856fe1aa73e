// What the component tests share: finding elements by `data-testid`,
// letting the mock's calls and the DOM settle, and the app mounted and
// unlocked over a `MockBackend`.
import { flushSync, mount, tick } from "svelte";
import App from "../src/App.svelte";
import { MockBackend } from "../src/lib/mockBackend";
import { Session } from "../src/lib/stores/session.svelte";

export const byTestId = (root: ParentNode, id: string) => root.querySelector<HTMLElement>(`[data-testid="${id}"]`);
export const allByTestId = (root: ParentNode, id: string) => [...root.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`)];
/** Text as read: runs of white space as one space. */
export const text = (element: Element | null | undefined) => element?.textContent?.replace(/\s+/g, " ").trim() ?? "";

/** Let pending promises (the mock's calls) and the DOM settle. */
export async function settle() {
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    await tick();
  }
  flushSync();
}

/** Set the value of the `index`-th field with `data-testid` as typing or
 * choosing would, firing `input` (or `change` for a select). */
export function type(target: ParentNode, id: string, value: string, index = 0) {
  const field = allByTestId(target, id)[index] as HTMLInputElement | HTMLSelectElement | undefined;
  if (!field) throw new Error(`no [data-testid=${id}] #${index}`);
  field.value = value;
  field.dispatchEvent(new Event(field instanceof HTMLSelectElement ? "change" : "input", { bubbles: true }));
}

export function click(target: ParentNode, id: string) {
  const element = byTestId(target, id);
  if (!element) throw new Error(`no [data-testid=${id}]`);
  element.click();
}

/** The app mounted with no node yet, on the screen that creates one. */
export async function createScreenApp() {
  const backend = new MockBackend();
  const target = document.createElement("div");
  document.body.replaceChildren(target);
  const session = new Session(backend);
  mount(App, { target, props: { session } });
  await session.load();
  session.startCreate();
  await settle();
  return { backend, session, target };
}

/** The app mounted on a node with "the password" as its password, unlocked. */
export async function unlockedApp(nodeId?: string) {
  const backend = MockBackend.locked("the password", nodeId);
  const target = document.createElement("div");
  document.body.replaceChildren(target);
  const session = new Session(backend);
  mount(App, { target, props: { session } });
  await session.load();
  await session.unlock("the password");
  await settle();
  return { backend, session, target };
}
