"""The checks behind the assignment's test cells, one function per blank.

Each check takes the student's `StableDiffusion` class, runs only the blank it grades, and
returns a `Report`. A test cell reads

    report = checks.blank5_sample_timestep(StableDiffusion, "visible")
    assert report.passed, report.message

so a failure shows one short message in the student's terms and no traceback from the kit.

Isolation: a blank is graded as if the other six were right. The checks never call the
student's `__init__` except in blank 1's check (which replaces blank 2 with its reference
values); every other check builds the object from the tiny model and the reference state
(`reference_instance`), then calls the one method that holds the blank.

Expected values come from `assets/references.pt` (the visible cases) and, in the
instructor's copy only, `autograder/hidden_references.pt` (the hidden cases). Both are
computed by `scripts/make_references.py`, which runs the solution notebook's own code on the
tiny model. In a student's copy the hidden cases are absent: a hidden check then says, in one
line, that it runs when the work is graded.

What a check compares: only plain tensors it owns. Every result the student's code returns goes
through `_plain` before anything is asked of it: its data is copied into a base `torch.Tensor`
by torch's own C methods, with subclasses' `__torch_function__` switched off, so none of the
result's own code (an overridden method, property or `__torch_function__`) runs in a check. A
tensor subclass, an object that claims to be a tensor, or an int subclass (blank 2) is noted in
`Report.review` (grade.py flags it `review`); a PyTorch mode left switched on fails the blank.
"""

import functools
import inspect
import math
import traceback
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from sdskit import probes
from sdskit.i18n import N_, lazy, pad, render, tr, tr_in, width
from sdskit.paths import HIDDEN_REFERENCES, REFERENCES, TINY_SD

# Tolerances for comparing with the references (float32 on the CPU). Blank 4 runs the VAE,
# whose convolutions may sum in another order on other CPUs, hence its looser bound.
ATOL, RTOL = 1e-5, 1e-4
ATOL_VAE, RTOL_VAE = 1e-4, 1e-3


CASES = ("visible", "hidden")
HIDDEN_NOT_HERE = N_("the hidden tests are not in your copy of the assignment: they run when "
                     "your work is graded. Run the visible test to check your work now.")


@dataclass
class Report:
    """What a check found: `passed`, and a message for the student when it did not.

    `not_run` holds why the check could not run at all (hidden cases asked for in a student's
    copy, or an unknown `cases`); such a report has not passed, and says so in one line.
    `blank` is the blank's English name (a catalogue message, sdskit/i18n.py); the problems are
    already in the student's language. `review` says what was odd about the results (a tensor
    subclass), whatever the verdict: for the staff, and on the student's page in their
    language (catalogue messages, as the problems)."""

    blank: str
    problems: list[str] = field(default_factory=list)
    not_run: str = ""
    review: list = field(default_factory=list)  # odd results (messages), flagged `review`

    @property
    def passed(self) -> bool:
        return not self.problems and not self.not_run

    @property
    def message(self) -> str:
        return self.message_in(None)

    def message_in(self, code: str | None) -> str:
        """The message in the language `code` (None: the current one, sdskit/i18n.py)."""
        blank = tr_in(code, self.blank) if code else tr(self.blank)
        if self.not_run:
            return f"{blank}: {render(self.not_run, code)}"
        if self.passed:
            return render(lazy("{blank}: all checks passed.", blank=blank), code)
        lines = "\n".join(f"  - {render(p, code)}" for p in self.problems)
        return "\n" + render(lazy("{blank}: not yet right.", blank=blank), code) + f"\n{lines}"

    def __str__(self) -> str:
        return self.message


class _StudentCodeFailed(Exception):
    """The student's code raised; the message says where and what."""


def hidden_available() -> bool:
    """True in the instructor's copy, where the hidden cases exist."""
    return HIDDEN_REFERENCES.is_file()


@functools.lru_cache(maxsize=1)
def references() -> dict:
    """The reference tensors, loaded once: the visible cases, and the hidden ones where present.

    Both files hold {"init": {...}, "blank2": {"visible" or "hidden": ...}, ...}; they merge key
    by key."""
    refs = torch.load(REFERENCES, map_location="cpu", weights_only=True)
    if hidden_available():
        hidden = torch.load(HIDDEN_REFERENCES, map_location="cpu", weights_only=True)
        for key, value in hidden.items():
            if isinstance(value, dict):
                refs[key] = {**refs.get(key, {}), **value}
    return refs


@functools.lru_cache(maxsize=1)
def _tiny_components():
    """The tiny model's parts, loaded once and frozen."""
    from diffusers import DDIMScheduler

    from sdskit.loading import load_pipeline

    pipe = load_pipeline(str(TINY_SD), torch.float32)
    for module in (pipe.vae, pipe.text_encoder, pipe.unet):
        module.requires_grad_(False)
    scheduler = DDIMScheduler.from_pretrained(str(TINY_SD), subfolder="scheduler")
    # The meta and fp16 copies the probes use (sdskit/probes.py), made here once: the grader's
    # worker loads this before it forks a process per blank, which then inherits them.
    probes.meta_modules(pipe.vae, pipe.text_encoder, pipe.unet)
    probes.half_modules(pipe.vae, pipe.text_encoder, pipe.unet)
    return pipe.vae, pipe.tokenizer, pipe.text_encoder, pipe.unet, scheduler


