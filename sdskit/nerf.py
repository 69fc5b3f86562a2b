"""A small NeRF for text-to-3D with Score Distillation Sampling, in plain PyTorch.

Everything the text-to-3D cell needs, in one file you can read from top to bottom:

    NeRFConfig          every knob, with its default and what it does
    HashGrid            multiresolution hash-grid encoding (as in Instant-NGP), pure torch
    NeRF                the field: position -> density (with DreamFusion's blob) and albedo,
                        plus a background colour from the view direction
    Camera, sample_cameras, orbit_cameras
                        random cameras in DreamFusion's ranges, and a turntable orbit
    view_name, view_prompt
                        the view-dependent prompt suffix ("front view", "side view", ...)
    render              rays -> samples -> encoding -> MLP -> compositing -> shading
                        (one normal per ray) -> background; render_rays does all but the rays
                        and the random draws (what the fast path compiles)
    render_in_chunks    an evaluation render in pieces, so that its memory stays bounded
    orientation_loss, opacity_entropy, opacity_sparsity
                        DreamFusion's regularisers

Conventions. World space is y-up; the object lives inside the ball of radius `bound` around
the origin. A camera looks at the origin; azimuth 0 is the front (camera on +z), azimuth
+-180 the back, elevation 90 looks straight down. Images are [B, C, H, W] in [0, 1].
Randomness is injectable: every function that draws random numbers takes `generator`
(a torch.Generator, or None for torch's global one).

No compiled extensions: the hash grid, the sampler and the compositing are a few dozen lines
of tensor code each. It is slower than CUDA implementations, and fast enough for 64x64 renders.
"""

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------

@dataclass
class NeRFConfig:
    # --- scene ---
    bound: float = 1.0            # the object lives in the ball |x| <= bound (and the grid in the cube)
    min_near: float = 0.05        # no sample closer to the camera than this

    # --- hash-grid encoding (Instant-NGP) ---
    grid_levels: int = 16         # L: number of resolutions
    grid_features: int = 2        # F: features stored per table entry
    grid_log2_size: int = 19      # T = 2^19 entries per level (levels with fewer cells are dense)
    grid_base_res: int = 16       # coarsest resolution (cells per side of the cube)
    grid_max_res: int = 1024      # finest resolution; levels grow geometrically in between

    # --- MLPs ---
    hidden: int = 64              # width of the density and albedo MLPs
    bg_hidden: int = 32           # width of the background MLP
    bg_frequencies: int = 4       # sin/cos frequencies of the view direction fed to the background

    # --- density ---
    # sigma(x) = softplus(mlp(x) + blob(x) + density_bias)
    density_bias: float = -3.0    # softplus(-3) ~ 0.05: empty space starts nearly clear
    # DreamFusion's blob: blob(x) = blob_density * exp(-|x|^2 / (2 blob_radius^2)), so the
    # optimisation starts from a ball of matter in the middle instead of fog or nothing.
    blob_density: float = 10.0
    blob_radius: float = 0.3

    # --- rendering ---
    num_samples: int = 64         # stratified samples per ray
    normal_eps: float = 1e-2      # step of the central differences for the normals
    ambient: float = 0.1          # Lambertian shading: ambient light share (DreamFusion: 0.1)
    light_jitter: float = 0.5     # std-dev of the point light around the camera position
    # "mlp": learned from the view direction; or a fixed RGB colour, e.g. (1.0, 1.0, 1.0)
    background: object = "mlp"

    # --- cameras (DreamFusion's ranges) ---
    radius_range: tuple = (1.0, 1.5)
    elevation_range: tuple = (-10.0, 90.0)   # degrees above the horizon
    azimuth_range: tuple = (-180.0, 180.0)   # degrees, 0 = front
    fov_range: tuple = (40.0, 70.0)          # vertical field of view, degrees

    # --- view-dependent prompts ---
    front_half_angle: float = 45.0   # |azimuth| <= this: "front view"
    back_half_angle: float = 45.0    # |azimuth| >= 180 - this: "back view"; in between: "side view"
    # elevation >= this: "overhead view" (DreamFusion); None: never overhead
    overhead_elevation: object = 60.0


