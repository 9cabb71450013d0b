// Connects the LiveView of the page (the clients ship prebuilt with Phoenix and LiveView).
import { Socket } from "/assets/phoenix/phoenix.mjs";
import { LiveSocket } from "/assets/lv/phoenix_live_view.esm.js";

const csrfToken = document.querySelector("meta[name='csrf-token']").getAttribute("content");
const liveSocket = new LiveSocket("/live", Socket, { params: { _csrf_token: csrfToken } });
liveSocket.connect();
window.liveSocket = liveSocket;