def reference_instance(cls, step_range: tuple[int, int] | None = None, device="cpu",
                       fp16: bool = False):
    """An instance of the student's class whose state is the reference's, built without
    running the student's `__init__` (blanks 1 and 2), so that other blanks are graded alone.

    step_range: (min_step, max_step); by default the references' values for t_range's default.
    device: "cpu", or "meta" (sdskit/probes.py: self.device, the modules and self.alphas on
    PyTorch's data-less device, a stand-in for the GPU). fp16: self.precision_t is float16 and
    the modules are in half precision (the VAE a stand-in, see sdskit/probes.py).
    """
    sd = cls.__new__(cls)
    nn.Module.__init__(sd)
    vae, tokenizer, text_encoder, unet, scheduler = _tiny_components()
    sd.device = torch.device("cpu")
    sd.sd_version = "tiny"
    sd.precision_t = torch.float32
    sd.vae, sd.tokenizer, sd.text_encoder, sd.unet = vae, tokenizer, text_encoder, unet
    sd.scheduler = scheduler
    sd.num_train_timesteps = scheduler.config.num_train_timesteps
    if step_range is None:
        step_range = references()["init"]["min_step"], references()["init"]["max_step"]
    sd.min_step, sd.max_step = step_range
    sd.alphas = scheduler.alphas_cumprod.to(sd.device)  # abar_t, as the class keeps it
    if device != "cpu" or fp16:
        probes.configure(sd, device, fp16)
    return sd


def _student_frame(error: BaseException) -> str:
    """' (your line: ...)' for the innermost line of notebook code in the traceback, if any."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if "ipykernel" in f.filename or f.filename.startswith("<")]
    if not own:
        return ""
    line = (own[-1].line or "").strip()
    return " " + lazy("(in your code: `{line}`)", line=line) if line else ""


def _call(blank: str, method: str, fn, *args):
    """Run the student's code; turn any exception into a message in the student's terms."""
    try:
        return fn(*args)
    except NotImplementedError as error:
        raise _StudentCodeFailed(lazy(
            "{method} still raises NotImplementedError: {blank} is not filled in yet "
            "(replace `raise NotImplementedError()` with your code, then run that cell).",
            method=method, blank=lazy(blank))) from error
    except Exception as error:  # noqa: BLE001 - any error of the student's becomes a message
        raise _StudentCodeFailed(lazy(
            "{method} raised {error}: {text}", method=method, error=type(error).__name__,
            text=str(error).strip()[:300]) + _student_frame(error)) from error


def _method(sd, name: str, blank: str):
    """The student's method `name`, or a message that it is not defined."""
    fn = getattr(sd, name, None)
    if fn is None:
        raise _StudentCodeFailed(lazy(
            "StableDiffusion has no method `{name}`. Run the cell that defines it for {blank} "
            "(it ends with `StableDiffusion.{name} = {name}`).", name=name, blank=lazy(blank)))
    return fn


# ---------------------------------------------------------------------------------------
# Reading a student's result: its data, never its own code
# ---------------------------------------------------------------------------------------
# Taken when the kit is imported, before any student code runs: the base class's C methods.
# Called on the base class, they ignore a subclass's Python overrides; under
# DisableTorchFunctionSubclass they skip its __torch_function__ too.
_TENSOR = torch.Tensor
_PLAIN_TYPES = (torch.Tensor, nn.Parameter)  # Parameter's __torch_function__ is torch's own
_AS_SUBCLASS = torch._C.TensorBase.as_subclass  # raises TypeError for anything not a tensor
_CLONE = torch._C.TensorBase.clone
_GRAD = torch._C.TensorBase.grad.__get__
_NO_SUBCLASS_CODE = torch._C.DisableTorchFunctionSubclass
_PYTHON_KEY = torch._C.DispatchKey.Python
_DISPATCH_KEYS = torch._C._dispatch_keys
_FUNCTION_MODES = torch._C._len_torch_function_stack
_DISPATCH_MODES = torch._C._len_torch_dispatch_stack
_INT = int.__int__  # int's own value of an int subclass (TypeError for anything else)
_REVIEW: list[str] = []  # what _plain noticed during the current check (Report.review)


class _NotATensor:
    """Stands in for a result that is not a tensor (or cannot be read as one): only its kind
    is kept, for the message, so no check calls anything on the object itself."""

    def __init__(self, kind: str, unreadable: bool = False):
        self.kind, self.unreadable = kind, unreadable


def _kind(value) -> str:
    """The name of a result's type, for a message."""
    return value.kind if type(value) is _NotATensor else type(value).__name__