# ----------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------

# Instant-NGP's spatial hash: xor of the integer coordinates times large primes, modulo T.
_PRIMES = (1, 2654435761, 805459861)


class HashGrid(nn.Module):
    """Multiresolution hash encoding: x in [0, 1]^3 -> L * F features.

    Level l divides the unit cube into res_l cells per side. Each cell corner looks up an F-vector
    in that level's table, directly (index = x + (res+1) y + (res+1)^2 z) when the level has no
    more corners than table entries, else through a spatial hash (collisions are left to the MLP).
    A point's feature is the trilinear mix of its cell's 8 corners; levels are concatenated.

    All levels are computed together, in one set of tensor operations over [N, L, ...]: a GPU
    runs a handful of large kernels instead of a loop of small ones per level. The levels' tables
    are stacked in one parameter; level l owns rows offsets[l] : offsets[l] + entries_l.
    """

    def __init__(self, levels=16, features=2, log2_size=19, base_res=16, max_res=1024):
        super().__init__()
        # res_l = floor(base * g^l), with g chosen so that the last level has max_res cells.
        growth = math.exp((math.log(max_res) - math.log(base_res)) / max(levels - 1, 1))
        self.resolutions = [int(base_res * growth ** level) for level in range(levels)]
        self.table_size = 2 ** log2_size
        entries = [min((res + 1) ** 3, self.table_size) for res in self.resolutions]
        # Instant-NGP initialises the tables uniformly in +-1e-4: every point starts at ~0.
        self.table = nn.Parameter(torch.empty(sum(entries), features).uniform_(-1e-4, 1e-4))
        self.register_buffer("res", torch.tensor(self.resolutions), persistent=False)  # [L]
        self.register_buffer("offsets", torch.tensor([0] + entries[:-1]).cumsum(0),
                             persistent=False)  # [L] first row of each level
        self.register_buffer("hashed", torch.tensor([(res + 1) ** 3 > self.table_size
                                                     for res in self.resolutions]),
                             persistent=False)  # [L] bool
        self.output_dim = levels * features

    def level_table(self, level):  # -> [entries_l, F], the rows of one level
        end = self.offsets[level + 1] if level + 1 < len(self.resolutions) else len(self.table)
        return self.table[self.offsets[level]:end]

    def forward(self, x):  # x: [N, 3] in [0, 1]
        n, levels = x.shape[0], len(self.resolutions)
        res = self.res.to(x.dtype)[:, None]  # [L, 1]
        pos = x.clamp(0, 1)[:, None, :] * res  # [N, L, 3] position in cell units
        cell = torch.minimum(pos.floor(), res - 1)  # [N, L, 3] lower corner of the cell
        frac = pos - cell  # [N, L, 3] position inside the cell, in [0, 1]
        # per axis, the cell's two corner coordinates and their linear weights
        cx, cy, cz = torch.stack([cell, cell + 1], dim=-1).long().unbind(2)  # [N, L, 2] each
        wx, wy, wz = torch.stack([1 - frac, frac], dim=-1).unbind(2)  # [N, L, 2] each
        # corner (i, j, k) has weight wx_i wy_j wz_k: the trilinear weights of the 8 corners
        weights = (wx[..., :, None, None] * wy[..., None, :, None]
                   * wz[..., None, None, :]).reshape(n, levels, 8)  # [N, L, 8]
        # dense levels: row-major index (x + side y + side^2 z), side = res + 1
        side = (self.res + 1).view(levels, 1, 1, 1)
        dense = (cx[..., :, None, None] + side * cy[..., None, :, None]
                 + side * side * cz[..., None, None, :])  # [N, L, 2, 2, 2]
        # hashed levels: (x p0) xor (y p1) xor (z p2), modulo T
        hashed = ((cx * _PRIMES[0])[..., :, None, None] ^ (cy * _PRIMES[1])[..., None, :, None]
                  ^ (cz * _PRIMES[2])[..., None, None, :]) % self.table_size  # [N, L, 2, 2, 2]
        index = torch.where(self.hashed.view(levels, 1, 1, 1), hashed, dense)
        index = (index + self.offsets.view(levels, 1, 1, 1)).reshape(-1)  # [N * L * 8]
        # index_select's backward adds into the table with atomics: faster on a GPU than the
        # sort that plain indexing's backward does
        corners = self.table.index_select(0, index).view(n, levels, 8, -1)  # [N, L, 8, F]
        return (weights[..., None] * corners).sum(2).reshape(n, -1)  # [N, L * F]


