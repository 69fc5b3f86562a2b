"""The fast path of text-to-3D on a GPU: the step's heavy parts replayed as CUDA graphs.

A step of `sdskit.text_to_3d.run` spends its GPU time in three parts: the U-Net's guided forward
(batch 2, 64 x 64 latents), the VAE encoder's forward and backward at 512 x 512, and the NeRF
render with its backward. Run eagerly, each is hundreds of small kernels, launched one by one
from Python; on a fast GPU the launches, not the arithmetic, set the pace. A CUDA graph records
a part's kernels once and then replays all of them with one launch: `torch.cuda.CUDAGraph` for
the U-Net's forward, `torch.cuda.make_graphed_callables` for the two parts whose backward runs
too. While a part is recorded, three of its choices change (each measured, MEASURED below): the
weights in channels_last, the group norms through the kit's own kernels (sdskit/group_norm.py:
Triton, compiled in seconds the first time on a machine), and the VAE encoder's attention as
plain matrix products. So the results agree with eager within fp16 rounding, and the fast path
is ready in about ten seconds, where compiling the same parts with `torch.compile` takes a
minute or more.

    fast = enable(sd)            # sd.unet and sd.vae.encoder now replay graphs (in place)
    renderer = fast.renderer()   # nerf.render_rays as graphs, for one run's NeRF
    fast.seconds                 # what recording cost, per part
    disable(sd)                  # back to plain eager

A part is recorded at its first call with new shapes (each NeRF shading once, each new NeRF
again). Any other call runs eagerly, untouched: another batch size or a CPU tensor, a U-Net
call with gradients or under autocast, the VAE or the NeRF without gradients (the previews,
the export). If a recording fails, one line says so and everything runs eagerly from then on.

What is replayed reads its inputs and weights from the addresses seen when it was recorded, so
the graphs hold on to copies of the inputs (and copy each call's inputs there), and a part whose
weights have moved (`.to(...)`) is recorded again. Each graph keeps its own memory pool: the
fast path reserves more GPU memory than eager (MEASURED: 11 GiB against 4), which is why run()
takes it by default only on a large GPU (TextTo3DConfig.fast).
"""

import time

import torch

from sdskit import group_norm
from sdskit import nerf as N
from sdskit.i18n import tr

