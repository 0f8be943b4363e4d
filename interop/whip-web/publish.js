// Test-only entry point, bundled by scripts/setup.sh into dist/whip-publish.js for headless
// Chromium (crates/mediaseal-server/tests/room_browser.rs). It publishes the browser's fake
// camera and microphone to a mediaseal WHIP endpoint through Eyevinn's packaged WHIP client,
// and keeps what happened in `window.whipPublish` for the test to read over DevTools.
import { WHIPClient } from "@eyevinn/whip-web-client";

const state = { phase: "idle", resource: null, error: null, connection: null };
let client = null;

window.whipPublish = state;

// Starts publishing; resolves once the client knows its WHIP resource (the POST answered 201).
window.whipPublishStart = async (endpoint, token) => {
  try {
    state.phase = "capturing";
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: 320, height: 240 },
    });
    state.phase = "posting";
    // The room hands out no STUN or TURN servers here (loopback); without this option the
    // client would try a public STUN server. No trickle: mediaseal takes the full offer.
    client = new WHIPClient({
      endpoint,
      opts: { authkey: token, iceServers: [], noTrickleIce: true, timeout: 1000 },
    });
    await client.ingest(stream);
    // The client resolves its resource only when the POST succeeds; it logs a failure instead.
    state.resource = await Promise.race([
      client.getResourceUrl(),
      new Promise((_, fail) =>
        setTimeout(() => fail(new Error("no WHIP resource within 20 s: the POST failed")), 20000),
      ),
    ]);
    state.phase = "published";
    const pc = client.peer;
    const watch = () => { state.connection = pc.connectionState; };
    pc.addEventListener("connectionstatechange", watch);
    watch();
  } catch (e) {
    state.phase = "failed";
    state.error = String(e);
  }
  return state.phase;
};

// Ends the session: the client DELETEs its resource and closes the peer connection.
window.whipPublishStop = async () => {
  if (client) {
    await client.destroy();
    client = null;
  }
  state.phase = "stopped";
  return state.phase;
};