def frequency_encoding(d, frequencies):  # d: [N, 3] -> [N, 3 + 6 * frequencies]
    """[d, sin(2^k d), cos(2^k d)] for k < frequencies (NeRF's positional encoding)."""
    scales = 2.0 ** torch.arange(frequencies, device=d.device, dtype=d.dtype)  # [K]
    angles = (d[..., None] * scales).flatten(-2)  # [N, 3K]
    return torch.cat([d, angles.sin(), angles.cos()], dim=-1)


def mlp(inputs, hidden, outputs):
    """Linear -> ReLU -> Linear -> ReLU -> Linear."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, outputs))


# ----------------------------------------------------------------------------------------------
# The field
# ----------------------------------------------------------------------------------------------

class NeRF(nn.Module):
    """position -> (density sigma >= 0, albedo in [0, 1]^3); view direction -> background colour."""

    def __init__(self, config: NeRFConfig | None = None):
        super().__init__()
        self.config = c = config or NeRFConfig()
        self.encoding = HashGrid(c.grid_levels, c.grid_features, c.grid_log2_size,
                                 c.grid_base_res, c.grid_max_res)
        # one MLP for both: output 0 is the raw density, outputs 1-3 the raw albedo
        self.net = mlp(self.encoding.output_dim, c.hidden, 4)
        if c.background == "mlp":
            self.bg_net = mlp(3 + 6 * c.bg_frequencies, c.bg_hidden, 3)
        else:
            self.register_buffer("bg_color", torch.tensor(c.background, dtype=torch.float32))

    def _encode(self, x):  # x: [N, 3] world -> [N, L*F]
        return self.encoding((x / self.config.bound + 1) / 2)  # [-bound, bound]^3 -> [0, 1]^3

    def blob(self, x):  # x: [N, 3] -> [N]
        """DreamFusion's density blob, added to the density before the activation."""
        c = self.config
        return c.blob_density * torch.exp(-x.pow(2).sum(-1) / (2 * c.blob_radius ** 2))

    def query(self, x):  # x: [N, 3] -> sigma [N], albedo [N, 3]
        raw = self.net(self._encode(x)).float()  # [N, 4]
        sigma = F.softplus(raw[:, 0] + self.blob(x) + self.config.density_bias)  # [N]
        return sigma, torch.sigmoid(raw[:, 1:])

    def density(self, x):  # x: [N, 3] -> sigma [N]
        return self.query(x)[0]

    def background(self, d):  # d: [N, 3] unit view directions -> [N, 3]
        if self.config.background == "mlp":
            return torch.sigmoid(self.bg_net(frequency_encoding(d, self.config.bg_frequencies)).float())
        return self.bg_color.expand(d.shape[0], 3)

    def param_groups(self, grid_lr=1e-2, mlp_lr=1e-3):
        """Adam parameter groups: the hash tables learn faster than the MLPs (as in Instant-NGP)."""
        grid = list(self.encoding.parameters())
        grid_ids = {id(p) for p in grid}
        rest = [p for p in self.parameters() if id(p) not in grid_ids]
        return [{"params": grid, "lr": grid_lr}, {"params": rest, "lr": mlp_lr}]


# ----------------------------------------------------------------------------------------------
# Cameras
# ----------------------------------------------------------------------------------------------