# MEASURED: scripts/benchmark_sds_step.py (--explore graphs for the parts) on an NVIDIA H200,
# SD 2.1-base architecture with random weights, fp16, torch 2.11. "ready": seconds from a part's
# first call to its first replay, compiling included; "warm": the same in a second process, with
# torch's compile caches filled by the first. Median ms per call; difference from eager: largest
# absolute (relative to the norm). The compiled rows, the U-Net's eager row and the eager loop
# were measured on 2026-12-01, the rest on 2026-12-02, on the same kind of machine (the rows
# measured on both days agree within 1 ms).
#   U-Net forward, batch 2, 64x64:  eager 27.2 ms
#     CUDA graph of eager                     ready  0.1 s   11.4 ms   0 (the same kernels)
#     CUDA graph, channels_last               ready  0.2 s    9.8 ms   2.4e-3 (1.3e-3)
#     ... and the kit's group norm (taken)    ready  0.2 s    8.6 ms   2.9e-3 (1.5e-3); 6.7 s the
#                                                                      first time (Triton compiles)
#     regional compile + CUDA graph           ready 11.6 s   10.8 ms   2.9e-3 (1.3e-3); warm 3.0 s
#     whole compile + CUDA graph              ready 46.6 s    6.9 ms   2.9e-3 (1.5e-3); warm 8.1 s
#   VAE encoder forward + backward, 512x512:  eager 23.9 ms. Its profile: torch's group norm
#     statistics 5.2 ms (22 calls), the attention's backward 5.8 ms, layout copies 2.6 ms
#     CUDA graph of eager                     ready  0.1 s   23.3 ms   3.9e-3 (1.6e-3)
#     CUDA graph, math attention              ready  0.3 s   19.8 ms   3.9e-3 (1.7e-3)
#     CUDA graph, attention as products       ready  0.1 s   17.8 ms   4.2e-3 (1.8e-3)
#     CUDA graph, channels_last               ready  0.2 s   25.3 ms   6.8e-3 (3.3e-3)
#     CUDA graph, kit group norm (products)   ready  0.8 s   12.4 ms   1.1e-2 (4.4e-3)
#     ... and channels_last (taken)           ready  0.2 s    9.6 ms   1.0e-2 (4.4e-3); 2-5 s the
#                                                                      first time (Triton compiles)
#     regional compile (resnets) + graph      ready 31.0 s   16.1 ms   1.0e-2 (4.4e-3); warm 1.2 s
#     whole compile + CUDA graph              ready 20.9 s   16.1 ms   1.0e-2 (4.3e-3); warm 3.0 s
#   (The kit's group norm with the SiLU after it in the same kernels was measured too: 8.2 ms
#   for the U-Net, 10.7 for the VAE encoder; not worth its code.)
#   The whole loop (render 64x64, train_step, backward, Adam), steady state:
#     eager                         15.0 it/s (66.5 ms); peak 4.14 GiB allocated, 4.37 reserved
#     fast path (the graphs above)  42.6 it/s (23.5 ms); ready after 10.4 s the first time on a
#                                   machine (Triton compiling the group norm's kernels: U-Net
#                                   5.0 s, VAE encoder 4.8 s, NeRF render 0.6 s), 0.8 s after;
#                                   peak 4.27 GiB allocated, 11.1 reserved (the graphs' pools)
#     compiled (FastPath.compile)   47.1 it/s (21.3 ms); the U-Net compiled: 55 s the first time
#   One train_step at a fixed t and noise, against eager (relative error of the loss, of the
#   gradient on pred_rgb): fast path 8.4e-6, 1.06e-2; compiled 1.1e-4, 1.06e-2; what fp16
#   rounding alone moves (the same eager step with channels_last kernels) 2.9e-4, 9.8e-3; eager
#   twice 0, 1.5e-3.
#   The final cell end to end in fresh processes, side by side (loading, recording with an empty
#   Triton cache, steps, export): 400 steps eager 41.2 s, fast path 36.0 s; 2,000 steps eager
#   152.9 s, fast path 73.2 s.
# So the fast path pays from the first few hundred steps, and compiling the U-Net pays only for
# long runs: its 55 s against 2.2 ms a step saved is about 25,000 steps, which is what
# TextTo3DConfig.fast_compile_steps says.

# The choices beside the graphs, each measured there:
# the U-Net's weights in channels_last: its cuDNN convolutions then need no layout conversions
UNET_CHANNELS_LAST = True
# the VAE encoder's attention (4096 positions x 512 channels, one head): torch's fused kernels
# take head sizes up to 256 only, and the general one they fall back to spent a quarter of the
# encoder's time in its backward. "products": diffusers' AttnProcessor, fp16 matrix products with
# the softmax in fp32 (the VAE's upcast_softmax); "math": torch's math attention, which computes
# in fp32 throughout; "fused": torch's choice
VAE_ATTENTION = "products"
# the VAE encoder's weights in channels_last too (worth it only with the kit's group norm: torch's
# works on channels-first tensors, and copies the others there and back)
VAE_CHANNELS_LAST = True
# the parts whose recorded kernels normalise with sdskit.group_norm instead of torch's group norm,
# whose one block per (sample, group) leaves most of a large GPU idle at batch one
KIT_GROUP_NORM = ("U-Net", "VAE encoder")

ATTRIBUTE = "_sdskit_fast"  # where enable() keeps its FastPath on the StableDiffusion


def graphable(sd):
    """Whether `sd`'s U-Net and VAE are diffusers models, whose forward reads nothing but its
    inputs and weights (what a graph replays). A stand-in whose output depends on other state
    (the oracle check's U-Net reads a target set before each step) must stay eager."""
    from diffusers import ModelMixin

    return (isinstance(getattr(sd, "unet", None), ModelMixin)
            and isinstance(getattr(sd, "vae", None), ModelMixin)
            and isinstance(getattr(sd.vae, "encoder", None), torch.nn.Module))