def _no_modes_left() -> None:
    """A TorchFunctionMode or TorchDispatchMode still on would answer the check's own torch
    calls: such a blank cannot be graded."""
    if _FUNCTION_MODES() or _DISPATCH_MODES():
        _REVIEW.append(lazy("a PyTorch function or dispatch mode was left on"))
        raise _StudentCodeFailed(lazy(
            "Your code left a PyTorch mode switched on (a TorchFunctionMode or "
            "TorchDispatchMode), so the tests' own computations would run through it. Leave "
            "it with `with mode:` blocks that end before your method returns."))


def _plain(value):
    """`value` as a base torch.Tensor that the check owns: a copy of its data (autograd history
    kept, so gradient checks still work), read by torch's C methods with subclass overrides
    switched off. Anything that is not a tensor comes back as a `_NotATensor`. A subclass, or
    an object that only claims to be a tensor, is noted for review."""
    _no_modes_left()
    cls = type(value)
    kind = cls.__name__
    with _NO_SUBCLASS_CODE():
        try:
            alias = _AS_SUBCLASS(value, _TENSOR)  # checks the real type, not __class__
        except TypeError:  # not a tensor: noted if it has torch's hook or a made-up class
            if inspect.getattr_static(cls, "__torch_function__", None) is not None or any(
                    "__class__" in vars(base) for base in cls.__mro__[:-1]):
                _REVIEW.append(lazy("a result is a {kind} posing as a tensor", kind=kind))
            return _NotATensor(kind)
        if cls not in _PLAIN_TYPES:
            _REVIEW.append(lazy("a result is a torch.Tensor subclass ({kind}): graded on its data",
                                kind=kind))
        if _DISPATCH_KEYS(value).has(_PYTHON_KEY):  # a wrapper subclass: no data of its own
            return _NotATensor(kind, unreadable=True)
        return _CLONE(alias)


def _plain_grad(tensor):
    """The .grad of one of the check's own inputs (read past any class the student gave it)."""
    with _NO_SUBCLASS_CODE():
        grad = _GRAD(tensor)
    return None if grad is None else _plain(grad)


def _plain_int(value):
    """An int the check owns for an int (or int subclass) result; a `_NotATensor` otherwise."""
    if type(value) is int:
        return value
    if type(value) is bool:
        return _NotATensor("bool")
    try:
        number = _INT(value)
    except TypeError:
        return _NotATensor(type(value).__name__)
    _REVIEW.append(lazy("a result is an int subclass ({kind}): graded on its value",
                        kind=type(value).__name__))
    return number


def _tensor_problem(what: str, got, expected: torch.Tensor, atol: float, rtol: float,
                    hints=()) -> str | None:
    """None if `got` matches `expected`; else what differs. `hints` are pairs (what a common
    mistake would give, the hint for it): the first whose tensor `got` matches is added.
    `got` is what `_plain` made of the student's result."""
    what = lazy(what)  # rendered with the message
    if type(got) is _NotATensor and got.unreadable:
        return lazy("{what} should be a plain torch.Tensor, but it is a {kind}, whose values "
                    "only its own code can read.", what=what, kind=got.kind)
    if type(got) is not _TENSOR:
        return lazy("{what} should be a torch.Tensor, but it is a {kind}.", what=what,
                  kind=_kind(got))
    if tuple(got.shape) != tuple(expected.shape):
        return lazy("{what} should have shape {expected}, but it has shape {shape}.", what=what,
                  expected=list(expected.shape), shape=list(got.shape))
    if not got.is_floating_point():
        return lazy("{what} should hold floating-point numbers, but its dtype is {dtype}.",
                  what=what, dtype=got.dtype)
    got = got.detach().float().cpu()
    expected = expected.float()
    if not torch.isfinite(got).all():
        return lazy("{what} contains NaN or inf values.", what=what)
    if torch.allclose(got, expected, atol=atol, rtol=rtol):
        return None
    worst = format((got - expected).abs().max().item(), ".3g")
    message = lazy("{what} has the right shape but wrong values: the largest difference from the "
                   "expected values is {worst} (allowed: {atol} + {rtol} x |expected|).",
                   what=what, worst=worst, atol=format(atol, "g"), rtol=format(rtol, "g"))
    for mistake, hint in hints:
        if torch.allclose(got, mistake.float(), atol=atol, rtol=rtol):
            return message + " " + lazy("Hint: {hint}", hint=lazy(hint))
    return message


def _cannot_run(blank: str, cases) -> Report | None:
    """A one-line report if these cases cannot be checked here, else None."""
    if cases not in CASES:
        return Report(blank, not_run=lazy("cases should be 'visible' or 'hidden', not {cases}.",
                                        cases=repr(cases)))
    if cases == "hidden" and not hidden_available():
        return Report(blank, not_run=lazy(HIDDEN_NOT_HERE))
    return None


def _run(blank: str, body) -> Report:
    report = Report(blank)
    _REVIEW.clear()
    try:
        body(report.problems)
    except _StudentCodeFailed as failure:
        report.problems.append(failure.args[0])
    report.review = list(dict.fromkeys(_REVIEW))
    _REVIEW.clear()
    return report


