"""Small helpers for the notebook's try-it cells: each prints what a blank gives beside what a
student can work out by hand, and these keep the printing short and safe when an answer has the
wrong shape or raises. They compute nothing a blank asks for.
"""

import torch

from sdskit.i18n import tr


def columns(tensor, picks, width: int):
    """The values of row 0, channel 0 of a [B, C, H, W] tensor at the columns `picks`, rounded;
    or a note when the tensor is not `width` columns wide."""
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 4:
        return tr("not a [B, C, H, W] tensor")
    if tensor.shape[-1] != width:
        return tr("not {width} columns wide (shape {shape})", width=width,
                  shape=tuple(tensor.shape))
    row = tensor[0, 0, 0].detach().float().cpu()
    return [round(float(row[j]), 3) for j in picks]


def watch(sd, name: str) -> list:
    """Record the first argument of every call of sd.<name> (the call itself goes through).
    Returns the list that fills up."""
    seen = []
    method = getattr(sd, name)

    def recorded(first, *args, **kwargs):
        seen.append(first.detach().clone() if isinstance(first, torch.Tensor) else first)
        return method(first, *args, **kwargs)

    setattr(sd, name, recorded)
    return seen


def describe(seen: list) -> str:
    """Shape and value range of the first recorded tensor, or that nothing was recorded."""
    if not seen:
        return tr("nothing: your code did not call it")
    first = seen[0]
    if not isinstance(first, torch.Tensor):
        return tr("a {kind}, not a tensor", kind=type(first).__name__)
    return tr("shape {shape}, values from {low:.2f} to {high:.2f}", shape=tuple(first.shape),
              low=float(first.min()), high=float(first.max()))


def outcome(fn, *args) -> str:
    """What fn(*args) gives, in a few words: its shape and dtype, or the error it raises."""
    try:
        out = fn(*args)
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 - the try-it shows the error instead of stopping
        return tr("it raises {error}: {text}", error=type(error).__name__,
                  text=str(error).strip()[:160])
    if not isinstance(out, torch.Tensor):
        return tr("a {kind}, not a tensor", kind=type(out).__name__)
    return tr("shape {shape}, dtype {dtype}, on {device}", shape=tuple(out.shape), dtype=out.dtype,
              device=out.device)
