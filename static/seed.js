// The original demo's client, kept as it was: a bare socket with no subprotocol (the "seed
// dialect"), sending the text box's value as a plain text frame and printing every frame it
// receives. The tests use it to prove old clients still talk to the new chat page.

const ws = new WebSocket(`ws://${location.host}`);
const text = document.getElementById("text");
const log = document.getElementById("log");

document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  ws.send(text.value);
  text.value = "";
});

ws.addEventListener("message", (event) => {
  const line = document.createElement("div");
  line.textContent = typeof event.data === "string" ? event.data : "[binary message]";
  log.append(line);
});