# ---------------------------------------------------------------------------------------
# What only fails on a GPU (sdskit/probes.py): each blank once more on a meta instance, whose
# self.device stands in for "cuda", and on an instance whose model is in fp16.
# ---------------------------------------------------------------------------------------
ON_META = N_("On an instance whose self.device is 'meta' (the checks' stand-in for the GPU, "
             "'cuda', where train_step runs on Colab)")
ON_FP16 = N_("On an instance whose model is in fp16 (self.precision_t is torch.float16, as on "
             "a GPU)")
MISMATCH = N_("On a GPU, train_step would stop there with a device-mismatch error.")
KEEP_DEVICE = N_("Keep the result where its inputs are: no .cpu() or .to('cpu'), and any new "
                 "tensor made with device=self.device.")


def _probe_call(where: str, method: str, fn, *args, hint: str = KEEP_DEVICE):
    """fn(*args) on a probe instance; an exception becomes a message that says where it ran."""
    try:
        return fn(*args)
    except NotImplementedError as error:
        raise _StudentCodeFailed(lazy(
            "{method} still raises NotImplementedError (replace `raise NotImplementedError()` "
            "with your code, then run that cell).", method=method)) from error
    except Exception as error:  # noqa: BLE001 - any error of the student's becomes a message
        text = str(error).strip()[:300].rstrip(".!") + "."
        raise _StudentCodeFailed(lazy(
            "{where}, {method} raised {error}: {text}", where=lazy(where), method=method,
            error=type(error).__name__, text=text)
            + _student_frame(error) + " " + lazy("Hint: {hint}", hint=lazy(hint))) from error


def _on_device_problem(what: str, got, why: str = MISMATCH, fix: str = KEEP_DEVICE):
    """None if `got` is a tensor on the meta device; else what is wrong, where, and what to do."""
    if type(got) is not _TENSOR:  # what _plain made of the result
        return lazy("{what} should be a torch.Tensor, but it is a {kind}.", what=lazy(what),
                    kind=_kind(got))
    if got.device == probes.META:
        return None
    return lazy("{where}, {what} came out on {device}, not on self.device ({expected}). {why} "
                "{fix}", where=lazy(ON_META), what=lazy(what), device=str(got.device),
                expected=str(probes.META), why=lazy(why), fix=lazy(fix))


# ---------------------------------------------------------------------------------------
# Blank 1: super().__init__()
# ---------------------------------------------------------------------------------------
def blank1_super_init(cls, cases: str = "visible") -> Report:
    """The constructor initialises nn.Module, so the U-Net, VAE and text encoder are
    registered as submodules (blank 2 is replaced by its reference values here)."""
    blank = N_("Blank 1 (super().__init__())")
    if (skipped := _cannot_run(blank, cases)) is not None:
        return skipped
    ref = references()["init"]
    case = references()["blank1"][cases]
    t_range = list(case["t_range"])
    seen = {}

    class WithReferenceStepRange(cls):
        def set_step_range(self, t_range):
            seen["t_range"] = list(t_range)
            self.min_step, self.max_step = ref["min_step"], ref["max_step"]

    def body(problems):
        try:
            sd = WithReferenceStepRange("cpu", False, False, hf_key=str(TINY_SD), t_range=t_range)
        except NotImplementedError as error:
            raise _StudentCodeFailed(lazy(
                "StableDiffusion(...) still raises NotImplementedError: Blank 1 is not filled "
                "in yet (replace `raise NotImplementedError()` in __init__, then run the cell)."
            )) from error
        except AttributeError as error:
            hint = ""
            if "before Module.__init__()" in str(error):
                hint = " " + lazy("Hint: a subclass of nn.Module must call the parent "
                                  "constructor, super().__init__(), before it stores any "
                                  "submodule or parameter.")
            raise _StudentCodeFailed(lazy(
                "StableDiffusion(...) raised AttributeError: {error}", error=str(error))
                + _student_frame(error) + "." + hint) from error
        except Exception as error:  # noqa: BLE001
            raise _StudentCodeFailed(lazy(
                "{method} raised {error}: {text}", method="StableDiffusion(...)",
                error=type(error).__name__, text=str(error)[:300]) + _student_frame(error)
            ) from error
        if not isinstance(sd, nn.Module):
            problems.append(lazy("StableDiffusion should be an nn.Module."))
            return
        registered = set(getattr(sd, "_modules", {}) or {})
        missing = [name for name in ("vae", "text_encoder", "unet") if name not in registered]
        if missing:
            problems.append(lazy(
                "After __init__, {missing} are not registered as submodules, so .to(device) "
                "and .parameters() would miss them. Hint: call super().__init__() first.",
                missing=missing))
        if seen.get("t_range") != t_range:
            problems.append(lazy(
                "__init__ should pass its t_range to set_step_range: it was called with "
                "{seen}, expected {expected}.", seen=repr(seen.get("t_range")),
                expected=repr(t_range)))
        if cases == "hidden" and not problems:
            n_params = sum(p.numel() for p in map(_plain, nn.Module.parameters(sd))
                           if type(p) is _TENSOR)
            if n_params != case["n_parameters"]:
                problems.append(lazy("sd.parameters() holds {count} numbers, expected {expected}.",
                                   count=n_params, expected=case["n_parameters"]))

    return _run(blank, body)


