"""The known mistakes of each blank: wrong code close to the answer, and what gives it away.

Instructor-only. The student bundle never holds this file, and autograder/leaks.py searches the
bundle for these lines, as it does for the answers. tests/test_tryit.py runs each blank's try-it
cell and visible test with each mistake in place of the answer: the try-it must print something
other than what the right answer prints, and the visible test must fail. scripts/
gpu_student_check.py runs the ones marked `gpu_only` on a real GPU, where they crash.

`autograder/submissions.py`'s MISTAKES (one per blank, used by the demo and the grading tests)
is the first of each blank here.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    blank: int
    name: str  # a short id, e.g. "no device"
    code: str  # the blank's lines, without indentation
    shows: str  # what the try-it cell prints for it, where the right answer prints otherwise
    gpu_only: bool = False  # right values on the CPU in float32; fails only on a GPU


KNOWN = (
    Mistake(1, "no super().__init__()", "pass  # forgot to initialise nn.Module",
            "StableDiffusion(...) failed: AttributeError, cannot assign module before "
            "Module.__init__() call"),
    Mistake(1, "super().__init__ not called", "super().__init__",
            "the same AttributeError: the method is named but never called"),
    Mistake(2, "fractions kept", "self.min_step = t_range[0]\nself.max_step = t_range[1]",
            "min_step = 0.02, max_step = 0.98 (float) where 20 and 980 (int) are expected"),
    Mistake(2, "no int()", "self.min_step = self.num_train_timesteps * t_range[0]\n"
                           "self.max_step = self.num_train_timesteps * t_range[1]",
            "min_step = 20.0 (float) where 20 (int) is expected"),
    Mistake(2, "round() for int()", "self.min_step = round(self.num_train_timesteps * t_range[0])\n"
                                    "self.max_step = round(self.num_train_timesteps * t_range[1])",
            "max_step = 988 for t_range [0.0125, 0.9875], where int() gives 987"),
    Mistake(3, "no 2x - 1",
            "latents = F.interpolate(pred_rgb, size=(64, 64), mode='bilinear', align_corners=False)",
            "a render of 0.25 everywhere gives [0.25], not [-0.5]"),
    Mistake(3, "no resize", "latents = 2 * pred_rgb - 1",
            "shape (1, 4, 32, 32), not (1, 4, 64, 64)"),
    Mistake(3, "align_corners=True",
            "latents = F.interpolate(pred_rgb, size=(64, 64), mode='bilinear', align_corners=True)\n"
            "latents = 2 * latents - 1",
            "the two-pixel edge ramps from column 0, where align_corners=False holds -1 to "
            "column 15"),
    Mistake(3, "nearest", "latents = F.interpolate(pred_rgb, size=(64, 64), mode='nearest')\n"
                          "latents = 2 * latents - 1",
            "the two-pixel edge jumps from -1 to 1 at column 32 instead of ramping"),
    Mistake(3, "detached",
            "latents = F.interpolate(pred_rgb, size=(64, 64), mode='bilinear', align_corners=False)\n"
            "latents = (2 * latents - 1).detach()",
            "gradient reaches the render: False"),
    Mistake(4, "no resize", "latents = self.encode_imgs(pred_rgb)",
            "latents of shape (1, 4, 8, 8); encode_imgs got (1, 3, 64, 64)"),
    Mistake(4, "2x - 1 twice",
            "pred_rgb_512 = F.interpolate(pred_rgb, size=(512, 512), mode='bilinear', "
            "align_corners=False)\nlatents = self.encode_imgs(2 * pred_rgb_512 - 1)",
            "encode_imgs got values from -1 to 1, not from 0 to 1"),
    Mistake(4, "nearest", "pred_rgb_512 = F.interpolate(pred_rgb, size=(512, 512), mode='nearest')\n"
                          "latents = self.encode_imgs(pred_rgb_512)",
            "the edge's eight columns are 0 0 0 0 1 1 1 1, not a blend"),
    Mistake(4, "VAE without the scale",
            "pred_rgb_512 = F.interpolate(pred_rgb, size=(512, 512), mode='bilinear', "
            "align_corners=False)\nlatents = self.vae.encode(2 * pred_rgb_512 - 1).latent_dist.sample()",
            "encode_imgs was not called (and the latents are 1 / 0.18215 = 5.5 times too large)"),
    Mistake(4, "VAE in float32",
            "pred_rgb_512 = F.interpolate(pred_rgb, size=(512, 512), mode='bilinear', "
            "align_corners=False)\nlatents = self.vae.encode(2 * pred_rgb_512 - 1).latent_dist.sample() "
            "* self.vae.config.scaling_factor",
            "encode_imgs was not called, and with an fp16 model it raises RuntimeError (float "
            "input, half weights)", gpu_only=True),
    Mistake(4, "no gradient",
            "with torch.no_grad():\n"
            "    pred_rgb_512 = F.interpolate(pred_rgb, size=(512, 512), mode='bilinear', "
            "align_corners=False)\n    latents = self.encode_imgs(pred_rgb_512)",
            "gradient reaches the render: False"),
    Mistake(5, "off by one", "t = torch.randint(self.min_step, self.max_step, (1,), device=self.device)",
            "a count of 0 at t = 7"),
    Mistake(5, "no device", "t = torch.randint(self.min_step, self.max_step + 1, (1,))",
            "on the meta instance t is on cpu, not meta", gpu_only=True),
    Mistake(5, "float t", "t = torch.rand(1, device=self.device) * (self.max_step - self.min_step) "
                          "+ self.min_step",
            "dtype torch.float32, not torch.int64, and a count of 0 at t = 7"),
    Mistake(6, "sign flipped", "grad = w * (noise - noise_pred)", "[-0.5, 0.5, 0.0]"),
    Mistake(6, "no weight", "grad = noise_pred - noise", "[2.0, -2.0, 0.0]"),
    Mistake(6, "noise not subtracted", "grad = w * noise_pred", "[0.75, -0.25, 0.125]"),
    Mistake(7, "no .detach()", "targets = latents - grad",
            "targets carry autograd history: True; d loss / d latents = [0, 0, 0]"),
    Mistake(7, "sign flipped", "targets = (latents + grad).detach()", "targets [1.1, 1.8, -1.0]"),
)

WRONG_DEVICE = next(m for m in KNOWN if m.name == "no device")


def for_blank(blank: int) -> list[Mistake]:
    return [m for m in KNOWN if m.blank == blank]
