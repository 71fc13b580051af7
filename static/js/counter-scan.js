// At the counter (merchant): "Scan the QR code" opens the back camera, decodes each frame with the
// vendored jsQR (static/vendor/jsQR.js) and, on a code, puts its text in the counter form and sends
// it (the server reads the counter code or card id out of it). Without a camera or JavaScript the
// merchant types the code. window.counterScan.decode(image) is the decoding step alone, for tests.
(function () {
  "use strict";

  // The text of the QR code in an image, video frame or canvas (null if none is found).
  function decode(source, width, height) {
    width = width || source.videoWidth || source.naturalWidth || source.width;
    height = height || source.videoHeight || source.naturalHeight || source.height;
    if (!width || !height || typeof window.jsQR !== "function") { return null; }
    var canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    var context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(source, 0, 0, width, height);
    var pixels = context.getImageData(0, 0, width, height);
    var found = window.jsQR(pixels.data, width, height, { inversionAttempts: "dontInvert" });
    return found ? found.data : null;
  }

  window.counterScan = { decode: decode };

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("counter-scan");
    var panel = document.getElementById("counter-scanner");
    var video = document.getElementById("counter-scan-video");
    var status = document.getElementById("counter-scan-status");
    var stopButton = document.getElementById("counter-scan-stop");
    var form = document.getElementById("counter-form");
    var field = document.getElementById("id_code");
    if (!button || !panel || !video || !form || !field) { return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { return; }  // typing only
    button.hidden = false;
    var stream = null;
    var timer = null;

    function stop() {
      if (timer) { clearTimeout(timer); timer = null; }
      if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); stream = null; }
      video.srcObject = null;
      panel.hidden = true;
      button.disabled = false;
    }

    function look() {
      timer = null;
      if (!stream) { return; }
      var text = video.readyState >= 2 ? decode(video) : null;
      if (text) {
        status.textContent = status.dataset.found;
        field.value = text;
        stop();
        form.submit();
        return;
      }
      timer = setTimeout(look, 200);
    }

    button.addEventListener("click", function () {
      button.disabled = true;
      panel.hidden = false;
      status.textContent = status.dataset.looking;
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
        .then(function (media) {
          stream = media;
          video.srcObject = media;
          return video.play();
        })
        .then(look)
        .catch(function () {
          stop();
          panel.hidden = false;
          status.textContent = status.dataset.denied;
          field.focus();
        });
    });
    stopButton.addEventListener("click", stop);
    window.addEventListener("pagehide", stop);
  });
})();