# ---------------------------------------------------------------------------------------
# Blank 2: min_step, max_step
# ---------------------------------------------------------------------------------------
def blank2_step_range(cls, cases: str = "visible") -> Report:
    """set_step_range turns the fractions t_range into whole-number timesteps."""
    blank = N_("Blank 2 (min_step and max_step)")
    if (skipped := _cannot_run(blank, cases)) is not None:
        return skipped

    def body(problems):
        for case in references()["blank2"][cases]:
            sd = reference_instance(cls)
            sd.num_train_timesteps = case["num_train_timesteps"]
            del sd.min_step, sd.max_step
            set_step_range = _method(sd, "set_step_range", blank)
            _call(blank, "set_step_range", set_step_range, list(case["t_range"]))
            for name in ("min_step", "max_step"):
                got = getattr(sd, name, None)
                got = got if got is None else _plain_int(got)
                want = case[name]
                where = lazy("with num_train_timesteps={steps} and t_range={t_range}",
                           steps=case["num_train_timesteps"], t_range=list(case["t_range"]))
                if got is None:
                    problems.append(lazy("self.{name} was not set ({where}).", name=name,
                                       where=where))
                elif type(got) is not int:
                    shown = getattr(sd, name, None)
                    shown = repr(shown) if type(shown) in (float, bool, str, _TENSOR) else _kind(got)
                    problems.append(lazy(
                        "self.{name} should be a Python int, but it is {got} ({kind}) {where}. "
                        "Hint: wrap it in int(...).", name=name, got=shown,
                        kind=_kind(got), where=where))
                elif got != want:
                    hint = ""
                    exact = case["num_train_timesteps"] * case["t_range"][name == "max_step"]
                    if got in (0, 1) or got == round(case["t_range"][name == "max_step"]):
                        hint = " " + lazy("Hint: t_range holds fractions of num_train_timesteps.")
                    elif got == round(exact):
                        hint = " " + lazy("Hint: int(...) drops the fraction ({exact} gives "
                                          "{want}); round() goes to the nearest whole number.",
                                          exact=format(exact, "g"), want=want)
                    problems.append(lazy("self.{name} is {got}, expected {want} {where}.",
                                       name=name, got=got, want=want, where=where) + hint)
            if problems:
                return

    return _run(blank, body)


# ---------------------------------------------------------------------------------------
# Blank 3: latents straight from a 4-channel render (as_latent=True)
# ---------------------------------------------------------------------------------------
def blank3_interpolate_latents(cls, cases: str = "visible") -> Report:
    """interpolate_latents resizes to 64x64 (bilinear) and maps [0, 1] to [-1, 1]."""
    blank = N_("Blank 3 (latents from pred_rgb, as_latent=True)")
    if (skipped := _cannot_run(blank, cases)) is not None:
        return skipped
    case = references()["blank3"][cases]

    def body(problems):
        sd = reference_instance(cls)
        fn = _method(sd, "interpolate_latents", blank)
        pred_rgb = case["pred_rgb"].clone().requires_grad_(True)
        latents = _plain(_call(blank, "interpolate_latents", fn, pred_rgb))
        expected = case["latents"]
        problem = _tensor_problem(N_("latents"), latents, expected, ATOL, RTOL, hints=[
            ((expected + 1) / 2,
             N_("the values are still in [0, 1]; latents are expected in [-1, 1] (2 * x - 1).")),
            (2 * torch.nn.functional.interpolate(case["pred_rgb"], size=(64, 64),
                                                 mode="bilinear", align_corners=True) - 1,
             N_("use align_corners=False, as the image encoder's resize does.")),
        ])
        if problem:
            problems.append(problem)
            return
        if not latents.requires_grad:
            problems.append(lazy("latents carry no gradient back to pred_rgb: do not detach them "
                               "or compute them under torch.no_grad()."))
            return
        sd_meta = reference_instance(cls, device="meta")
        fn = _method(sd_meta, "interpolate_latents", blank)
        got = _plain(_probe_call(ON_META, "interpolate_latents", fn,
                                 probes.meta_like(pred_rgb)))
        if (problem := _on_device_problem(N_("latents"), got)) is not None:
            problems.append(problem)
            return
        # train_step under fp16 may get an fp16 render (the NeRF renders under autocast)
        sd_half = reference_instance(cls, fp16=True)
        fn = _method(sd_half, "interpolate_latents", blank)
        got = _plain(_probe_call(ON_FP16, "interpolate_latents", fn,
                                 case["pred_rgb"].half()))
        problem = _tensor_problem(N_("latents of an fp16 render"), got, expected, 1e-2, 1e-2)
        if problem:
            problems.append(problem)

    return _run(blank, body)


