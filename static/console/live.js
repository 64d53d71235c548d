// Live updates: the server says what changed; the page re-fetches that part through htmx.
(function () {
  "use strict";
  var body = document.body;
  var live = body && body.dataset.live;
  if (!live || !window.WebSocket) { return; }
  var path = "/ws/events/" + (body.dataset.runId ? "?run=" + encodeURIComponent(body.dataset.runId) : "");
  var delay = 1000;

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + path);
    socket.onopen = function () { delay = 1000; };
    socket.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (!window.htmx) { return; }
      if (data.event === "queue.changed" && live === "queue") { window.htmx.trigger(body, "queue-changed"); }
      if (data.event === "run.changed" && live === "run") { window.htmx.trigger(body, "run-changed"); }
    };
    socket.onclose = function (event) {
      if (event.code === 4403) { return; }  // not allowed: do not retry
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