def enable(sd, compile=False):
    """Replay `sd`'s U-Net forward and VAE encoder (forward and backward) as CUDA graphs, in
    place, and return the FastPath (the same one if already enabled). Needs `sd.unet` and
    `sd.vae.encoder` on a GPU. compile: record torch.compile's kernels instead of the eager ones
    (FastPath.compile)."""
    fast = getattr(sd, ATTRIBUTE, None)
    if fast is None:
        fast = FastPath(sd)
        setattr(sd, ATTRIBUTE, fast)
    if compile and not fast.compiled:
        fast.compile()
    return fast


def disable(sd):
    """Undo enable(): `sd` runs plain eager PyTorch again."""
    fast = sd.__dict__.pop(ATTRIBUTE, None)
    if fast is not None:
        fast.remove()


class FastPath:
    """The graphed parts of one StableDiffusion, what recording them cost, and whether it failed."""

    def __init__(self, sd):
        # the NeRF's parameters meet their gradients on the graphs' stream, as intended: torch
        # would warn about that stream in the student's cell
        quiet = getattr(torch.autograd.graph, "set_warn_on_accumulate_grad_stream_mismatch", None)
        if quiet is not None:
            quiet(False)
        self.failed = None   # the exception that switched the fast path off, if one did
        self.seconds = {}    # part -> seconds spent recording it (all its graphs together)
        self.parts = [GraphedUNet(self, sd.unet), GraphedEncoder(self, sd.vae.encoder)]
        for part in self.parts:
            part.install()

    @property
    def compiled(self):
        """Whether compile() has switched a part to torch.compile's kernels."""
        return any(part.compiled for part in self.parts)

    def compile(self):
        """Record the kernels of torch.compile for the U-Net (the whole model, its default mode)
        instead of the eager ones: a faster step, after a compilation that takes most of a
        minute the first time on a machine and seconds once torch's caches hold it (MEASURED).
        The VAE encoder stays as it is: compiled, it was slower than its graph of the kit's
        kernels. The compilation happens at the U-Net's next call; if it fails, the fast path
        says so and the step runs eagerly, as for any failed recording."""
        for part in self.parts:
            if part.name == "U-Net":
                part.forward_fn = torch.compile(type(part.module).forward, dynamic=False)
                part.compiled = True
                part.graphs.clear()

    def renderer(self):
        """A drop-in for nerf.render_rays replaying graphs (render() takes it as ray_renderer)."""
        return GraphedRenderer(self)

    @property
    def ready_seconds(self):
        return sum(self.seconds.values())

    def record(self, part, make):
        """make() timed under `part`; on an exception, the fast path switches off (one line
        says why) and this returns None, so that the caller runs eagerly."""
        start = time.perf_counter()
        try:
            return make()
        except Exception as error:  # noqa: BLE001 - any failure: say so once, go on eagerly
            self.fail(part, error)
            return None
        finally:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - start

    def fail(self, part, error):
        _recover_random_numbers()
        if self.failed is None:
            self.failed = error
            lines = str(error).strip().splitlines()
            why = f"{type(error).__name__}: {lines[0][:160]}" if lines else type(error).__name__
            print(tr("The fast path could not record the {part} ({error}), so the step runs "
                     "eagerly from here on: the same results, only slower.", part=part, error=why))
        self.remove()

    def remove(self):
        for part in self.parts:
            part.uninstall()


def _recover_random_numbers():
    """After a failed recording, CUDA's default random generators may still believe a graph is
    being recorded (torch skips their epilogue when the capture fails), and every later draw on
    the GPU would raise: give each a fresh copy of its own state (same seed and offset)."""
    if not torch.cuda.is_available():
        return
    for generator in torch.cuda.default_generators:
        try:
            generator.graphsafe_set_state(generator.clone_state())
        except Exception:  # noqa: BLE001 - an older torch: nothing to recover
            pass