# ---------------------------------------------------------------------------------------
# Blank 4: resize to 512 and encode with the VAE (as_latent=False)
# ---------------------------------------------------------------------------------------
HALF_HINT = N_("there the VAE's weights are in self.precision_t (torch.float16); self.encode_imgs "
               "casts the picture to it for you.")


def blank4_encode_rgb(cls, cases: str = "visible") -> Report:
    """encode_rgb resizes to 512x512 and encodes with encode_imgs; gradient reaches pred_rgb."""
    blank = N_("Blank 4 (resize to 512 and encode)")
    if (skipped := _cannot_run(blank, cases)) is not None:
        return skipped
    case = references()["blank4"][cases]

    def body(problems):
        sd = reference_instance(cls)
        fn = _method(sd, "encode_rgb", blank)
        pred_rgb = case["pred_rgb"].clone().requires_grad_(True)
        torch.manual_seed(case["seed"])  # encode_imgs samples from the VAE's posterior
        latents = _plain(_call(blank, "encode_rgb", fn, pred_rgb))
        expected = case["latents"]
        if type(latents) is _TENSOR and tuple(latents.shape) != tuple(expected.shape):
            side = latents.shape[-1] if latents.dim() == 4 else None
            extra = (" " + lazy("Hint: the VAE shrinks images 8x, so resize pred_rgb to (512, 512) "
                              "first.") if side not in (None, 64) else "")
            problems.append(lazy("{what} should have shape {expected}, but it has shape {shape}.",
                               what=lazy("latents"), expected=list(expected.shape),
                               shape=list(latents.shape)) + extra)
            return
        problem = _tensor_problem(N_("latents"), latents, expected, ATOL_VAE, RTOL_VAE)
        if problem:
            problems.append(problem + " " + lazy("Hint: use bilinear resizing with "
                                               "align_corners=False, then self.encode_imgs "
                                               "(which expects pixels in [0, 1])."))
            return
        if not latents.requires_grad:
            problems.append(lazy("latents carry no gradient back to pred_rgb: SDS needs the "
                               "gradient to flow through the encoder, so no torch.no_grad() or "
                               ".detach() here."))
            return
        latents.backward(case["upstream"])
        pred_rgb_grad = _plain_grad(pred_rgb)
        if pred_rgb_grad is None:
            problems.append(lazy("No gradient reached pred_rgb through the encoder."))
            return
        problem = _tensor_problem(N_("the gradient reaching pred_rgb"), pred_rgb_grad,
                                  case["pred_rgb_grad"], ATOL_VAE, RTOL_VAE)
        if problem:
            problems.append(problem)
            return
        sd_meta = reference_instance(cls, device="meta")
        fn = _method(sd_meta, "encode_rgb", blank)
        got = _plain(_probe_call(ON_META, "encode_rgb", fn, probes.meta_like(pred_rgb)))
        if (problem := _on_device_problem(N_("latents"), got)) is not None:
            problems.append(problem)
            return
        # fp16 weights, a float32 render: what train_step does on a GPU
        sd_half = reference_instance(cls, fp16=True)
        fn = _method(sd_half, "encode_rgb", blank)
        render = case["pred_rgb"].clone().requires_grad_(True)
        got = _plain(_probe_call(ON_FP16, "encode_rgb", fn, render, hint=HALF_HINT))
        if type(got) is not _TENSOR or tuple(got.shape) != tuple(expected.shape):
            problems.append(lazy("{where}, encode_rgb gave {got}, not latents of shape "
                                 "{expected}.", where=lazy(ON_FP16), expected=list(expected.shape),
                                 got=list(got.shape) if type(got) is _TENSOR else _kind(got)))
        elif not got.requires_grad:
            problems.append(lazy("{where}, no gradient reached pred_rgb through the encoder.",
                                 where=lazy(ON_FP16)))

    return _run(blank, body)


# ---------------------------------------------------------------------------------------
# Blank 5: sampling t
# ---------------------------------------------------------------------------------------
T_DEVICE_WHY = N_("In train_step, t goes into the U-Net, whose time embedding is on self.device: "
                   "on a GPU, a t on the CPU stops train_step there with a device-mismatch "
                   "error.")
T_DEVICE_FIX = N_("Make t on self.device: torch.randint takes a device= argument.")


