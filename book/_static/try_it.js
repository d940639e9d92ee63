// The "Try it" page: paint a hole on a face, fill it with the book's U-Net and VAE-GAN in the
// browser (onnxruntime-web, WebAssembly, one thread). What it loads is in _static/try/, written by
// inpaint book (inpaintlib/tryit.py). Known pixels stay as they were: the page composites, as the
// library does. window.tryIt exposes the state, for the browser test.
(function () {
  "use strict";
  const root = document.getElementById("try-demo");
  if (!root) return;
  const base = root.dataset.assets;
  const $ = (id) => document.getElementById(id);
  const status = $("try-status");
  const state = { faces: [], index: 0, size: 64, mask: null, brush: 4, cursor: null, sessions: {}, fills: 0 };
  window.tryIt = state;

  function say(text) { status.textContent = text; }

  function loadScript(src, integrity) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      if (integrity) { script.integrity = integrity; script.crossOrigin = "anonymous"; }
      script.onload = resolve;
      script.onerror = () => reject(new Error("could not load " + src));
      document.head.appendChild(script);
    });
  }

  function decodeFace(text) {
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return Float32Array.from(bytes, (v) => v / 255);
  }

  // Draw float RGB in [0, 1] (and, where hole is given, the hole in grey) on a canvas of the model's size.
  function draw(canvas, rgb, hole) {
    const n = state.size * state.size;
    const image = canvas.getContext("2d").createImageData(state.size, state.size);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) {
        const v = hole && hole[i] ? 0.5 : rgb[3 * i + c];
        image.data[4 * i + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
      }
      image.data[4 * i + 3] = 255;
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
  }

  function face() { return state.faces[state.index]; }
  function showInput() { draw($("try-input"), face(), state.mask); }

  function paint(x, y) {
    const r = state.brush / 2, s = state.size;
    for (let j = Math.max(0, Math.floor(y - r)); j < Math.min(s, Math.ceil(y + r)); j++) {
      for (let i = Math.max(0, Math.floor(x - r)); i < Math.min(s, Math.ceil(x + r)); i++) {
        if ((i + 0.5 - x) ** 2 + (j + 0.5 - y) ** 2 <= r * r) state.mask[j * s + i] = 1;
      }
    }
    showInput();
  }

  function centreHole() {
    state.mask.fill(0);
    const s = state.size, q = s / 4;
    for (let j = q; j < s - q; j++) for (let i = q; i < s - q; i++) state.mask[j * s + i] = 1;
    showInput();
  }

  function clearOutputs() {
    for (const kind of ["unet", "vaegan"]) {
      const canvas = $("try-" + kind);
      canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
      $("try-" + kind + "-time").textContent = "";
    }
  }

  function setFace(index) {
    state.index = (index + state.faces.length) % state.faces.length;
    state.mask.fill(0);
    $("try-face-number").textContent = `face ${state.index + 1} of ${state.faces.length}`;
    showInput();
    clearOutputs();
  }

  // A normal draw per code dimension (Box-Muller), times scale: each VAE-GAN click, a new fill.
  function gaussian(n, scale) {
    const z = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = 1 - Math.random(), v = Math.random();
      const r = Math.sqrt(-2 * Math.log(u));
      z[i] = scale * r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) z[i + 1] = scale * r * Math.sin(2 * Math.PI * v);
    }
    return z;
  }

  async function fill(kind) {
    const session = state.sessions[kind];
    if (!state.mask.some((v) => v)) { say("Paint a hole first (or press Centre hole)."); return; }
    const s = state.size, n = s * s, rgb = face(), m = state.mask;
    const masked = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) masked[3 * i + c] = rgb[3 * i + c] * (1 - m[i]);
    const feeds = {
      masked_image: new ort.Tensor("float32", masked, [1, s, s, 3]),
      mask: new ort.Tensor("float32", Float32Array.from(m), [1, s, s, 1]),
    };
    const model = state.config.models[kind];
    if (model.latent_dim) {  // a new draw each click, spread as the library draws (the manifest's temperature)
      const noise = gaussian(model.latent_dim, model.temperature ?? 1);
      feeds.noise = new ort.Tensor("float32", noise, [1, model.latent_dim]);
    }
    const started = performance.now();
    const output = (await session.run(feeds))[session.outputNames[0]].data;
    const seconds = (performance.now() - started) / 1000;
    const composite = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) {
      composite[3 * i + c] = m[i] ? output[3 * i + c] : rgb[3 * i + c];
    }
    draw($("try-" + kind), composite);
    $("try-" + kind + "-time").textContent = `${(seconds * 1000).toFixed(0)} ms`;
    state.fills += 1;
    state.last = { kind, seconds, output: Array.from(output) };
    say(kind === "vaegan" ? "Each VAE-GAN click draws a new fill." : "Filled.");
  }

  function pointerAt(event) {
    const box = $("try-input").getBoundingClientRect();
    return [(event.clientX - box.left) / box.width * state.size, (event.clientY - box.top) / box.height * state.size];
  }

  function listen() {
    const canvas = $("try-input");
    let down = false;
    canvas.addEventListener("pointerdown", (e) => { down = true; canvas.setPointerCapture(e.pointerId); paint(...pointerAt(e)); });
    canvas.addEventListener("pointermove", (e) => { if (down) paint(...pointerAt(e)); });
    canvas.addEventListener("pointerup", () => { down = false; });
    canvas.addEventListener("pointercancel", () => { down = false; });
    // The keyboard: arrows move the brush, space paints under it.
    canvas.addEventListener("keydown", (e) => {
      const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (!state.cursor) state.cursor = [state.size / 2, state.size / 2];
      if (steps[e.key]) {
        state.cursor = state.cursor.map((v, i) => Math.min(state.size, Math.max(0, v + 2 * steps[e.key][i])));
        if (e.shiftKey) paint(...state.cursor);
        say(`Brush at (${state.cursor.map(Math.round).join(", ")}): space paints, shift+arrows paint as they move.`);
      } else if (e.key === " ") {
        paint(...state.cursor);
      } else return;
      e.preventDefault();
    });
    $("try-brush").addEventListener("input", (e) => { state.brush = Number(e.target.value); });
    $("try-centre").addEventListener("click", centreHole);
    $("try-clear").addEventListener("click", () => { state.mask.fill(0); showInput(); clearOutputs(); });
    $("try-next").addEventListener("click", () => setFace(state.index + 1));
    for (const kind of ["unet", "vaegan"]) {
      $("try-fill-" + kind).addEventListener("click", () => fill(kind).catch((error) => say("Error: " + error.message)));
    }
  }

  async function start() {
    say("Loading the models ...");
    state.config = await (await fetch(base + "config.json")).json();
    const faces = await (await fetch(base + state.config.faces)).json();
    state.size = faces.size;
    state.faces = faces.faces.map(decodeFace);
    state.mask = new Float32Array(state.size * state.size);
    $("try-label").textContent = faces.label;
    for (const canvas of root.querySelectorAll("canvas")) { canvas.width = state.size; canvas.height = state.size; }
    const runtime = state.config.runtime;
    const local = !runtime.integrity;
    await loadScript(local ? base + runtime.script : runtime.script, runtime.integrity);
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = local ? base + runtime.wasm : runtime.wasm;
    for (const [kind, model] of Object.entries(state.config.models)) {
      state.sessions[kind] = await ort.InferenceSession.create(base + model.file, { executionProviders: ["wasm"] });
    }
    listen();
    setFace(0);
    for (const button of root.querySelectorAll("button")) button.disabled = false;
    state.ready = true;
    say("Paint a hole on the face (mouse, finger, or arrows and space), then press U-Net or VAE-GAN.");
  }

  start().catch((error) => { state.error = error.message; say("The demo could not start: " + error.message); });
})();