def on_gpu(*tensors):
    """True when every tensor lives on a CUDA device (what a graph can record)."""
    return all(t.is_cuda for t in tensors)


def _autocast_on():
    return torch.is_autocast_enabled("cuda")


class _Part:
    """A module whose forward is replaced, on the instance, by one that replays graphs."""

    name = "?"

    def __init__(self, fast, module):
        self.fast, self.module, self.graphs = fast, module, {}
        self.forward_fn = type(module).forward  # what is recorded (FastPath.compile: compiled)
        self.compiled = False
        params = list(module.parameters())
        self._params = (params[0], params[-1]) if params else ()

    channels_last = False  # whether the module's weights are kept in channels_last

    def install(self):
        if self.channels_last:
            self.module.to(memory_format=torch.channels_last)
        self.module.forward = self

    def uninstall(self):
        if self.module.__dict__.get("forward") is self:
            del self.module.forward
            if self.channels_last:
                self.module.to(memory_format=torch.contiguous_format)
        self.graphs.clear()

    def eager(self, *args, **kwargs):
        return self.forward_fn(self.module, *args, **kwargs)

    def recording(self, make):
        """make(), with the kit's group norm in the module while its kernels are recorded
        (KIT_GROUP_NORM): the graph keeps those kernels, and eager calls stay torch's."""
        if self.name not in KIT_GROUP_NORM or self.compiled:  # compiled: Inductor's own kernels
            return make()
        group_norm.install(self.module)
        try:
            return make()
        finally:
            group_norm.remove(self.module)

    def weights(self):  # where the weights are now: a graph recorded elsewhere is stale
        return tuple(p.data_ptr() for p in self._params)

    def graph(self, key, make):
        """The graph recorded for `key`, made by make() at its first call (None: it failed)."""
        entry = self.graphs.get(key)
        if entry is None:
            weights = self.weights()
            if any(k[0] != weights for k in self.graphs):  # the weights moved: start over
                self.graphs.clear()
            entry = self.fast.record(self.name, lambda: self.recording(make))
            if entry is not None and self.fast.failed is None:
                self.graphs[key] = entry
        return entry if self.fast.failed is None else None


def _signature(*tensors):
    return tuple((tuple(t.shape), t.dtype, t.device) for t in tensors)


class GraphedUNet(_Part):
    """unet(sample, timestep, encoder_hidden_states=...) replayed from a CUDA graph of its eager
    kernels, for calls without gradients (SDS never differentiates through the U-Net)."""

    name = "U-Net"

    @property
    def channels_last(self):
        return UNET_CHANNELS_LAST

    def __call__(self, sample, timestep, encoder_hidden_states=None, *args, **kwargs):
        inputs = (sample, timestep, encoder_hidden_states)
        if (self.fast.failed is not None or args or set(kwargs) - {"return_dict"}
                or not kwargs.get("return_dict", True) or torch.is_grad_enabled() or _autocast_on()
                or not all(isinstance(x, torch.Tensor) for x in inputs) or not on_gpu(*inputs)):
            return self.eager(sample, timestep, encoder_hidden_states, *args, **kwargs)
        entry = self.graph((self.weights(),) + _signature(*inputs), lambda: self._record(*inputs))
        if entry is None:
            return self.eager(sample, timestep, encoder_hidden_states, *args, **kwargs)
        graph, static_inputs, static_output = entry
        for static, x in zip(static_inputs, inputs):
            static.copy_(x)
        graph.replay()
        # a copy: the graph overwrites its output at the next replay
        return self._output_type(sample=static_output.clone())

    def _record(self, sample, timestep, states):
        static = [x.detach().clone() for x in (sample, timestep, states)]
        # warm up on a side stream (cuBLAS and cuDNN set themselves up outside the recording)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(2):
                out = self.eager(static[0], static[1], encoder_hidden_states=static[2])
        torch.cuda.current_stream().wait_stream(stream)
        self._output_type = type(out)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            output = self.eager(static[0], static[1], encoder_hidden_states=static[2]).sample
        return graph, static, output