def blank5_sample_timestep(cls, cases: str = "visible") -> Report:
    """sample_timestep draws whole-number t uniformly from min_step..max_step, both ends
    included, on self.device; shape (1,) as in DreamFusion's code, or one t per batch element."""
    blank = N_("Blank 5 (sampling t)")
    if (skipped := _cannot_run(blank, cases)) is not None:
        return skipped

    def body(problems):
        for case in references()["blank5"][cases]:
            lo, hi, batch, draws = case["min_step"], case["max_step"], case["batch"], case["draws"]
            sd = reference_instance(cls)
            sd.min_step, sd.max_step = lo, hi
            fn = _method(sd, "sample_timestep", blank)
            torch.manual_seed(case["seed"])
            seen = []
            for _ in range(draws):
                t = _plain(_call(blank, "sample_timestep", fn, batch))
                if type(t) is not _TENSOR:
                    problems.append(lazy("{what} should be a torch.Tensor, but it is a {kind}.",
                                       what="t", kind=_kind(t)))
                    return
                if t.dtype != torch.long:
                    problems.append(lazy("t should hold integers (torch.long), but its dtype is "
                                       "{dtype}. Hint: torch.randint gives integers.",
                                       dtype=t.dtype))
                    return
                if tuple(t.shape) not in {(1,), (batch,)}:
                    problems.append(lazy("t should have shape [1] or [{batch}] (batch size "
                                       "{batch}), but it has shape {shape}.", batch=batch,
                                       shape=list(t.shape)))
                    return
                if t.device != sd.device:
                    problems.append(lazy("t should be on self.device ({expected}), but it is on "
                                       "{device}.", expected=sd.device, device=t.device))
                    return
                seen.append(t)
            values = torch.cat(seen)
            low, high = int(values.min()), int(values.max())
            if low < lo or high > hi:
                problems.append(lazy("With min_step={lo} and max_step={hi}, t took values from "
                                   "{low} to {high}: every t must lie in [min_step, max_step].",
                                   lo=lo, hi=hi, low=low, high=high))
                return
            # Ends and uniformity are checked where every value is expected 20+ times.
            if values.numel() < 20 * (hi - lo + 1):
                continue
            if low != lo or high != hi:
                missing = lo if low != lo else hi
                hint = (" " + lazy("Hint: torch.randint(low, high, ...) never returns high itself.")
                        if missing == hi else "")
                problems.append(lazy("With min_step={lo} and max_step={hi}, {draws} draws never "
                                   "gave t={missing}: both ends must be possible.", lo=lo, hi=hi,
                                   draws=values.numel(), missing=missing) + hint)
                return
            counts = torch.bincount(values - lo, minlength=hi - lo + 1).float()
            expected = values.numel() / (hi - lo + 1)
            # Each count is Binomial(n, p); 6 standard deviations is a bound a uniform
            # sampler crosses with probability below 1e-8.
            spread = 6 * math.sqrt(expected) + 1
            if ((counts - expected).abs() > spread).any():
                problems.append(lazy("With min_step={lo} and max_step={hi}, t is not uniform: "
                                   "counts per value were {counts}.", lo=lo, hi=hi,
                                   counts=counts.int().tolist()))
                return
        case = references()["blank5"][cases][0]
        sd_meta = reference_instance(cls, (case["min_step"], case["max_step"]), device="meta")
        fn = _method(sd_meta, "sample_timestep", blank)
        got = _plain(_probe_call(ON_META, "sample_timestep", fn, case["batch"],
                                 hint=T_DEVICE_FIX))
        problem = _on_device_problem("t", got, why=T_DEVICE_WHY, fix=T_DEVICE_FIX)
        if problem is not None:
            problems.append(problem)

    return _run(blank, body)


# ---------------------------------------------------------------------------------------
# Blank 6: the SDS gradient
# ---------------------------------------------------------------------------------------
def blank6_sds_gradient(cls, cases: str = "visible") -> Report:
    """sds_gradient returns the weighted SDS gradient with respect to the latents."""
    blank = N_("Blank 6 (the SDS gradient)")
    if (skipped := _cannot_run(blank, cases)) is not None:
        return skipped
    case = references()["blank6"][cases]

    def body(problems):
        sd = reference_instance(cls)
        fn = _method(sd, "sds_gradient", blank)
        noise_pred, noise, w = case["noise_pred"], case["noise"], case["w"]
        grad = _plain(_call(blank, "sds_gradient", fn, noise_pred.clone(), noise.clone(),
                            w.clone()))
        expected = case["grad"]
        problem = _tensor_problem("grad", grad, expected, ATOL, RTOL, hints=[
            (-expected,
             N_("the sign is flipped: it is the predicted noise minus the noise that was added.")),
            (noise_pred - noise, N_("multiply by the weight w.")),
            (w * noise_pred,
             N_("subtract the noise that was added (noise) from the prediction.")),
        ])
        if problem:
            problems.append(problem)
            return
        sd_meta = reference_instance(cls, device="meta")
        fn = _method(sd_meta, "sds_gradient", blank)
        got = _plain(_probe_call(ON_META, "sds_gradient", fn,
                                 *map(probes.meta_like, (noise_pred, noise, w))))
        if (problem := _on_device_problem("grad", got)) is not None:
            problems.append(problem)
            return
        # under fp16, train_step's noise is fp16 (randn_like of fp16 latents); the guided
        # prediction and the weight are float32
        sd_half = reference_instance(cls, fp16=True)
        fn = _method(sd_half, "sds_gradient", blank)
        got = _plain(_probe_call(ON_FP16, "sds_gradient", fn, noise_pred.clone(), noise.half(),
                                 w.clone()))
        problem = _tensor_problem(N_("grad from an fp16 noise"), got, expected, 5e-3, 1e-3)
        if problem:
            problems.append(problem)

    return _run(blank, body)