@dataclass
class Camera:
    """B pinhole cameras looking at the origin. Angles in degrees."""
    radius: torch.Tensor     # [B]
    elevation: torch.Tensor  # [B]
    azimuth: torch.Tensor    # [B]
    fov: torch.Tensor        # [B] vertical field of view
    position: torch.Tensor = field(init=False)  # [B, 3]
    c2w: torch.Tensor = field(init=False)       # [B, 3, 3] columns: right, up, backward

    def __post_init__(self):
        el, az = torch.deg2rad(self.elevation), torch.deg2rad(self.azimuth)
        # y-up spherical coordinates; azimuth 0 puts the camera on +z (the front)
        self.position = self.radius[:, None] * torch.stack(
            [el.cos() * az.sin(), el.sin(), el.cos() * az.cos()], dim=-1)  # [B, 3]
        forward = F.normalize(-self.position, dim=-1)  # [B, 3] towards the origin
        up = torch.tensor([0.0, 1.0, 0.0], device=forward.device).expand_as(forward)
        right = torch.linalg.cross(forward, up)  # [B, 3]
        # looking straight down (elevation 90): forward is parallel to up; use the azimuth's right
        fallback = torch.stack([az.cos(), torch.zeros_like(az), -az.sin()], dim=-1)
        right = torch.where(right.norm(dim=-1, keepdim=True) < 1e-6, fallback, right)
        right = F.normalize(right, dim=-1)
        true_up = torch.linalg.cross(right, forward)  # [B, 3]
        self.c2w = torch.stack([right, true_up, -forward], dim=-1)  # [B, 3, 3] (OpenGL convention)

    def __len__(self):
        return self.radius.shape[0]

    def to(self, device) -> "Camera":
        """The same cameras on `device` (tensors copied; nothing recomputed there)."""
        moved = copy.copy(self)
        for name in ("radius", "elevation", "azimuth", "fov", "position", "c2w"):
            value = getattr(self, name)
            if torch.device(device).type == "cuda" and value.device.type == "cpu":
                value = value.pin_memory()  # so that the copy does not wait for the GPU
            setattr(moved, name, value.to(device, non_blocking=True))
        return moved


def _uniform(n, low_high, generator, device):
    low, high = low_high
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def sample_cameras(n, config: NeRFConfig, generator=None, device="cpu") -> Camera:
    """n random cameras, uniform in radius, elevation, azimuth and fov (DreamFusion's ranges)."""
    return Camera(radius=_uniform(n, config.radius_range, generator, device),
                  elevation=_uniform(n, config.elevation_range, generator, device),
                  azimuth=_uniform(n, config.azimuth_range, generator, device),
                  fov=_uniform(n, config.fov_range, generator, device))


def orbit_cameras(n, radius=1.3, elevation=15.0, fov=50.0, device="cpu") -> Camera:
    """n cameras evenly spaced in azimuth around the object (a turntable)."""
    azimuth = torch.arange(n, device=device) * (360.0 / n) - 180.0
    full = lambda v: torch.full((n,), float(v), device=device)  # noqa: E731
    return Camera(full(radius), full(elevation), azimuth, full(fov))


def view_name(azimuth, elevation, config: NeRFConfig) -> str:
    """'front', 'side', 'back' from the azimuth (degrees); 'overhead' when looking down steeply."""
    if config.overhead_elevation is not None and elevation >= config.overhead_elevation:
        return "overhead"
    azimuth = (azimuth + 180.0) % 360.0 - 180.0  # wrap to [-180, 180)
    if abs(azimuth) <= config.front_half_angle:
        return "front"
    if abs(azimuth) >= 180.0 - config.back_half_angle:
        return "back"
    return "side"


def view_prompt(prompt, view) -> str:
    """'a hamburger' + 'front' -> 'a hamburger, front view'."""
    return f"{prompt}, {view} view"


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

def get_rays(camera: Camera, height, width):  # -> origins [B, H*W, 3], directions [B, H*W, 3]
    """One ray through the centre of each pixel."""
    device = camera.c2w.device
    focal = 0.5 * height / torch.tan(torch.deg2rad(camera.fov) / 2)  # [B] in pixels
    j, i = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32) + 0.5,
                          torch.arange(width, device=device, dtype=torch.float32) + 0.5,
                          indexing="ij")  # [H, W] row, column
    # camera space: x right, y up, looking down -z
    dirs = torch.stack([(i - width / 2)[None] / focal[:, None, None],
                        -(j - height / 2)[None] / focal[:, None, None],
                        -torch.ones(len(camera), height, width, device=device)], dim=-1)  # [B, H, W, 3]
    dirs = torch.einsum("bij,bhwj->bhwi", camera.c2w, dirs).reshape(len(camera), -1, 3)
    dirs = F.normalize(dirs, dim=-1)  # [B, HW, 3]
    origins = camera.position[:, None, :].expand_as(dirs)  # [B, HW, 3]
    return origins, dirs


