import { mount } from "svelte";
import { getCurrentWindow } from "@tauri-apps/api/window";
import App from "./App.svelte";
import QuickPalette from "./lib/screens/QuickPalette.svelte";
import { Session } from "./lib/stores/session.svelte";
import { tauriBackend } from "./lib/backend";
import { keepMenusToTextFields } from "./lib/menus";
import "./app.css";

keepMenusToTextFields(document);

const target = document.getElementById("app");
if (!target) throw new Error("missing #app element");

function start() {
  // One bundle, two windows: the palette window gets the palette.
  if (getCurrentWindow().label === "quick") {
    return mount(QuickPalette, { target: target!, props: { backend: tauriBackend } });
  }
  const session = new Session(tauriBackend);
  void session.load();
  for (const event of ["keydown", "pointerdown", "wheel", "mousemove"]) {
    window.addEventListener(event, () => session.activity(), { passive: true });
  }
  return mount(App, { target: target!, props: { session } });
}

export default start();