class GraphedEncoder(_Part):
    """vae.encoder(x) and its backward, replayed from CUDA graphs of the eager kernels, for calls
    whose input needs a gradient (encode_imgs inside train_step); other calls run eagerly."""

    name = "VAE encoder"

    @property
    def channels_last(self):
        return VAE_CHANNELS_LAST

    def __call__(self, x, *args, **kwargs):
        if (self.fast.failed is not None or args or kwargs or not isinstance(x, torch.Tensor)
                or not (torch.is_grad_enabled() and x.requires_grad) or _autocast_on()
                or not on_gpu(x)):
            return self.eager(x, *args, **kwargs)
        graphed = self.graph((self.weights(),) + _signature(x), lambda: (
            torch.cuda.make_graphed_callables(self.recorded, (x.detach().clone().requires_grad_(),))))
        return self.eager(x) if graphed is None else graphed(x)

    def recorded(self, x):
        if VAE_ATTENTION != "math":
            return self.eager(x)
        from torch.nn.attention import SDPBackend, sdpa_kernel
        with sdpa_kernel([SDPBackend.MATH]):
            return self.eager(x)

    def recording(self, make):
        if VAE_ATTENTION != "products":
            return super().recording(make)
        from diffusers.models.attention_processor import Attention, AttnProcessor
        attentions = [m for m in self.module.modules() if isinstance(m, Attention)]
        before = [m.processor for m in attentions]
        for m in attentions:
            m.processor = AttnProcessor()
        try:
            return super().recording(make)
        finally:
            for m, processor in zip(attentions, before):
                m.processor = processor


class GraphedRenderer:
    """nerf.render_rays, forward and backward, replayed from CUDA graphs of its eager kernels:
    one graph per shading (and input shapes) for one NeRF. Its parameters take part as inputs,
    so their gradients reach Adam as in eager. Calls without gradients run eagerly."""

    name = "NeRF render"

    def __init__(self, fast):
        self.fast, self.field, self.graphs = fast, None, {}
        self.render_fn = N.render_rays  # what is recorded (the benchmark tries compiled ones)

    def __call__(self, field, origins, dirs, u, shading="albedo", light_position=None,
                 need_normals=None):
        tensors = (origins, dirs, u) + (() if light_position is None else (light_position,))
        if (self.fast.failed is not None or not torch.is_grad_enabled() or not on_gpu(*tensors)
                or not any(p.requires_grad for p in field.parameters())):
            return N.render_rays(field, origins, dirs, u, shading, light_position, need_normals)
        if field is not self.field:  # another NeRF: its parameters live elsewhere
            self.field, self.graphs = field, {}
        dtype = torch.get_autocast_dtype("cuda")
        key = (shading, need_normals, _autocast_on(), dtype) + _signature(*tensors)
        graphed = self.graphs.get(key)
        if graphed is None:
            graphed = self.fast.record(self.name, lambda: self._record(field, shading, need_normals,
                                                                       tensors, dtype))
            if graphed is None or self.fast.failed is not None:
                return N.render_rays(field, origins, dirs, u, shading, light_position, need_normals)
            self.graphs[key] = graphed
        return graphed(*tensors)

    def _record(self, field, shading, need_normals, tensors, dtype):
        rays = _Rays(self.render_fn, field, shading, need_normals)
        sample = tuple(t.detach().clone() for t in tensors)
        # recorded under the run's autocast, with its weight cache off: the weights change every
        # step, so their fp16 copies are made inside the graph
        with torch.autocast("cuda", dtype=dtype, enabled=_autocast_on(), cache_enabled=False):
            return torch.cuda.make_graphed_callables(rays, sample)


class _Rays(torch.nn.Module):
    """render_rays for one field and shading, as a module (its parameters: the field's)."""

    def __init__(self, render_fn, field, shading, need_normals):
        super().__init__()
        self.render_fn, self.field, self.shading, self.need_normals = (render_fn, field, shading,
                                                                      need_normals)

    def forward(self, origins, dirs, u, light_position=None):
        return self.render_fn(self.field, origins, dirs, u, self.shading, light_position,
                              self.need_normals)