def ray_sphere(origins, dirs, radius, min_near):  # -> near, far [...], hit [...] bool
    """Where each ray enters and leaves the ball |x| <= radius.

    |o + t d|^2 = r^2 with |d| = 1  =>  t = -(o.d) +- sqrt((o.d)^2 - |o|^2 + r^2)
    """
    b = (origins * dirs).sum(-1)
    disc = b * b - (origins * origins).sum(-1) + radius ** 2
    hit = disc > 0
    root = disc.clamp(min=0).sqrt()
    near = (-b - root).clamp(min=min_near)
    far = torch.maximum(-b + root, near + 1e-3)
    return near, far, hit


def finite_difference_normals(field, x, eps):  # x: [N, 3] -> unit normals [N, 3]
    """n = -grad sigma / |grad sigma|, the gradient by central differences along each axis:
        d sigma / dx_k ~ (sigma(x + eps e_k) - sigma(x - eps e_k)) / (2 eps)   (6 queries per point)
    """
    offsets = eps * torch.eye(3, device=x.device)  # [3, 3]
    shifted = torch.cat([x[:, None] + offsets, x[:, None] - offsets], dim=1)  # [N, 6, 3]
    both = field.density(shifted.reshape(-1, 3)).reshape(-1, 6)  # [N, 6]
    grad = (both[:, :3] - both[:, 3:]) / (2 * eps)  # [N, 3]
    return -F.normalize(grad, dim=-1, eps=1e-8)


def render(field, camera: Camera, height, width, shading="albedo", num_samples=None,
           perturb=True, light_position=None, need_normals=None, generator=None,
           ray_renderer=None):
    """Volume-render B images of `field` from `camera`.

    shading: "albedo" (colour only), "lambertian" (albedo x point-light diffuse shading),
             "textureless" (white x the same shading: geometry only), or "normal".
    perturb: stratified random sample positions (training) or bin midpoints (evaluation).
    light_position: [B, 3], or None to draw one near each camera (DreamFusion).
    ray_renderer: the function that renders the rays: render_rays (None), or a compiled copy of
             it (sdskit.text_to_3d's fast path).
    Returns a dict of image [B, 3, H, W], opacity [B, 1, H, W], depth [B, 1, H, W], and, when
    normals are computed, normal [B, 3, H, W] (in [-1, 1]) and orientation (a scalar loss).
    """
    n_samples = num_samples or field.config.num_samples
    batch, device = len(camera), camera.c2w.device
    origins, dirs = get_rays(camera, height, width)  # [B, HW, 3] each
    u = sample_offsets(batch, height * width, n_samples, perturb, generator, device)
    light_position = _light(field, camera, shading, light_position, generator)
    out = (ray_renderer or render_rays)(field, origins, dirs, u, shading, light_position,
                                        need_normals)

    def to_image(values):  # [B, HW, C] -> [B, C, H, W]
        return values.transpose(1, 2).reshape(batch, -1, height, width)

    for name in ("image", "normal"):
        if name in out:
            out[name] = to_image(out[name])
    for name in ("opacity", "depth"):
        out[name] = to_image(out[name][..., None])
    return out


def sample_offsets(batch, rays, n_samples, perturb=True, generator=None, device="cpu"):
    """Where in its bin each sample lies, u in [0, 1): uniform (stratified) or 1/2. -> [B, R, S]"""
    if perturb:
        return torch.rand(batch, rays, n_samples, generator=generator, device=device)
    return torch.full((batch, rays, n_samples), 0.5, device=device)


def _light(field, camera, shading, light_position, generator):
    """The light's position [B, 3] for the shadings that need one: a point light near the camera,
    position + N(0, jitter^2 I), unless one is given."""
    if shading not in ("lambertian", "textureless") or light_position is not None:
        return light_position
    return camera.position + field.config.light_jitter * torch.randn(
        len(camera), 3, generator=generator, device=camera.c2w.device)


