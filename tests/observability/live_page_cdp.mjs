// Drives headless Chromium over the DevTools protocol (Node's built-in WebSocket, no
// packages): opens the live page, collects console errors and uncaught exceptions, waits
// for updates, checks the endpoints shown and that the numbers change, saves a screenshot.
//   node --experimental-websocket live_page_cdp.mjs WS_URL PAGE_URL SCREENSHOT ENDPOINT...
// Prints one JSON line; exit 0 when every check passed.
import { writeFileSync } from "node:fs";

const [wsUrl, pageUrl, screenshot, ...expectedEndpoints] = process.argv.slice(2);
const ws = new WebSocket(wsUrl);
let nextId = 1;
const pending = new Map();
const errors = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function send(method, params = {}, sessionId) {
  const id = nextId++;
  ws.send(JSON.stringify({ id, method, params, sessionId }));
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}
ws.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  if (msg.id && pending.has(msg.id)) {
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(p.method + ": " + msg.error.message));
    else p.resolve(msg.result);
    return;
  }
  if (msg.method === "Runtime.exceptionThrown") {
    errors.push("exception: " + JSON.stringify(msg.params.exceptionDetails).slice(0, 500));
  } else if (msg.method === "Runtime.consoleAPICalled" &&
             (msg.params.type === "error" || msg.params.type === "assert")) {
    errors.push("console." + msg.params.type + ": " +
                msg.params.args.map((a) => a.value ?? a.description).join(" "));
  } else if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") {
    errors.push("log: " + msg.params.entry.text + " " + (msg.params.entry.url || ""));
  }
};

async function main() {
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const s = (method, params) => send(method, params, sessionId);
  await s("Runtime.enable");
  await s("Log.enable");
  await s("Page.enable");
  await s("Emulation.setDeviceMetricsOverride",
          { width: 1500, height: 1000, deviceScaleFactor: 1, mobile: false });
  await s("Page.navigate", { url: pageUrl });
  const evaluate = async (expression) =>
    (await s("Runtime.evaluate", { expression, returnByValue: true })).result.value;
  // Before the document exists the expression throws: that reads as "no update yet".
  const snapshot = () => evaluate(`(() => { try { return JSON.stringify({
      updates: Number(document.body.dataset.updates || 0),
      endpoints: [...document.querySelectorAll("tr.endpoint")].map((r) => r.dataset.id),
      numbers: [...document.querySelectorAll("#pools td.num, #pools .stat b, #decisions td")]
                 .map((e) => e.textContent).join("|"),
      decisions: document.querySelectorAll("#decisions tr").length,
      error: document.getElementById("error").textContent });
    } catch (e) {
      return JSON.stringify({ updates: 0, endpoints: [], numbers: "", decisions: 0, error: "" });
    } })()`).then(JSON.parse);

  let first;
  for (let i = 0; i < 100; ++i) {
    first = await snapshot();
    if (first.updates >= 2 && first.decisions > 0) break;
    await sleep(150);
  }
  await sleep(5000);
  const second = await snapshot();
  const shot = await s("Page.captureScreenshot", { format: "png" });
  writeFileSync(screenshot, Buffer.from(shot.data, "base64"));

  const failures = [];
  if (second.updates < first.updates + 2) failures.push("the page did not update every second");
  const shown = [...second.endpoints].sort().join(",");
  const want = [...expectedEndpoints].sort().join(",");
  if (shown !== want) failures.push(`endpoints shown ${shown}, expected ${want}`);
  if (first.numbers === second.numbers) failures.push("no number changed under load");
  if (second.decisions === 0) failures.push("no decisions shown");
  if (second.error) failures.push("page error: " + second.error);
  failures.push(...errors);
  console.log(JSON.stringify({ ok: failures.length === 0, failures, first_updates: first.updates,
                               second_updates: second.updates, endpoints: second.endpoints,
                               decisions: second.decisions }));
  ws.close();
  process.exit(failures.length === 0 ? 0 : 1);
}
main().catch((e) => { console.log(JSON.stringify({ ok: false, failures: [String(e)] })); process.exit(1); });