# ---------------------------------------------------------------------------------------
# Blank 7: the targets
# ---------------------------------------------------------------------------------------
def blank7_sds_targets(cls, cases: str = "visible") -> Report:
    """sds_targets returns constant targets whose MSE loss has gradient grad / B."""
    blank = N_("Blank 7 (the targets)")
    if (skipped := _cannot_run(blank, cases)) is not None:
        return skipped
    case = references()["blank7"][cases]

    def body(problems):
        sd = reference_instance(cls)
        fn = _method(sd, "sds_targets", blank)
        latents = case["latents"].clone().requires_grad_(True)
        grad = case["grad"].clone()
        targets = _plain(_call(blank, "sds_targets", fn, latents, grad))
        expected = case["targets"]
        problem = _tensor_problem("targets", targets, expected, ATOL, RTOL, hints=[
            (case["latents"] + grad,
             N_("the sign is flipped: the target is one gradient step *down* from latents.")),
        ])
        if problem:
            problems.append(problem)
            return
        if targets.requires_grad:
            problems.append(lazy(
                "targets still carry gradient back to latents. Then the loss "
                "0.5 * ||latents - targets||^2 has zero gradient, since latents cancel. "
                "Hint: call .detach() on the targets."))
            return
        batch = case["latents"].shape[0]
        loss = 0.5 * torch.nn.functional.mse_loss(_plain(latents).float(), targets,
                                                  reduction="sum") / batch
        loss.backward()
        problem = _tensor_problem("d loss / d latents", _plain_grad(latents), grad / batch, ATOL,
                                  RTOL)
        if problem:
            problems.append(problem + " " + lazy("It should equal grad / batch."))
            return
        sd_meta = reference_instance(cls, device="meta")
        fn = _method(sd_meta, "sds_targets", blank)
        got = _plain(_probe_call(ON_META, "sds_targets", fn, probes.meta_like(latents),
                                 probes.meta_like(grad)))
        if (problem := _on_device_problem("targets", got)) is not None:
            problems.append(problem)
            return
        # under fp16, the latents from the VAE are fp16 and grad is float32
        sd_half = reference_instance(cls, fp16=True)
        fn = _method(sd_half, "sds_targets", blank)
        half = case["latents"].half().requires_grad_(True)
        got = _plain(_probe_call(ON_FP16, "sds_targets", fn, half, grad.clone()))
        problem = _tensor_problem(N_("targets from fp16 latents"), got, expected, 1e-2, 1e-3)
        if problem:
            problems.append(problem)

    return _run(blank, body)


CHECKS = {
    1: blank1_super_init,
    2: blank2_step_range,
    3: blank3_interpolate_latents,
    4: blank4_encode_rgb,
    5: blank5_sample_timestep,
    6: blank6_sds_gradient,
    7: blank7_sds_targets,
}


def _shorten(text: str, columns: int) -> str:
    """`text` cut at a space to fit `columns` columns (wide letters count two), with " ..."."""
    if width(text) <= columns:
        return text
    kept = ""
    for ch in text:
        if width(kept + ch) > columns - 3:
            break
        kept += ch
    return kept.rsplit(" ", 1)[0] + " ..."


def check_all(cls) -> list[tuple[int, bool, str]]:
    """Run every blank's visible test and print one table: blank, passed or not, and the first
    thing that is wrong. Returns the rows as (blank, passed, first line of the message)."""
    rows = []
    for number, check in CHECKS.items():
        try:
            report = check(cls, "visible")
        except Exception as error:  # noqa: BLE001 - a broken class must not hide the table
            report = Report(N_("Blank {number}").format(number=number),
                            [tr("the check could not run: {error}", error=error)])
        first = report.problems[0] if report.problems else report.not_run or tr("all checks passed")
        rows.append((number, report.passed, " ".join(render(first).split())))
    passed_word, not_yet_word = tr("passed"), tr("not yet")
    # Columns counted as the notebook shows them: a Hangul letter takes two (sdskit/i18n.py).
    column = max(8, width(passed_word), width(not_yet_word))
    print(pad(tr("blank"), 6), pad(tr("result"), column), tr("first message"))
    for number, passed, first in rows:
        print(pad(number, 6), pad(passed_word if passed else not_yet_word, column),
              _shorten(first, 88))
    done = sum(passed for _, passed, _ in rows)
    print("\n" + tr("{done} of {total} blanks pass their visible tests. The hidden tests run "
                    "when your work is graded.", done=done, total=len(rows)))
    print(tr("For a blank's whole message, run its own test cell."))
    print(tr("To hand in: File > Download > Download .ipynb, keep the file name, and upload it "
             "where your course's assignment page says."))
    return rows