def render_rays(field, origins, dirs, u, shading="albedo", light_position=None, need_normals=None):
    """Volume-render rays: the part of `render` that draws no random numbers.

    origins, dirs: [B, R, 3] (dirs of unit length); u: [B, R, S] where in its bin each sample lies;
    light_position: [B, 3] (lambertian and textureless shading).
    Returns image [B, R, 3], opacity [B, R], depth [B, R], weights [B, R, S], and, when normals
    are computed, normal [B, R, 3] and orientation (a scalar loss).
    """
    cfg = field.config
    n_samples = u.shape[-1]
    if need_normals is None:
        need_normals = shading != "albedo"
    batch = origins.shape[0]

    # 1. rays, clipped to the ball that holds the object
    near, far, hit = ray_sphere(origins, dirs, cfg.bound, cfg.min_near)  # [B, R] each

    # 2. samples: t_i = near + (far - near) (i + u_i) / S
    bins = torch.arange(n_samples, device=origins.device, dtype=torch.float32)  # [S]
    t = near[..., None] + (far - near)[..., None] * (bins + u) / n_samples  # [B, R, S]
    x = origins[..., None, :] + t[..., None] * dirs[..., None, :]  # [B, R, S, 3]

    # 3.-4. encoding and MLPs: density and albedo at every sample
    sigma_flat, albedo = field.query(x.reshape(-1, 3))  # [B*R*S], [B*R*S, 3]
    sigma = sigma_flat.reshape(t.shape) * hit[..., None]  # [B, R, S]; rays that miss see nothing
    albedo = albedo.reshape(*t.shape, 3)  # [B, R, S, 3]

    # 5. compositing: alpha_i = 1 - exp(-sigma_i delta_i), T_i = prod_{j<i} (1 - alpha_j),
    #    w_i = T_i alpha_i, C = sum_i w_i c_i + (1 - sum_i w_i) background
    delta = ((far - near) / n_samples)[..., None].expand_as(t)  # [B, R, S] (equal bins)
    alpha = 1 - torch.exp(-sigma * delta)  # [B, R, S]
    transmittance = cumprod_positive(
        torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha[..., :-1] + 1e-10], dim=-1))
    weights = alpha * transmittance  # [B, R, S]
    opacity = weights.sum(-1)  # [B, R]
    depth = (weights * t).sum(-1)  # [B, R] (expected distance; 0 where empty)

    # 6. shading. The albedo is composited like any colour, A = sum_i w_i a_i. The light is
    #    computed once per ray, at the point the ray sees: x_s = o + (depth / opacity) d, with
    #    the normal n = -grad sigma(x_s) / |grad sigma(x_s)| by central differences (6 density
    #    queries per ray). DreamFusion shades every sample with its own normal, which costs those
    #    queries S times over; for a surface, where the weights gather at one depth, the two agree.
    albedo_map = (weights[..., None] * albedo).sum(-2)  # [B, R, 3]
    out = {}
    if need_normals:
        seen_at = (depth / opacity.clamp(min=1e-6)).detach()  # [B, R] distance of the surface
        surface = origins + seen_at[..., None] * dirs  # [B, R, 3]
        normals = finite_difference_normals(field, surface.reshape(-1, 3), cfg.normal_eps)
        normals = normals.reshape(batch, -1, 3)  # [B, R, 3]
        # DreamFusion's orientation loss, per ray: stopgrad(opacity) max(0, n . d)^2 penalises
        # visible normals that face away from the camera (d points away from it).
        facing_away = (normals * dirs).sum(-1).clamp(min=0)  # [B, R]
        out["orientation"] = (opacity.detach() * facing_away ** 2).mean()
        out["normal"] = normals * opacity[..., None]  # 0 where nothing is seen

    if shading == "albedo":
        color = albedo_map
    elif shading in ("lambertian", "textureless"):
        to_light = F.normalize(light_position[:, None, :] - surface, dim=-1)  # [B, R, 3]
        # Lambertian: ambient + (1 - ambient) max(0, n . l)
        diffuse = (normals * to_light).sum(-1, keepdim=True).clamp(min=0)  # [B, R, 1]
        light = cfg.ambient + (1 - cfg.ambient) * diffuse
        color = opacity[..., None] * light if shading == "textureless" else albedo_map * light
    elif shading == "normal":
        color = opacity[..., None] * (normals + 1) / 2
    else:
        raise ValueError(f"unknown shading {shading!r}")

    # 7. background behind what is not opaque: C = colour + (1 - opacity) background
    background = field.background(dirs.reshape(-1, 3)).reshape(batch, -1, 3)  # [B, R, 3]
    rgb = color + (1 - opacity[..., None]) * background  # [B, R, 3]
    out.update(image=rgb, opacity=opacity, depth=depth, weights=weights)
    return out


