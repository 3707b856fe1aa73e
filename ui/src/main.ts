import { mount } from "svelte";
import App from "./App.svelte";
import { Session } from "./lib/stores/session.svelte";
import { tauriBackend } from "./lib/backend";
import "./app.css";

const session = new Session(tauriBackend);
void session.load();
for (const event of ["keydown", "pointerdown", "wheel", "mousemove"]) {
  window.addEventListener(event, () => session.activity(), { passive: true });
}

const target = document.getElementById("app");
if (!target) throw new Error("missing #app element");
export default mount(App, { target, props: { session } });