class _CumprodPositive(torch.autograd.Function):
    """torch.cumprod along the last dimension, for inputs with no zeros. Its backward is the one
    torch uses for such inputs, d/dx_k = sum_{i >= k} grad_i y_i / x_k (a reversed cumulative
    sum), the same operations; torch's own backward first asks the GPU whether any input is 0,
    a wait that a CUDA graph cannot record (the fast path records render_rays' backward)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.cumprod(x, dim=-1)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return (y * grad).flip(-1).cumsum(-1).flip(-1).div(x)


def cumprod_positive(x):  # [..., S] with no zeros -> cumulative products along the last dim
    return _CumprodPositive.apply(x)


@torch.no_grad()
def render_in_chunks(field, camera: Camera, height, width, shading="albedo", light_position=None,
                     max_samples=2 ** 18):
    """Evaluation render (bin midpoints, no gradient) of one camera at a time, at most
    `max_samples` samples (rays x samples per ray) at once, so that its memory stays bounded
    at any image size. Returns image, opacity, depth (and normal) as `render` does."""
    n_samples = field.config.num_samples
    chunk = max(1, max_samples // n_samples)  # rays per piece
    images = []
    for i in range(len(camera)):
        one = Camera(camera.radius[i:i + 1], camera.elevation[i:i + 1], camera.azimuth[i:i + 1],
                     camera.fov[i:i + 1])
        # lambertian and textureless: the light at the camera unless one is given
        light = one.position if light_position is None else light_position[i:i + 1]
        origins, dirs = get_rays(one, height, width)  # [1, HW, 3]
        pieces = []
        for start in range(0, height * width, chunk):
            o, d = origins[:, start:start + chunk], dirs[:, start:start + chunk]
            u = sample_offsets(1, o.shape[1], n_samples, perturb=False, device=o.device)
            piece = render_rays(field, o, d, u, shading, light)
            pieces.append({k: v for k, v in piece.items() if k not in ("orientation", "weights")})
        images.append({k: torch.cat([p[k] for p in pieces], dim=1) for k in pieces[0]})
    out = {k: torch.cat([im[k] for im in images]) for k in images[0]}  # [B, R, ...]
    for name in ("image", "normal"):
        if name in out:
            out[name] = out[name].transpose(1, 2).reshape(len(camera), -1, height, width)
    for name in ("opacity", "depth"):
        out[name] = out[name].reshape(len(camera), 1, height, width)
    return out


# ----------------------------------------------------------------------------------------------
# Regularisers
# ----------------------------------------------------------------------------------------------

def orientation_loss(render_out):
    """The orientation penalty computed by `render` (needs normals)."""
    return render_out["orientation"]


def opacity_entropy(opacity, eps=1e-5):
    """Binary entropy of each pixel's opacity, averaged: pushes pixels to fully empty or fully solid.

    H(o) = -o log o - (1 - o) log(1 - o)
    """
    o = opacity.clamp(eps, 1 - eps)
    return (-o * torch.log(o) - (1 - o) * torch.log(1 - o)).mean()


def opacity_sparsity(opacity, eps=0.01):
    """Mean of sqrt(o^2 + eps): a smooth L1 that discourages filling the view with matter."""
    return torch.sqrt(opacity ** 2 + eps).mean()
